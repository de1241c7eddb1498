"""Per-customer features at an as-of date, from one batch of customers' transactions.

A pure function of its input: no I/O and no shop-wide figures, so the same code runs on any
partition of customers. Only transactions strictly before the as-of date are used.

Input: contract-typed transactions ``customer_id, order_id, ts, amount, product_id, quantity,
channel``. Output: one row per customer with at least one purchase before the as-of date,
sorted by ``customer_id``:

- RFM in the lifetimes convention (days): ``frequency`` (purchase days - 1), ``recency`` (first
  to last purchase day), ``T`` (first purchase day to the last day before the as-of date),
  ``monetary_value`` (mean total of the repeat purchase days, 0 when there are none);
- ``orders, revenue, aov, refunds`` (revenue is net of returns and refunds);
- purchase-day intervals: ``interval_mean, interval_median, interval_std, interval_cv,
  interval_last, interval_recent_mean`` (the last three), ``days_since_last_order``,
  ``overdue_ratio`` (days since last / own median interval), ``interval_trend`` (recent / median)
  and ``intervals_lengthening`` (trend above 1.25 over at least three intervals);
- basket: ``basket_items, basket_lines``; products: ``distinct_products, top_product_id,
  top_product_share``;
- trend: ``orders_last_90d, orders_prev_90d, revenue_last_90d, revenue_prev_90d,
  revenue_trend`` ((last - prev) / (last + prev), in [-1, 1]);
- channels: ``n_channels, top_channel, top_channel_share`` and ``channel_share_<name>`` for each
  of the given channels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import polars as pl

from retain.features.orders import Frame, bought_line, days_before, orders, window, with_gaps

TREND_DAYS = 90
LENGTHENING_RATIO = 1.25


def channel_column(channel: str) -> str:
    return "channel_share_" + re.sub(r"[^0-9a-z]+", "_", channel.lower()).strip("_")


def customer_features(
    transactions: Frame, as_of: date, channels: Sequence[str] | None = None
) -> pl.DataFrame:
    """Features per customer from transactions strictly before ``as_of`` (see module doc)."""
    return customer_features_lazy(transactions, as_of, channels).collect()


def customer_features_lazy(
    transactions: Frame, as_of: date, channels: Sequence[str] | None = None
) -> pl.LazyFrame:
    lines = window(transactions, None, as_of)
    all_orders = orders(lines)
    purchases = all_orders.filter("is_purchase")
    last_day = days_before(as_of, 1)
    return (
        _rfm_and_intervals(purchases, as_of)
        .join(_order_stats(all_orders, as_of), on="customer_id", how="left")
        .join(_product_mix(lines), on="customer_id", how="left")
        .join(_channel_mix(purchases, channels or ()), on="customer_id", how="left")
        .with_columns(
            (pl.lit(last_day) - pl.col("first_purchase")).dt.total_days().cast(pl.Float64)
            .alias("T"),
            pl.col("distinct_products", "n_channels").fill_null(0),
        )
        .with_columns(
            (pl.col("days_since_last_order") / pl.col("interval_median")).alias("overdue_ratio")
        )
        .select(_COLUMN_ORDER + [pl.col(f"^{channel_column('')}.*$")])
        .sort("customer_id")
    )


_COLUMN_ORDER = [
    "customer_id", "frequency", "recency", "T", "monetary_value",
    "orders", "revenue", "aov", "refunds", "first_purchase", "last_purchase",
    "days_since_last_order", "interval_mean", "interval_median", "interval_std", "interval_cv",
    "interval_last", "interval_recent_mean", "overdue_ratio", "interval_trend",
    "intervals_lengthening", "basket_items", "basket_lines", "distinct_products",
    "top_product_id", "top_product_share", "orders_last_90d", "orders_prev_90d",
    "revenue_last_90d", "revenue_prev_90d", "revenue_trend", "n_channels", "top_channel",
    "top_channel_share",
]


def rfm_summary(transactions: Frame, as_of: date) -> pl.DataFrame:
    """``customer_id, frequency, recency, T, monetary_value`` exactly as
    ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D",
    observation_period_end=as_of - 1 day)`` on transactions strictly before ``as_of``."""
    return rfm_summary_lazy(transactions, as_of).collect()


def rfm_summary_lazy(transactions: Frame, as_of: date) -> pl.LazyFrame:
    purchases = orders(window(transactions, None, as_of)).filter("is_purchase")
    days = purchases.group_by("customer_id", "day").agg(pl.col("amount").sum().alias("day_amount"))
    last_day = days_before(as_of, 1)
    return (
        days.group_by("customer_id")
        .agg(
            (pl.len() - 1).cast(pl.Float64).alias("frequency"),
            (pl.col("day").max() - pl.col("day").min()).dt.total_days().cast(pl.Float64)
            .alias("recency"),
            (pl.lit(last_day) - pl.col("day").min()).dt.total_days().cast(pl.Float64).alias("T"),
            pl.when(pl.len() > 1)
            .then((pl.col("day_amount").sum() - pl.col("day_amount").sort_by("day").first())
                  / (pl.len() - 1))
            .otherwise(0.0)
            .alias("monetary_value"),
        )
        .sort("customer_id")
    )


def _rfm_and_intervals(purchases: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    days = purchases.group_by("customer_id", "day").agg(pl.col("amount").sum().alias("day_amount"))
    gaps = pl.col("gap").drop_nulls()
    return (
        with_gaps(days, ["customer_id"])
        .group_by("customer_id")
        .agg(
            pl.len().alias("n_days"),
            pl.col("day").first().alias("first_purchase"),
            pl.col("day").last().alias("last_purchase"),
            pl.col("day_amount").sum().alias("days_amount"),
            pl.col("day_amount").first().alias("first_day_amount"),
            gaps.mean().alias("interval_mean"),
            gaps.median().alias("interval_median"),
            gaps.std().alias("interval_std"),
            gaps.last().alias("interval_last"),
            gaps.tail(3).mean().alias("interval_recent_mean"),
        )
        .with_columns(
            (pl.col("n_days") - 1).cast(pl.Float64).alias("frequency"),
            (pl.col("last_purchase") - pl.col("first_purchase")).dt.total_days().cast(pl.Float64)
            .alias("recency"),
            (pl.lit(as_of) - pl.col("last_purchase")).dt.total_days().cast(pl.Float64)
            .alias("days_since_last_order"),
            (pl.col("interval_std") / pl.col("interval_mean")).alias("interval_cv"),
            (pl.col("interval_recent_mean") / pl.col("interval_median")).alias("interval_trend"),
        )
        .with_columns(
            pl.when(pl.col("frequency") > 0)
            .then((pl.col("days_amount") - pl.col("first_day_amount")) / pl.col("frequency"))
            .otherwise(0.0)
            .alias("monetary_value"),
            ((pl.col("interval_trend") > LENGTHENING_RATIO) & (pl.col("n_days") >= 4))
            .alias("intervals_lengthening"),
        )
    )


def _order_stats(all_orders: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    recent = pl.col("day") >= days_before(as_of, TREND_DAYS)
    previous = (pl.col("day") >= days_before(as_of, 2 * TREND_DAYS)) & ~recent
    purchase = pl.col("is_purchase")
    last_rev = pl.col("amount").filter(recent).sum()
    prev_rev = pl.col("amount").filter(previous).sum()
    return (
        all_orders.group_by("customer_id")
        .agg(
            purchase.sum().cast(pl.Int64).alias("orders"),
            pl.col("amount").sum().alias("revenue"),
            pl.col("amount").filter(purchase).mean().alias("aov"),
            (~purchase).sum().cast(pl.Int64).alias("refunds"),
            pl.col("items").filter(purchase).mean().alias("basket_items"),
            pl.col("n_lines").filter(purchase).mean().alias("basket_lines"),
            (purchase & recent).sum().cast(pl.Int64).alias("orders_last_90d"),
            (purchase & previous).sum().cast(pl.Int64).alias("orders_prev_90d"),
            last_rev.alias("revenue_last_90d"),
            prev_rev.alias("revenue_prev_90d"),
        )
        .with_columns(
            pl.when((pl.col("revenue_last_90d").abs() + pl.col("revenue_prev_90d").abs()) > 0)
            .then(
                (pl.col("revenue_last_90d") - pl.col("revenue_prev_90d"))
                / (pl.col("revenue_last_90d").abs() + pl.col("revenue_prev_90d").abs())
            )
            .otherwise(0.0)
            .alias("revenue_trend")
        )
    )


def product_orders(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``customer_id, product_id, day`` for every purchased (non-return) product line."""
    return (
        lines.filter(bought_line() & pl.col("product_id").is_not_null())
        .select("customer_id", "product_id", pl.col("ts").dt.date().alias("day"))
    )


