"""Prediction against what then happened: every past score run whose horizon has passed.

A run scored at ``as_of`` predicted, per customer, the probability of no purchase in the
``horizon_days`` after it (``churn_probability``), the revenue (``predicted_revenue``) and the
orders (``expected_orders``) in that horizon. Once the transactions cover the horizon, the
outcomes are known (``features.labels``: the same definition training learns from) and the run
can be judged:

- churn calibration: the predicted churn rate against the observed one, overall and by decile
  of predicted churn (decile 1: the 10% least likely to churn; 10: the most likely), and the
  Brier score (mean squared error of the probability, lower is better);
- revenue: predicted against actual totals (a ratio near 1 says the money forecast holds at the
  shop's level) and the mean absolute error per customer; orders likewise, in totals.

One row per run x decile (:data:`CALIBRATION_COLUMNS`), decile 0 being the run's every customer:
the rows the score store keeps (its ``calibration`` table) and the report draws over time.
A customer whose history the transactions lack (another export, a narrower window) is left out,
and a run whose horizon the transactions do not yet cover is skipped (:func:`horizon_passed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import polars as pl

from retain.features.labels import labels
from retain.features.orders import Frame

__all__ = ["CALIBRATION_COLUMNS", "N_DECILES", "calibrate_run", "calibration_over_time",
           "horizon_end", "horizon_passed", "summary"]

N_DECILES = 10
CALIBRATION_COLUMNS = {
    "run_id": pl.String, "as_of": pl.Date, "horizon_days": pl.Int32,
    "model_version": pl.String, "decile": pl.Int32, "customers": pl.Int64,
    "predicted_churn": pl.Float64, "observed_churn": pl.Float64, "brier": pl.Float64,
    "predicted_revenue": pl.Float64, "actual_revenue": pl.Float64,
    "revenue_mae": pl.Float64, "predicted_orders": pl.Float64, "actual_orders": pl.Float64,
    "measured_at": pl.Datetime("us", "UTC"),
}
PREDICTIONS = ("customer_id", "churn_probability", "predicted_revenue", "expected_orders")


def horizon_end(as_of: date, horizon_days: int) -> date:
    """The first day after a run's horizon."""
    return as_of + timedelta(days=int(horizon_days))


def horizon_passed(as_of: date, horizon_days: int, data_until: date) -> bool:
    """Whether transactions through ``data_until`` (the last day they hold) cover the whole
    horizon of a run scored at ``as_of``."""
    return horizon_end(as_of, horizon_days) <= data_until + timedelta(days=1)


