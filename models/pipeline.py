"""The scoring pipeline: raw transactions and an as-of date in, one row of scores per customer.

Features (``features/``) -> BTYD outputs -> LightGBM churn, revenue and timing -> the score
columns below. Training (``training/``) fits the parts; batch scoring and the API call
:meth:`ScoringPipeline.score`, so both compute exactly the same numbers.

Output, one row per customer with a purchase before the as-of date::

    customer_id, as_of, horizon_days, p_alive, churn_probability, expected_orders,
    predicted_revenue, clv_12m, next_order_date, next_order_p10, next_order_p90,
    overdue_days, due_product_id, due_product_date, score_source
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from features.customers import customer_features_lazy
from features.orders import Frame
from features.products import customer_product_features_lazy
from models.btyd import BTYDModel
from models.churn import ChurnClassifier
from models.timing import NextOrderRegressor
from models.value import RevenueRegressor

SCORE_COLUMNS = (
    "customer_id", "as_of", "horizon_days", "p_alive", "churn_probability", "expected_orders",
    "predicted_revenue", "clv_12m", "next_order_date", "next_order_p10", "next_order_p90",
    "overdue_days", "due_product_id", "due_product_date", "score_source",
)
# Bumped whenever a fitted part's meaning changes: a pickled pipeline is only valid with the
# code it was fitted with.
PIPELINE_FORMAT = 2
# A product bought at least twice and not overdue beyond this many of its own intervals is
# still in use; beyond it the customer has most likely switched.
DUE_PRODUCT_MAX_OVERDUE = 3.0
CLV_SCALE_BOUNDS = (0.25, 4.0)


def with_btyd(features: pl.DataFrame, btyd: BTYDModel, horizon_days: int, as_of: date) -> pl.DataFrame:
    """Add the probabilistic model's outputs (and the season) as model inputs."""
    outputs = btyd.predict(features, horizon_days)
    return features.with_columns(
        pl.Series("btyd_p_alive", outputs["p_alive"].to_numpy()),
        pl.Series("btyd_p_no_order", outputs["p_no_order"].to_numpy()),
        pl.Series("btyd_expected_orders", outputs["expected_orders"].to_numpy()),
        pl.Series("btyd_expected_revenue", outputs["expected_revenue"].to_numpy()),
        pl.Series("btyd_clv_12m", outputs["clv_12m"].to_numpy()),
        pl.lit(as_of.month, pl.Int8).alias("as_of_month"),
    )


def due_products(products: pl.DataFrame, as_of: date, next_orders: pl.DataFrame) -> pl.DataFrame:
    """Per customer, the product due next and when: ``customer_id, due_product_id,
    due_product_date`` (never before the as-of date).

    Candidates are products bought at least twice and still in use, ranked by how often they
    were bought, doubled when their own cadence says they run out by the customer's next
    expected order (``next_orders``: ``customer_id, next_order_date``).
    """
    candidates = products.filter(
        (pl.col("purchases") >= 2)
        & pl.col("next_due").is_not_null()
        & (pl.col("overdue_ratio") <= DUE_PRODUCT_MAX_OVERDUE)
    ).join(next_orders, on="customer_id", how="left")
    # A product that runs out by the next expected order counts double.
    due_by_next = pl.col("next_due") <= pl.col("next_order_date").fill_null(pl.col("next_due"))
    return (
        candidates.sort(
            [pl.col("purchases") * (1 + due_by_next.cast(pl.Int64)), "next_due", "product_id"],
            descending=[True, False, False],
        )
        .group_by("customer_id", maintain_order=True)
        .first()
        .select(
            "customer_id",
            pl.col("product_id").alias("due_product_id"),
            pl.max_horizontal(pl.col("next_due"), pl.lit(as_of)).alias("due_product_date"),
        )
    )


