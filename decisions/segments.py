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

from retain.decisions.arrays import Column, day_number, first_match, names_of, text_columns
from retain.decisions.rules import Rules

LIFECYCLE_STAGES = ("new", "active", "at_risk", "sleeping", "lost")
VALUE_TIERS = ("vip", "high", "mid", "low")
BEHAVIOUR_TYPES = ("stock_up", "hedonist", "occasional")
# The customer features segments and decisions read, beside the scores.
FEATURE_INPUTS = ("orders", "revenue", "aov", "first_purchase", "last_purchase",
                  "days_since_last_order", "interval_median", "interval_cv")
# What the segments read: scores, then customer features.
SEGMENT_INPUTS = ("p_alive", "clv_12m", "orders", "aov", "first_purchase",
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
        return self._at_top("clv", share)

    def revenue_at_top(self, share: float) -> float:
        return self._at_top("revenue", share)

    def _at_top(self, what: str, share: float) -> float:
        # Asked on every request with the same shares: remembered (the instance is frozen).
        cache = self.__dict__.setdefault("_at_top_cache", {})
        key = (what, share)
        if key not in cache:
            quantiles = self.clv_quantiles if what == "clv" else self.revenue_quantiles
            cache[key] = float(np.interp(1.0 - share, _LEVELS, quantiles))
        return cache[key]


def segment_codes(inputs: dict[str, Column], rules: Rules, reference: ShopReference,
                  as_of: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer the indexes into :data:`LIFECYCLE_STAGES`, :data:`VALUE_TIERS` and
    :data:`BEHAVIOUR_TYPES`, from :data:`SEGMENT_INPUTS` as
    :class:`~retain.decisions.arrays.Column` (dates as day numbers)."""
    life, tiers, behaviour = rules.lifecycle, rules.value_tiers, rules.behaviour
    n = len(inputs["p_alive"].values)
    since_last, p_alive = inputs["days_since_last_order"], inputs["p_alive"]
    since_first = day_number(as_of) - inputs["first_purchase"]
    # A one-order customer is overdue against the shop's typical interval.
    interval = inputs["interval_median"].fill_null(reference.median_interval)
    overdue = since_last > life.at_risk_overdue_ratio * interval
    lifecycle = first_match([
        ((since_last > life.lost_after_days) | (p_alive < life.lost_p_alive_below), 4),
        (since_last >= life.sleeping_after_days, 3),
        (since_first < life.new_within_days, 0),
        (overdue | (p_alive < life.at_risk_p_alive_below), 2),
    ], 1, n)
    clv = inputs["clv_12m"]
    value_tier = first_match([
        (clv >= reference.clv_at_top(tiers.vip), 0),
        (clv >= reference.clv_at_top(tiers.vip + tiers.high), 1),
        (clv >= reference.clv_at_top(tiers.vip + tiers.high + tiers.mid), 2),
    ], 3, n)
    aov = inputs["aov"]
    behaviour_type = first_match([
        ((inputs["orders"] >= behaviour.stock_up_min_orders)
         & (inputs["interval_cv"] < behaviour.stock_up_max_interval_cv)
         & (aov > reference.median_aov), 0),
        ((inputs["interval_median"] < behaviour.hedonist_max_interval_median_days)
         & (aov < reference.median_aov), 1),
    ], 2, n)
    return lifecycle, value_tier, behaviour_type


# ``<lifecycle>-<tier>-<behaviour>`` of every combination, by lifecycle, tier, behaviour code.
SEGMENTS = tuple(f"{stage}-{tier}-{kind}" for stage in LIFECYCLE_STAGES for tier in VALUE_TIERS
                 for kind in BEHAVIOUR_TYPES)


SEGMENT_COLUMNS = ("lifecycle_stage", "value_tier", "behaviour_type", "segment")


def segment_labels(lifecycle: np.ndarray, value_tier: np.ndarray,
                   behaviour_type: np.ndarray) -> list[np.ndarray]:
    """:data:`SEGMENT_COLUMNS` from :func:`segment_codes`, as object arrays of names; the
    segment is ``<lifecycle>-<tier>-<behaviour>``, e.g. ``at_risk-vip-stock_up``: safe in a URL
    path."""
    segment = (lifecycle.astype(np.intp) * len(VALUE_TIERS) + value_tier) \
        * len(BEHAVIOUR_TYPES) + behaviour_type
    return [names_of(LIFECYCLE_STAGES, lifecycle), names_of(VALUE_TIERS, value_tier),
            names_of(BEHAVIOUR_TYPES, behaviour_type), names_of(SEGMENTS, segment)]


def segments(frame: pl.DataFrame, rules: Rules, reference: ShopReference,
             as_of: date) -> pl.DataFrame:
    """``lifecycle_stage, value_tier, behaviour_type, segment`` of each row of ``frame``
    (:data:`SEGMENT_INPUTS`), in its order."""
    inputs = {name: Column.of(frame.get_column(name)) for name in SEGMENT_INPUTS}
    return pl.DataFrame(text_columns(
        SEGMENT_COLUMNS, segment_labels(*segment_codes(inputs, rules, reference, as_of))))