def calibrate_run(predictions: pl.DataFrame, transactions: Frame, as_of: date,
                  horizon_days: int, *, run_id: str = "", model_version: str = "",
                  measured_at: datetime | None = None) -> pl.DataFrame:
    """One run's predictions (``customer_id, churn_probability, predicted_revenue,
    expected_orders``) against the outcomes in the horizon after ``as_of``: rows for decile 0
    (every customer) and deciles 1..10 of predicted churn (:data:`CALIBRATION_COLUMNS`)."""
    outcomes = labels(transactions, as_of, horizon_days).select(
        "customer_id", (~pl.col("ordered_again")).cast(pl.Float64).alias("churned"),
        pl.col("revenue_h").cast(pl.Float64).alias("revenue"),
        pl.col("orders_h").cast(pl.Float64).alias("orders"))
    joined = predictions.select(
        pl.col("customer_id").cast(pl.String),
        *(pl.col(c).cast(pl.Float64) for c in PREDICTIONS[1:]),
    ).join(outcomes, on="customer_id", how="inner")
    n = joined.height
    # Equal-count deciles by rank (ties broken by order): a shop where half the customers
    # share one probability still gets ten groups.
    ranked = joined.with_columns(
        (pl.col("churn_probability").rank("ordinal") - 1).mul(N_DECILES).floordiv(max(n, 1))
        .add(1).cast(pl.Int32).alias("decile"))
    measures = [
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("churn_probability").mean().alias("predicted_churn"),
        pl.col("churned").mean().alias("observed_churn"),
        (pl.col("churn_probability") - pl.col("churned")).pow(2).mean().alias("brier"),
        pl.col("predicted_revenue").sum().alias("predicted_revenue"),
        pl.col("revenue").sum().alias("actual_revenue"),
        (pl.col("predicted_revenue") - pl.col("revenue")).abs().mean().alias("revenue_mae"),
        pl.col("expected_orders").sum().alias("predicted_orders"),
        pl.col("orders").sum().alias("actual_orders"),
    ]
    whole = ranked.select(pl.lit(0, pl.Int32).alias("decile"), *measures)
    by_decile = ranked.group_by("decile").agg(measures)
    rows = pl.concat([whole, by_decile.select(whole.columns)]).sort("decile")
    if n == 0:
        rows = rows.head(0)
    return rows.with_columns(
        pl.lit(run_id, pl.String).alias("run_id"), pl.lit(as_of, pl.Date).alias("as_of"),
        pl.lit(int(horizon_days), pl.Int32).alias("horizon_days"),
        pl.lit(model_version, pl.String).alias("model_version"),
        pl.lit(measured_at or datetime.now(UTC), pl.Datetime("us", "UTC")).alias("measured_at"),
    ).select([pl.col(c).cast(t) for c, t in CALIBRATION_COLUMNS.items()])


def calibration_over_time(store, transactions: Frame,
                          runs: Iterable[dict] | None = None) -> tuple[pl.DataFrame, list[dict]]:
    """Every complete run of ``store`` (an open ``serving.store.ScoreStore``; or ``runs``, as
    :meth:`~serving.store.ScoreStore.runs` gives them) whose horizon the transactions cover,
    judged (rows as :func:`calibrate_run`, oldest run first), and the runs skipped, each with
    ``reason``. Nothing is written: the caller keeps the rows (``store.write_calibration``)."""
    data_until = _last_day(transactions)
    chosen = [r for r in (runs if runs is not None else store.runs(limit=1000))
              if r.get("status", "complete") == "complete"]
    measured_at = datetime.now(UTC)
    frames, skipped = [], []
    for run in sorted(chosen, key=lambda r: (r["as_of"], r["run_id"])):
        predictions = store.scores(run["run_id"], columns=[*PREDICTIONS, "horizon_days"])
        if predictions.height == 0:
            skipped.append({**run, "reason": "no scores"})
            continue
        horizon = int(predictions["horizon_days"].drop_nulls().mode().first() or 90)
        if data_until is None or not horizon_passed(run["as_of"], horizon, data_until):
            skipped.append({**run, "reason": (
                f"its {horizon}-day horizon ends {horizon_end(run['as_of'], horizon)}; the "
                f"transactions end {data_until}")})
            continue
        frames.append(calibrate_run(predictions, transactions, run["as_of"], horizon,
                                    run_id=run["run_id"], model_version=run["model_version"],
                                    measured_at=measured_at))
    if not frames:
        return pl.DataFrame(schema=CALIBRATION_COLUMNS), skipped
    return pl.concat(frames), skipped


def summary(calibration: pl.DataFrame) -> pl.DataFrame:
    """One row per run (its decile 0) with the revenue ratio (actual / predicted)."""
    whole = calibration.filter(pl.col("decile") == 0)
    return whole.with_columns(
        (pl.col("actual_revenue") / pl.col("predicted_revenue")).alias("revenue_ratio"),
        (pl.col("observed_churn") - pl.col("predicted_churn")).alias("churn_gap"),
    ).drop("decile").sort("as_of", "run_id")


def _last_day(transactions: Frame) -> date | None:
    last = transactions.select(pl.col("ts").max())
    if isinstance(last, pl.LazyFrame):
        last = last.collect()
    value = last.item()
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value