@dataclass
class ScoringPipeline:
    """Fitted parts plus what scoring needs to reproduce training's inputs.

    ``eligible`` is False when the shop had too little history for the LightGBM models; then
    every score comes from the probabilistic model (``score_source = "btyd"``). Customers with at
    most ``cold_start_max_orders`` orders get the probabilistic scores too (default 0: none, as
    the LightGBM models, trained on one-order histories as well, rank them better); one-order
    customers scored by LightGBM are flagged ``score_source = "gbm_one_order"``.
    """

    horizon_days: int
    channels: Sequence[str]
    btyd: BTYDModel
    churn: ChurnClassifier | None = None
    value: RevenueRegressor | None = None
    timing: NextOrderRegressor | None = None
    cold_start_max_orders: int = 0
    trained_as_of: date | None = None
    notes: list[str] = field(default_factory=list)
    format_version: int = PIPELINE_FORMAT

    @property
    def eligible(self) -> bool:
        return self.churn is not None and self.value is not None and self.timing is not None

    def features(self, transactions: Frame, as_of: date) -> tuple[pl.DataFrame, pl.DataFrame]:
        customers, products = pl.collect_all([
            customer_features_lazy(transactions, as_of, self.channels),
            customer_product_features_lazy(transactions, as_of),
        ])
        return with_btyd(customers, self.btyd, self.horizon_days, as_of), products

    def score(self, transactions: Frame, as_of: date) -> pl.DataFrame:
        """Scores for every customer with a purchase before ``as_of`` (see module doc)."""
        frame, products = self.features(transactions, as_of)
        return self.score_features(frame, products, as_of)

    def score_features(self, frame: pl.DataFrame, products: pl.DataFrame, as_of: date) -> pl.DataFrame:
        if frame.height == 0:
            return empty_scores()
        churn = frame["btyd_p_no_order"].to_numpy()
        revenue = frame["btyd_expected_revenue"].to_numpy()
        source = np.full(frame.height, "btyd", dtype=object)
        # Timing fallback: the customer's own median interval from the last order; the shop's
        # typical cadence for one-timers.
        own = (frame["interval_median"] - frame["days_since_last_order"]).clip(lower_bound=0)
        shop_interval = frame["interval_median"].median() or float(self.horizon_days)
        p50 = own.fill_null(shop_interval).to_numpy().astype(float)
        p10, p90 = p50 * 0.5, p50 * 2.0 + 7
        if self.eligible:
            warm = (frame["orders"] > self.cold_start_max_orders).to_numpy()
            assert self.churn and self.value and self.timing
            churn = np.where(warm, self.churn.predict_churn_probability(frame).to_numpy(), churn)
            revenue = np.where(warm, self.value.predict_revenue(frame).to_numpy(), revenue)
            timing = self.timing.predict_days_to_next_order(frame)
            p10 = np.where(warm, timing["p10"].to_numpy(), p10)
            p50 = np.where(warm, timing["p50"].to_numpy(), p50)
            p90 = np.where(warm, timing["p90"].to_numpy(), p90)
            # One order is little to go on: say so per customer, so a CRM can treat it apart.
            one_order = (frame["orders"] <= 1).to_numpy()
            source = np.where(warm, np.where(one_order, "gbm_one_order", "gbm"), source)
        btyd_revenue = frame["btyd_expected_revenue"].to_numpy()
        # CLV: the probabilistic model's 12-month shape, scaled to the better horizon revenue.
        scale = np.clip((revenue + 1e-9) / (btyd_revenue + 1e-9), *CLV_SCALE_BOUNDS)
        day = pl.lit(as_of)
        scores = frame.select(
            "customer_id",
            pl.lit(as_of).alias("as_of"),
            pl.lit(self.horizon_days, pl.Int32).alias("horizon_days"),
            pl.col("btyd_p_alive").alias("p_alive"),
            pl.Series("churn_probability", np.asarray(churn, dtype=float)),
            pl.col("btyd_expected_orders").alias("expected_orders"),
            pl.Series("predicted_revenue", np.asarray(revenue, dtype=float)),
            (pl.col("btyd_clv_12m") * pl.Series(scale)).alias("clv_12m"),
            (day + pl.duration(days=pl.Series(np.round(p50)))).alias("next_order_date"),
            (day + pl.duration(days=pl.Series(np.round(p10)))).alias("next_order_p10"),
            (day + pl.duration(days=pl.Series(np.round(p90)))).alias("next_order_p90"),
            (pl.col("days_since_last_order") - pl.col("interval_median")).clip(lower_bound=0)
            .alias("overdue_days"),
            pl.Series("score_source", source.astype(str)),
        )
        due = due_products(products, as_of, scores.select("customer_id", "next_order_date"))
        return scores.join(due, on="customer_id", how="left").select(SCORE_COLUMNS)


def empty_scores() -> pl.DataFrame:
    schema = {
        "customer_id": pl.String, "as_of": pl.Date, "horizon_days": pl.Int32,
        "p_alive": pl.Float64, "churn_probability": pl.Float64, "expected_orders": pl.Float64,
        "predicted_revenue": pl.Float64, "clv_12m": pl.Float64, "next_order_date": pl.Date,
        "next_order_p10": pl.Date, "next_order_p90": pl.Date, "overdue_days": pl.Float64,
        "due_product_id": pl.String, "due_product_date": pl.Date, "score_source": pl.String,
    }
    return pl.DataFrame(schema=schema)

