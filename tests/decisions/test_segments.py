"""Micro-segments on handmade rows at the rules' boundaries, and value tiers on reference data."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from retain.decisions.rules import default_rules
from retain.decisions.segments import (
    BEHAVIOUR_TYPES,
    LIFECYCLE_STAGES,
    VALUE_TIERS,
    ShopReference,
    segments,
)

AS_OF = date(2025, 7, 1)
RULES = default_rules()
# CLV quantiles 0..1000, so the top 5% start at 950, the top 20% at 800, the top 50% at 500.
REFERENCE = ShopReference(
    clv_quantiles=np.linspace(0.0, 1000.0, 1001),
    revenue_quantiles=np.linspace(0.0, 10_000.0, 1001),
    median_aov=100.0,
    median_interval=20.0,
)
ROW_SCHEMA = {"customer_id": pl.String, "days_since_last_order": pl.Float64,
              "first_purchase": pl.Date, "interval_median": pl.Float64,
              "interval_cv": pl.Float64, "orders": pl.Int64, "aov": pl.Float64,
              "p_alive": pl.Float64, "clv_12m": pl.Float64}


def _row(name: str, **changes) -> dict:
    """An active, mid-value, occasional customer unless ``changes`` say otherwise."""
    row = {"customer_id": name, "days_since_last_order": 10.0,
           "first_purchase": AS_OF - timedelta(days=400), "interval_median": 20.0,
           "interval_cv": 1.0, "orders": 5, "aov": 100.0, "p_alive": 0.9, "clv_12m": 600.0}
    row.update(changes)
    return row


def _segments(rows: list[dict], rules=RULES, reference=REFERENCE) -> dict[str, dict]:
    frame = pl.DataFrame(rows, schema=ROW_SCHEMA)
    out = frame.hstack(segments(frame, rules, reference, AS_OF))
    return {row["customer_id"]: row for row in out.iter_rows(named=True)}


def _one_time(name: str, days: int, **changes) -> dict:
    one_order = {"days_since_last_order": float(days),
                 "first_purchase": AS_OF - timedelta(days=days), "orders": 1,
                 "interval_median": None, "interval_cv": None}
    return _row(name, **{**one_order, **changes})


LIFECYCLE_CASES = [
    # new: first order within 30 days
    (_one_time("first_29_days_ago", 29), "new"),
    (_one_time("first_31_days_ago", 31), "at_risk"),  # 31 > 1.5 x the shop's 20 days
    (_one_time("first_25_days_ago", 25), "new"),
    (_one_time("new_two_orders_overdue", 25, orders=2, interval_median=5.0,
               first_purchase=AS_OF - timedelta(days=29)), "new"),
    # active vs at risk: overdue is more than 1.5 x the own median interval
    (_row("regular"), "active"),
    (_row("overdue_exactly_1_5x", days_since_last_order=30.0), "active"),
    (_row("overdue_over_1_5x", days_since_last_order=31.0), "at_risk"),
    (_row("slow_rhythm_not_overdue", days_since_last_order=59.0, interval_median=50.0),
     "active"),
    (_row("p_alive_just_below_half", p_alive=0.49), "at_risk"),
    (_row("p_alive_half", p_alive=0.5), "active"),
    # sleeping from 60 days, lost beyond 180
    (_row("sleeping_at_60", days_since_last_order=60.0, interval_median=50.0), "sleeping"),
    (_row("sleeping_at_180", days_since_last_order=180.0, interval_median=200.0), "sleeping"),
    (_row("lost_at_181", days_since_last_order=181.0, interval_median=200.0), "lost"),
    # lost when probability alive is below 0.1, however recent
    (_row("p_alive_low", p_alive=0.09), "lost"),
    (_row("p_alive_0_1", p_alive=0.1), "at_risk"),
    (_one_time("new_but_gone", 5, p_alive=0.05), "lost"),
]


@pytest.mark.parametrize(("row", "stage"), LIFECYCLE_CASES, ids=[r["customer_id"]
                                                                 for r, _ in LIFECYCLE_CASES])
def test_lifecycle_stage_at_the_boundaries(row, stage):
    assert _segments([row])[row["customer_id"]]["lifecycle_stage"] == stage


def test_lifecycle_follows_the_rules_file():
    later = RULES.model_copy(update={"lifecycle": RULES.lifecycle.model_copy(
        update={"sleeping_after_days": 90, "lost_after_days": 365, "new_within_days": 7})})
    rows = [_row("at_60", days_since_last_order=60.0, interval_median=50.0),
            _row("at_200", days_since_last_order=200.0, interval_median=200.0),
            _one_time("first_10", 10)]
    default = _segments(rows)
    changed = _segments(rows, rules=later)
    assert [default[n]["lifecycle_stage"] for n in ("at_60", "at_200", "first_10")] == [
        "sleeping", "lost", "new"]
    assert [changed[n]["lifecycle_stage"] for n in ("at_60", "at_200", "first_10")] == [
        "active", "sleeping", "active"]


@pytest.mark.parametrize(("clv", "tier"), [
    (1000.0, "vip"), (950.5, "vip"), (949.5, "high"), (800.5, "high"), (799.5, "mid"),
    (500.5, "mid"), (499.5, "low"), (0.0, "low"),
])
def test_value_tier_by_clv_thresholds(clv, tier):
    assert _segments([_row("x", clv_12m=clv)])["x"]["value_tier"] == tier


BEHAVIOUR_CASES = [
    (_row("stock_up", orders=3, interval_cv=0.5, aov=150.0), "stock_up"),
    (_row("cv_at_limit", orders=3, interval_cv=0.6, aov=150.0), "occasional"),
    (_row("two_orders", orders=2, interval_cv=0.1, aov=150.0), "occasional"),
    (_row("median_basket", orders=6, interval_cv=0.2, aov=100.0), "occasional"),
    (_row("hedonist", interval_median=9.0, aov=50.0), "hedonist"),
    (_row("interval_at_limit", interval_median=10.0, aov=50.0), "occasional"),
    (_row("frequent_big_irregular", interval_median=5.0, aov=150.0), "occasional"),
    (_row("frequent_regular_big", interval_median=5.0, interval_cv=0.3, orders=9, aov=150.0),
     "stock_up"),
    (_one_time("one_order_small", 40, aov=20.0), "occasional"),
]


@pytest.mark.parametrize(("row", "kind"), BEHAVIOUR_CASES,
                         ids=[r["customer_id"] for r, _ in BEHAVIOUR_CASES])
def test_behaviour_type_per_the_rules(row, kind):
    assert _segments([row])[row["customer_id"]]["behaviour_type"] == kind


def test_segment_name_joins_the_three_parts():
    row = _row("x", days_since_last_order=31.0, clv_12m=990.0, orders=4, interval_cv=0.3,
               aov=300.0)
    seg = _segments([row])["x"]
    assert seg["segment"] == "at_risk-vip-stock_up"
    assert seg["lifecycle_stage"] in LIFECYCLE_STAGES and seg["value_tier"] in VALUE_TIERS
    assert seg["behaviour_type"] in BEHAVIOUR_TYPES


def test_one_order_customers_are_judged_against_the_shop_interval():
    slow_shop = ShopReference(REFERENCE.clv_quantiles, REFERENCE.revenue_quantiles,
                              median_aov=100.0, median_interval=60.0)
    row = _one_time("one", 45)
    assert _segments([row])["one"]["lifecycle_stage"] == "at_risk"  # 45 > 1.5 x 20
    assert _segments([row], reference=slow_shop)["one"]["lifecycle_stage"] == "active"


# --- value tiers on reference data ---------------------------------------------------------------


def _population(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"C{seed}-{i:06d}" for i in range(n)]
    clv = rng.lognormal(7.0, 1.2, n)
    clv[rng.random(n) < 0.05] = 0.0  # some customers are worth nothing
    scores = pl.DataFrame({"customer_id": ids, "clv_12m": clv, "p_alive": rng.random(n)})
    features = pl.DataFrame({
        "customer_id": ids, "revenue": rng.lognormal(8.0, 1.0, n),
        "aov": rng.lognormal(6.0, 0.5, n),
        "interval_median": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2.0, 15.0, n)),
    }).with_columns(pl.col("interval_median").fill_nan(None))
    return scores, features


@pytest.fixture(scope="module")
def population():
    return _population(20_000, seed=1)


@pytest.fixture(scope="module")
def fitted(population):
    return ShopReference.fit(*population)


def _tier_shares(scores: pl.DataFrame, reference: ShopReference) -> dict[str, float]:
    frame = scores.with_columns(
        days_since_last_order=pl.lit(10.0), first_purchase=pl.lit(AS_OF - timedelta(days=400)),
        interval_median=pl.lit(20.0), interval_cv=pl.lit(1.0), orders=pl.lit(5),
        aov=pl.lit(100.0))
    tiers = segments(frame, RULES, reference, AS_OF)["value_tier"]
    return {tier: (tiers == tier).mean() for tier in VALUE_TIERS}


def test_value_tiers_are_5_15_30_50_percent_of_the_reference(population, fitted):
    shares = _tier_shares(population[0], fitted)
    expected = {"vip": 0.05, "high": 0.15, "mid": 0.30, "low": 0.50}
    for tier, share in expected.items():
        assert shares[tier] == pytest.approx(share, abs=0.003), tier


def test_a_new_batch_is_tiered_against_the_fitted_reference(fitted):
    other, _ = _population(5_000, seed=2)  # same shop, another night's customers
    shares = _tier_shares(other, fitted)
    assert shares["vip"] == pytest.approx(0.05, abs=0.015)
    assert shares["low"] == pytest.approx(0.50, abs=0.03)
    # Only the richest of a small batch: tiered against the shop, not against each other.
    rich = other.sort("clv_12m", descending=True).head(100)
    assert _tier_shares(rich, fitted)["vip"] == 1.0


def test_the_reference_holds_the_shop_medians(population, fitted):
    _, features = population
    assert fitted.median_aov == pytest.approx(features["aov"].median())
    assert fitted.median_interval == pytest.approx(features["interval_median"].median())
    assert fitted.clv_at_top(0.0) == pytest.approx(population[0]["clv_12m"].max())
    assert fitted.revenue_at_top(0.2) == pytest.approx(
        np.quantile(features["revenue"].to_numpy(), 0.8), rel=1e-3)


def test_reference_needs_customers_and_falls_back_without_intervals():
    with pytest.raises(ValueError, match="no customers"):
        ShopReference.fit(pl.DataFrame({"clv_12m": []}), pl.DataFrame({"revenue": []}))
    scores = pl.DataFrame({"customer_id": ["a"], "clv_12m": [10.0]})
    features = pl.DataFrame({"customer_id": ["a"], "revenue": [10.0], "aov": [10.0],
                             "interval_median": pl.Series([None], dtype=pl.Float64)})
    assert ShopReference.fit(scores, features).median_interval == 30.0
