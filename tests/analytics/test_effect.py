"""The measured effect: hand-computed examples, the simulator's known truth, clear refusals."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from retain.analytics.effect import (
    EFFECT_COLUMNS,
    PERIOD_DATES,
    RAW_DIFFERENCE,
    EffectError,
    measure_effect,
    period_bounds,
    planned_goals,
    too_small,
    unmatched_customers,
)
from retain.simulate import simulate_shop


def _lines(rows):
    """Transactions from (customer, day in March 2026 or a date, amount)."""
    out = []
    for number, (customer, day, amount) in enumerate(rows):
        ts = datetime(2026, 3, day, 12) if isinstance(day, int) else day
        out.append({"customer_id": customer, "order_id": f"O{number}", "ts": ts,
                    "amount": float(amount), "quantity": 1})
    return pl.DataFrame(out)


def _log(rows):
    """Contacts from (customer, channel, cost, control), all sent on 2026-03-02."""
    return pl.DataFrame([
        {"customer_id": c, "ts": datetime(2026, 3, 2, 10), "channel": ch, "cost": cost,
         "control": control} for c, ch, cost, control in rows])


# Treated A, B, C; control D, E. In March: A buys 100 + 50 (two orders), B 30, C nothing,
# D 40, E nothing.
SMALL_TX = _lines([("A", 5, 100), ("A", 20, 50), ("B", 12, 30), ("D", 15, 40)])
SMALL_LOG = _log([("A", "email", 1.0, False), ("B", "sms", 3.0, False),
                  ("C", "email", 1.0, False), ("D", "email", 0.0, True),
                  ("E", "sms", 0.0, True)])


def _row(frame, metric, split="all"):
    return frame.filter((pl.col("metric") == metric) & (pl.col("split") == split)).row(
        0, named=True)


def test_period_bounds_are_calendar_periods_clipped_to_the_span():
    assert period_bounds(date(2026, 1, 15), date(2026, 3, 10), "month") == [
        ("2026-01", date(2026, 1, 15), date(2026, 2, 1)),
        ("2026-02", date(2026, 2, 1), date(2026, 3, 1)),
        ("2026-03", date(2026, 3, 1), date(2026, 3, 10)),
    ]
    assert [p[0] for p in period_bounds(date(2025, 11, 1), date(2026, 4, 1), "quarter")] == [
        "2025-Q4", "2026-Q1"]


def test_a_hand_computed_month_without_cuped():
    effect = measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1),
                            cuped=False, margin=0.5, n_boot=200, min_group=1)
    assert effect.columns == [*EFFECT_COLUMNS, *PERIOD_DATES, RAW_DIFFERENCE]
    assert effect.height == 3  # one period, no split, three metrics
    revenue = _row(effect, "revenue")
    assert revenue["period"] == "2026-03"
    assert (revenue["treated_customers"], revenue["control_customers"]) == (3, 2)
    assert revenue["treated_mean"] == pytest.approx(60.0)  # (150 + 30 + 0) / 3
    assert revenue["control_mean"] == pytest.approx(20.0)  # (40 + 0) / 2
    assert revenue["difference"] == pytest.approx(40.0)
    assert revenue["relative_lift"] == pytest.approx(2.0)
    assert revenue["incremental_revenue"] == pytest.approx(120.0)  # 40 x 3 treated
    assert revenue["cost"] == pytest.approx(5.0)
    assert revenue["romi"] == pytest.approx((120.0 * 0.5 - 5.0) / 5.0)
    assert revenue["ci_low"] <= 40.0 <= revenue["ci_high"]
    orders = _row(effect, "orders")
    assert orders["treated_mean"] == pytest.approx(1.0)  # 3 orders / 3
    assert orders["difference"] == pytest.approx(0.5)
    assert orders["incremental_revenue"] is None and orders["romi"] is None
    assert orders["cost"] == pytest.approx(5.0)
    buyers = _row(effect, "buyers")
    assert buyers["treated_mean"] == pytest.approx(2 / 3)
    assert buyers["control_mean"] == pytest.approx(0.5)


def test_groups_below_min_group_get_no_interval():
    # 3 treated against 2 control: the means and difference stand, the interval would be a
    # guess from two customers' spend.
    effect = measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1),
                            cuped=False, n_boot=100)
    revenue = _row(effect, "revenue")
    assert revenue["difference"] == pytest.approx(40.0)
    assert revenue["ci_low"] is None and revenue["ci_high"] is None
    assert too_small(effect) == 1
    assert too_small(effect, min_group=2) == 0
    assert _row(measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1),
                               cuped=False, n_boot=100, min_group=2), "revenue")["ci_low"] \
        is not None


def test_a_period_cut_by_the_span_keeps_its_label_and_says_which_days_it_covers():
    tx = pl.concat([SMALL_TX, _lines([("A", datetime(2026, 4, 2), 10)])
                    .with_columns(pl.col("order_id") + "q")])
    log = pl.concat([SMALL_LOG, _log([("A", "email", 1.0, False), ("D", "email", 0.0, True)])
                     .with_columns(pl.lit(datetime(2026, 4, 1, 9)).alias("ts"))])
    effect = measure_effect(tx, log, date(2026, 3, 1), date(2026, 4, 15), by="quarter",
                            n_boot=50)
    assert effect.select("period", "period_start", "period_end").unique().sort("period").rows() \
        == [("2026-Q1", date(2026, 3, 1), date(2026, 3, 31)),
            ("2026-Q2", date(2026, 4, 1), date(2026, 4, 14))]


def test_unmatched_customers_counts_log_ids_without_a_transaction():
    # C (treated) and E (control) never bought; a stranger X is contacted too.
    log = pl.concat([SMALL_LOG, _log([("X", "email", 1.0, False)])])
    assert unmatched_customers(SMALL_TX, log, date(2026, 3, 1), date(2026, 4, 1)) == {
        "treated": (2, 4), "control": (1, 2)}
    # Orders after the span's end do not make a customer known.
    assert unmatched_customers(SMALL_TX, log, date(2026, 3, 1), date(2026, 3, 3)) == {
        "treated": (4, 4), "control": (2, 2)}


def test_cuped_subtracts_the_pooled_regression_on_past_spend():
    # Past spend (January, far from any message) explains March spend: y = x / 2 + noise.
    past = [("A", datetime(2026, 1, 10), 200), ("B", datetime(2026, 1, 10), 60),
            ("D", datetime(2026, 1, 10), 100)]
    tx = pl.concat([SMALL_TX, _lines(past).with_columns(pl.col("order_id") + "p")])
    effect = measure_effect(tx, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1), n_boot=200)
    y = np.array([150.0, 30.0, 0.0, 40.0, 0.0])
    x = np.array([200.0, 60.0, 0.0, 100.0, 0.0])
    theta = np.cov(x, y, bias=True)[0, 1] / x.var()
    adjusted = y - theta * (x - x.mean())
    expected = adjusted[:3].mean() - adjusted[3:].mean()
    revenue = _row(effect, "revenue")
    assert revenue["difference"] == pytest.approx(expected)
    assert revenue["treated_mean"] == pytest.approx(60.0)  # the means shown stay raw


def test_orders_right_after_a_message_are_not_past_spend_for_cuped():
    # B's only past order came 2 days after a February message: a response, so not a covariate;
    # with it left out the covariate is all zeros and CUPED changes nothing.
    feb = _log([("B", "sms", 3.0, False)]).with_columns(pl.lit(datetime(2026, 2, 2)).alias("ts"))
    tx = pl.concat([SMALL_TX, _lines([("B", datetime(2026, 2, 4), 500)])
                    .with_columns(pl.col("order_id") + "p")])
    with_cuped = measure_effect(tx, pl.concat([feb, SMALL_LOG]), date(2026, 3, 1),
                                date(2026, 4, 1), n_boot=100)
    assert _row(with_cuped, "revenue")["difference"] == pytest.approx(40.0)


def test_the_channel_split_compares_each_channel_with_its_control_rows():
    effect = measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1),
                            split="channel", cuped=False, n_boot=100)
    email, sms = _row(effect, "revenue", "email"), _row(effect, "revenue", "sms")
    assert (email["treated_customers"], email["control_customers"]) == (2, 1)
    assert email["difference"] == pytest.approx(75.0 - 40.0)
    assert email["cost"] == pytest.approx(2.0)
    assert (sms["treated_customers"], sms["control_customers"]) == (1, 1)
    assert sms["difference"] == pytest.approx(30.0)


def test_the_segment_split_reads_the_assignments_and_refuses_without_them():
    segments = pl.DataFrame({"customer_id": list("ABCDE"),
                             "segment": ["x", "x", "y", "x", "y"]})
    effect = measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1),
                            split="segment", assignments=segments, cuped=False, n_boot=100)
    assert _row(effect, "revenue", "x")["difference"] == pytest.approx(90.0 - 40.0)
    assert _row(effect, "revenue", "y")["difference"] == pytest.approx(0.0)
    with pytest.raises(EffectError, match="--split goal needs"):
        measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1), split="goal")


def test_a_log_without_control_rows_or_messages_is_refused_with_the_reason():
    sent_only = SMALL_LOG.filter(~pl.col("control"))
    with pytest.raises(EffectError, match="no control customer"):
        measure_effect(SMALL_TX, sent_only, date(2026, 3, 1), date(2026, 4, 1))
    with pytest.raises(EffectError, match="no message sent"):
        measure_effect(SMALL_TX, SMALL_LOG, date(2026, 5, 1), date(2026, 6, 1))
    strangers = SMALL_LOG.with_columns(("X" + pl.col("customer_id")).alias("customer_id"))
    with pytest.raises(EffectError, match="same ids"):
        measure_effect(SMALL_TX, strangers, date(2026, 3, 1), date(2026, 4, 1))
    with pytest.raises(EffectError, match="not after"):
        measure_effect(SMALL_TX, SMALL_LOG, date(2026, 5, 1), date(2026, 5, 1))


def test_planned_goals_replay_the_rules_for_the_control_group_only():
    stored = pl.DataFrame({
        "goal": ["control", "control", "control", "control", "replenish"],
        "lifecycle_stage": ["lost", "active", "active", "at_risk", "active"],
        "value_tier": ["vip", "mid", "mid", "low", "low"],
        "as_of": [date(2026, 7, 1)] * 5,
        "due_product_date": [None, date(2026, 7, 5), None, None, date(2026, 7, 3)],
        "churn_probability": [0.9, 0.5, 0.5, 0.6, 0.1],
    })
    assert planned_goals(stored, replenish_within_days=7,
                         none_below_churn_probability=0.2).to_list() == [
        "win_back", "replenish", "cross_sell", "reactivate", "replenish"]


def _true_effect(shop, first: date, after: date) -> tuple[float, float]:
    """Caused revenue and orders in ``[first, after)`` per treated customer of that span."""
    begin, end = datetime.combine(first, datetime.min.time()), datetime.combine(
        after, datetime.min.time())
    treated = (shop.contacts.filter(~pl.col("control") & pl.col("ts").is_between(
        begin, end, closed="left"))["customer_id"].unique())
    caused = shop.caused_orders.filter(pl.col("ts").is_between(begin, end, closed="left")
                                       & pl.col("customer_id").is_in(treated.implode()))
    return caused["revenue"].sum() / treated.len(), caused.height / treated.len()


def test_the_90_percent_interval_covers_the_simulators_truth_and_cuped_narrows_it():
    first, after = date(2026, 6, 1), date(2026, 7, 1)
    covered, narrowed = [], []
    for seed in range(20):
        shop = simulate_shop(1500, seed=seed, history_days=200, future_days=90,
                             control_share=0.2)
        truth = _true_effect(shop, first, after)
        width = {}
        for cuped in (True, False):
            effect = measure_effect(shop.transactions, shop.contacts, first, after,
                                    cuped=cuped, n_boot=400, seed=seed)
            for metric, true in zip(("revenue", "orders"), truth, strict=True):
                row = _row(effect, metric)
                if cuped:
                    covered.append(row["ci_low"] <= true <= row["ci_high"])
                width[cuped, metric] = row["ci_high"] - row["ci_low"]
        narrowed += [width[True, m] / width[False, m] for m in ("revenue", "orders")]
    assert np.mean(covered) >= 0.85, np.mean(covered)
    # The past quarter explains a good part of a month's spend: about a fifth off the width.
    assert np.median(narrowed) < 0.9, np.median(narrowed)


def test_each_period_reads_the_score_run_in_force_at_its_start():
    runs = pl.DataFrame({
        "customer_id": list("ABCDE") * 3,
        "segment": ["old"] * 5 + ["march"] * 5 + ["later"] * 5,
        "as_of": [date(2026, 1, 1)] * 5 + [date(2026, 3, 1)] * 5 + [date(2026, 3, 20)] * 5,
    })
    def splits(assignments):
        return set(measure_effect(SMALL_TX, SMALL_LOG, date(2026, 3, 1), date(2026, 4, 1),
                                  split="segment", assignments=assignments, n_boot=50)["split"])

    assert splits(runs) == {"march"}
    # No run on or before the period: the earliest one.
    assert splits(runs.filter(pl.col("as_of") > date(2026, 3, 1))) == {"later"}
