"""analytics/calibration.py: past runs' predictions against what then happened."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from retain.analytics.calibration import (
    calibrate_run,
    calibration_over_time,
    horizon_passed,
    summary,
)
from retain.serving.store import ScoreStore
from tests.conftest import make_transactions

AS_OF = date(2026, 3, 1)


def tiny_shop() -> pl.DataFrame:
    """Four customers before 2026-03-01; A and B buy again within 30 days of it, C and D not."""
    return make_transactions([
        ("A", "o1", "2026-01-05 10:00", 100.0),
        ("B", "o2", "2026-01-06 10:00", 50.0),
        ("C", "o3", "2026-01-07 10:00", 80.0),
        ("D", "o4", "2026-01-08 10:00", 20.0),
        ("A", "o5", "2026-03-10 10:00", 60.0),
        ("B", "o6", "2026-03-20 10:00", 40.0),
        ("B", "o7", "2026-03-25 10:00", 10.0),
        ("C", "o8", "2026-04-15 10:00", 30.0),  # after the 30-day horizon
    ])


def predictions() -> pl.DataFrame:
    return pl.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "churn_probability": [0.1, 0.2, 0.7, 0.9],
        "predicted_revenue": [50.0, 60.0, 10.0, 0.0],
        "expected_orders": [1.0, 1.5, 0.2, 0.1],
    })


def test_a_run_is_judged_by_hand():
    rows = calibrate_run(predictions(), tiny_shop(), AS_OF, 30, run_id="r1", model_version="3")
    whole = rows.filter(pl.col("decile") == 0).row(0, named=True)
    assert whole["customers"] == 4
    assert whole["predicted_churn"] == pytest.approx((0.1 + 0.2 + 0.7 + 0.9) / 4)
    assert whole["observed_churn"] == pytest.approx(0.5)  # C and D did not buy in 30 days
    brier = ((0.1 - 0) ** 2 + (0.2 - 0) ** 2 + (0.7 - 1) ** 2 + (0.9 - 1) ** 2) / 4
    assert whole["brier"] == pytest.approx(brier)
    assert whole["actual_revenue"] == pytest.approx(60 + 50)
    assert whole["predicted_revenue"] == pytest.approx(120)
    assert whole["revenue_mae"] == pytest.approx((10 + 10 + 10 + 0) / 4)
    assert (whole["predicted_orders"], whole["actual_orders"]) == (pytest.approx(2.8), 3.0)
    assert (whole["run_id"], whole["model_version"], whole["horizon_days"]) == ("r1", "3", 30)
    # Four customers in ten deciles: each its own, by rank of predicted churn.
    deciles = rows.filter(pl.col("decile") > 0).sort("decile")
    assert deciles["customers"].sum() == 4
    assert deciles["observed_churn"].to_list() == [0.0, 0.0, 1.0, 1.0]


def test_the_horizon_must_have_passed():
    assert horizon_passed(AS_OF, 30, AS_OF + timedelta(days=29))
    assert not horizon_passed(AS_OF, 30, AS_OF + timedelta(days=28))


def test_the_simulators_truth_judged_as_a_forecast_is_perfect_and_a_rule_ranks():
    """The simulator's true future (orders and revenue in the 90 days after as-of), given as
    the forecast, scores a Brier of 0 and a revenue error of 0: calibration reads the outcome
    as the simulator wrote it. A crude recency rule then ranks: its top decile churns more."""
    from retain.simulate import simulate_shop

    shop = simulate_shop(4000, seed=3)
    tx = pl.concat([shop.transactions, shop.future_transactions])
    truth = shop.truth.select(
        "customer_id", (pl.col("orders_next_90d") == 0).cast(pl.Float64).alias("churn_probability"),
        pl.col("revenue_next_90d").alias("predicted_revenue"),
        pl.col("orders_next_90d").cast(pl.Float64).alias("expected_orders"))
    whole = calibrate_run(truth, tx, shop.as_of, 90).filter(pl.col("decile") == 0).row(0, named=True)
    assert whole["customers"] > 3900  # the customers with a purchase before as-of
    # Two customers of 4,000 whose one order in the horizon was returned whole: the
    # simulator counts the order, the contract (as training's labels) counts no purchase.
    assert whole["brier"] < 0.001
    assert whole["revenue_mae"] == pytest.approx(0.0, abs=1e-6)
    assert whole["actual_orders"] == pytest.approx(whole["predicted_orders"], rel=0.01)

    recent = shop.transactions.filter(
        pl.col("ts") >= pl.lit(shop.as_of - timedelta(days=90)).cast(pl.Datetime("us")))
    bought = recent.group_by("customer_id").agg(pl.col("amount").sum().alias("spent"))
    rule = shop.truth.select("customer_id").join(bought, on="customer_id", how="left").select(
        "customer_id", pl.when(pl.col("spent").is_null()).then(0.8).otherwise(0.2)
        .alias("churn_probability"), pl.col("spent").fill_null(0.0).alias("predicted_revenue"),
        pl.lit(1.0).alias("expected_orders"))
    rows = calibrate_run(rule, tx, shop.as_of, 90)
    low = rows.filter(pl.col("decile") == 1)["observed_churn"].item()
    high = rows.filter(pl.col("decile") == 10)["observed_churn"].item()
    assert high > low + 0.3


def test_every_passed_run_of_the_store_over_time(tmp_path):
    tx = tiny_shop()
    with ScoreStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        def scored(as_of: date) -> pl.DataFrame:
            return predictions().with_columns(pl.lit(30, pl.Int32).alias("horizon_days"))

        early = store.write_run(scored(AS_OF), model_version="3", as_of=AS_OF)
        late = store.write_run(scored(date(2026, 4, 1)), model_version="4",
                               as_of=date(2026, 4, 1))
        rows, skipped = calibration_over_time(store, tx)
        assert rows["run_id"].unique().to_list() == [early]
        assert [s["run_id"] for s in skipped] == [late]
        assert "horizon ends 2026-05-01" in skipped[0]["reason"]
        store.write_calibration(rows)
        kept = summary(store.calibration())
        assert kept.height == 1 and kept["revenue_ratio"].item() == pytest.approx(110 / 120)