def _product_mix(lines: pl.LazyFrame) -> pl.LazyFrame:
    per_product = product_orders(lines).group_by("customer_id", "product_id").agg(pl.len().alias("n"))
    return per_product.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("distinct_products"),
        pl.col("product_id").sort_by("n", "product_id", descending=[True, False]).first()
        .alias("top_product_id"),
        (pl.col("n").max() / pl.col("n").sum()).alias("top_product_share"),
    )


def _channel_mix(purchases: pl.LazyFrame, channels: Sequence[str]) -> pl.LazyFrame:
    per_channel = (
        purchases.filter(pl.col("channel").is_not_null())
        .group_by("customer_id", "channel")
        .agg(pl.len().alias("n"))
    )
    shares = [
        (pl.col("n").filter(pl.col("channel") == name).sum() / pl.col("n").sum())
        .alias(channel_column(name))
        for name in channels
    ]
    return per_channel.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("n_channels"),
        pl.col("channel").sort_by("n", "channel", descending=[True, False]).first()
        .alias("top_channel"),
        (pl.col("n").max() / pl.col("n").sum()).alias("top_channel_share"),
        *shares,
    )


def observed_channels(transactions: Frame) -> list[str]:
    """The order channels present, for naming the ``channel_share_*`` columns consistently."""
    values = transactions.lazy().select(pl.col("channel").drop_nulls().unique()).collect()
    return sorted(values["channel"].to_list())


__all__ = [
    "customer_features", "customer_features_lazy", "observed_channels", "rfm_summary",
    "rfm_summary_lazy",
]
