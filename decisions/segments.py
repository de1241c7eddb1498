"""Micro-segments: lifecycle stage x value tier x behaviour type, per customer.

Thresholds come from the rules file. The shop-wide figures they are compared with (the CLV
distribution, the median basket, the typical interval) are fitted once, at training, in a
:class:`ShopReference`, so that the nightly batch and the API put a customer in the same segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from retain.decisions.rules import Rules

LIFECYCLE_STAGES = ("new", "active", "at_risk", "sleeping", "lost")
VALUE_TIERS = ("vip", "high", "mid", "low")
BEHAVIOUR_TYPES = ("stock_up", "hedonist", "occasional")
# The customer features segments and decisions read, beside the scores.
FEATURE_INPUTS = ("orders", "revenue", "aov", "first_purchase", "last_purchase",
                  "days_since_last_order", "interval_median", "interval_cv")
_LEVELS = np.linspace(0.0, 1.0, 1001)


@dataclass(frozen=True)
class ShopReference:
    """Shop-wide figures at the training as-of date: quantiles (at 0, 0.001, ..., 1) of
    12-month CLV and of past revenue, the median basket value and the median interval."""

    clv_quantiles: np.ndarray
    revenue_quantiles: np.ndarray
    median_aov: float
    median_interval: float

    @classmethod
    def fit(cls, scores: pl.DataFrame, features: pl.DataFrame) -> ShopReference:
        if scores.height == 0 or features.height == 0:
            raise ValueError("no customers to take shop-wide figures from")

        def quantiles(column: pl.Series) -> np.ndarray:
            return np.nanquantile(column.cast(pl.Float64).fill_null(0.0).to_numpy(), _LEVELS)

        return cls(
            clv_quantiles=quantiles(scores["clv_12m"]),
            revenue_quantiles=quantiles(features["revenue"]),
            median_aov=float(features["aov"].median() or 0.0),
            median_interval=float(features["interval_median"].median() or 30.0),
        )

    def clv_at_top(self, share: float) -> float:
        """The CLV above which the top ``share`` of customers lie."""
        return float(np.interp(1.0 - share, _LEVELS, self.clv_quantiles))

    def revenue_at_top(self, share: float) -> float:
        return float(np.interp(1.0 - share, _LEVELS, self.revenue_quantiles))


def segment_expressions(rules: Rules, reference: ShopReference, as_of: date) -> list[pl.Expr]:
    """Expressions adding ``lifecycle_stage, value_tier, behaviour_type, segment`` to a frame of
    scores joined with :data:`FEATURE_INPUTS`."""
    life, tiers, behaviour = rules.lifecycle, rules.value_tiers, rules.behaviour
    since_last = pl.col("days_since_last_order")
    since_first = (pl.lit(as_of) - pl.col("first_purchase")).dt.total_days()
    # A one-order customer is overdue against the shop's typical interval.
    interval = pl.col("interval_median").fill_null(reference.median_interval)
    overdue = since_last > life.at_risk_overdue_ratio * interval
    lifecycle = (
        pl.when((since_last > life.lost_after_days) | (pl.col("p_alive") < life.lost_p_alive_below))
        .then(pl.lit("lost"))
        .when(since_last >= life.sleeping_after_days).then(pl.lit("sleeping"))
        .when(since_first < life.new_within_days).then(pl.lit("new"))
        .when(overdue | (pl.col("p_alive") < life.at_risk_p_alive_below)).then(pl.lit("at_risk"))
        .otherwise(pl.lit("active"))
    )
    clv = pl.col("clv_12m")
    value_tier = (
        pl.when(clv >= reference.clv_at_top(tiers.vip)).then(pl.lit("vip"))
        .when(clv >= reference.clv_at_top(tiers.vip + tiers.high)).then(pl.lit("high"))
        .when(clv >= reference.clv_at_top(tiers.vip + tiers.high + tiers.mid)).then(pl.lit("mid"))
        .otherwise(pl.lit("low"))
    )
    aov = pl.col("aov")
    behaviour_type = (
        pl.when((pl.col("orders") >= behaviour.stock_up_min_orders)
                & (pl.col("interval_cv") < behaviour.stock_up_max_interval_cv)
                & (aov > reference.median_aov))
        .then(pl.lit("stock_up"))
        .when((pl.col("interval_median") < behaviour.hedonist_max_interval_median_days)
              & (aov < reference.median_aov))
        .then(pl.lit("hedonist"))
        .otherwise(pl.lit("occasional"))
    )
    return [
        lifecycle.alias("lifecycle_stage"),
        value_tier.alias("value_tier"),
        behaviour_type.alias("behaviour_type"),
    ]


def segment_name() -> pl.Expr:
    """``<lifecycle>-<tier>-<behaviour>``, e.g. ``at_risk-vip-stock_up``: safe in a URL path."""
    return pl.concat_str("lifecycle_stage", "value_tier", "behaviour_type", separator="-") \
        .alias("segment")
