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

import numpy as np
import polars as pl

from retain.features.segments import (
    Frame,
    Lines,
    bool_column,
    date_column,
    float_column,
    gaps_within,
    int_column,
    lengths,
    lines_before,
    name_column,
    seg_count,
    seg_first,
    seg_ids,
    seg_mean_of_last,
    seg_median,
    seg_sum,
    sort_keys,
    starts_of,
)
from retain.features.segments import changes as _changes

TREND_DAYS = 90
LENGTHENING_RATIO = 1.25


def channel_column(channel: str) -> str:
    return "channel_share_" + re.sub(r"[^0-9a-z]+", "_", channel.lower()).strip("_")


_SCHEMA = {
    "customer_id": pl.String, "frequency": pl.Float64, "recency": pl.Float64, "T": pl.Float64,
    "monetary_value": pl.Float64, "orders": pl.Int64, "revenue": pl.Float64, "aov": pl.Float64,
    "refunds": pl.Int64, "first_purchase": pl.Date, "last_purchase": pl.Date,
    "days_since_last_order": pl.Float64, "interval_mean": pl.Float64,
    "interval_median": pl.Float64, "interval_std": pl.Float64, "interval_cv": pl.Float64,
    "interval_last": pl.Float64, "interval_recent_mean": pl.Float64,
    "overdue_ratio": pl.Float64, "interval_trend": pl.Float64,
    "intervals_lengthening": pl.Boolean, "basket_items": pl.Float64,
    "basket_lines": pl.Float64, "distinct_products": pl.Int64, "top_product_id": pl.String,
    "top_product_share": pl.Float64, "orders_last_90d": pl.Int64, "orders_prev_90d": pl.Int64,
    "revenue_last_90d": pl.Float64, "revenue_prev_90d": pl.Float64,
    "revenue_trend": pl.Float64, "n_channels": pl.Int64, "top_channel": pl.String,
    "top_channel_share": pl.Float64,
}
_COLUMN_ORDER = list(_SCHEMA)
_RFM = ("customer_id", "frequency", "recency", "T", "monetary_value")


def customer_features(
    transactions: Frame | Lines, as_of: date, channels: Sequence[str] | None = None
) -> pl.DataFrame:
    """Features per customer from transactions strictly before ``as_of`` (see module doc).
    ``transactions`` may be ``features.segments.lines_before(transactions, as_of)``, to share
    its sort with ``features.products``."""
    lines = lines_before(transactions, as_of)
    channels = list(channels or ())
    days = _purchase_days(lines)
    if not len(days.buyers):
        return pl.DataFrame(schema={**_SCHEMA, **{channel_column(c): pl.Float64 for c in channels}})
    columns = {
        **_rfm_and_intervals(lines, days),
        **_order_stats(lines, days.buyers),
        **_product_mix(lines, days.buyers),
        **_channel_mix(lines, days.buyers, channels),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["overdue_ratio"] = float_column(
            "overdue_ratio", columns.pop("_days_since_last") / columns.pop("_median"))
    return pl.DataFrame([columns[name] for name in _COLUMN_ORDER]
                        + [columns[channel_column(c)] for c in channels])


def rfm_summary(transactions: Frame | Lines, as_of: date) -> pl.DataFrame:
    """``customer_id, frequency, recency, T, monetary_value`` exactly as
    ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D",
    observation_period_end=as_of - 1 day)`` on transactions strictly before ``as_of``."""
    lines = lines_before(transactions, as_of)
    days = _purchase_days(lines)
    if not len(days.buyers):
        return pl.DataFrame(schema={name: _SCHEMA[name] for name in _RFM})
    columns = _rfm_and_intervals(lines, days, intervals=False)
    return pl.DataFrame([columns[name] for name in _RFM])


class _PurchaseDays:
    """Each buyer's purchase days, sorted: ``day``, ``amount`` (the day's purchase orders'
    net amounts), ``starts`` (each buyer's first day), ``buyers`` (indices into
    ``lines.customer_ids``: the customers with at least one purchase)."""

    def __init__(self, lines: Lines) -> None:
        orders = lines.orders
        bought = np.flatnonzero(orders.purchase)
        cust, day, amount = orders.cust[bought], orders.day[bought], orders.amount[bought]
        # A customer's orders come in order-id order: sort them by day (stable: same-day
        # orders keep that order, so their sum does not depend on the input's line order).
        low = int(day.min()) if len(day) else 0
        span = int(day.max()) - low + 1 if len(day) else 1
        key = cust * span + (day - low)
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = starts_of(_changes(key))
        self.cust = cust[order][starts]
        self.day = day[order][starts]
        self.amount = seg_sum(amount[order], starts)
        self.new_buyer = _changes(self.cust)
        self.starts = starts_of(self.new_buyer)
        self.buyers = self.cust[self.starts]


def _purchase_days(lines: Lines) -> _PurchaseDays:
    return _PurchaseDays(lines)


def _rfm_and_intervals(lines: Lines, days: _PurchaseDays, intervals: bool = True) -> dict:
    starts, end = days.starts, lines.end
    n_days = lengths(starts, len(days.day))
    first, last = days.day[starts], days.day[starts + n_days - 1]
    frequency = (n_days - 1).astype(np.float64)
    repeat = seg_sum(np.where(days.new_buyer, 0.0, days.amount), starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary_value = np.where(n_days > 1, repeat / frequency, 0.0)
    columns = {
        "customer_id": lines.customer_ids.gather(days.buyers),
        "frequency": float_column("frequency", frequency),
        "recency": float_column("recency", (last - first).astype(np.float64)),
        "T": float_column("T", (end - 1 - first).astype(np.float64)),
        "monetary_value": float_column("monetary_value", monetary_value),
    }
    if not intervals:
        return columns
    # Gaps between a buyer's consecutive purchase days, in day order.
    gap, rows = gaps_within(days.day, days.new_buyer)
    gap_buyer = seg_ids(starts, len(days.day))[rows]
    n_buyers = len(starts)
    n_gaps = n_days - 1
    gap_starts = np.cumsum(n_gaps) - n_gaps
    gaps = gap.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(gap_buyer, weights=gaps, minlength=n_buyers) / n_gaps
        deviations = np.bincount(gap_buyer, weights=(gaps - mean[gap_buyer]) ** 2,
                                 minlength=n_buyers)
        std = np.where(n_gaps > 1, np.sqrt(deviations / (n_gaps - 1)), np.nan)
        median = seg_median(gap, gap_buyer, n_buyers)
        recent = seg_mean_of_last(gaps, gap_starts, 3)
        trend = recent / median
        interval_last = np.full(n_buyers, np.nan)
        has = n_gaps > 0
        interval_last[has] = gaps[gap_starts[has] + n_gaps[has] - 1]
        days_since_last = (end - last).astype(np.float64)
        columns.update({
            "first_purchase": date_column("first_purchase", first),
            "last_purchase": date_column("last_purchase", last),
            "days_since_last_order": float_column("days_since_last_order", days_since_last),
            "interval_mean": float_column("interval_mean", mean),
            "interval_median": float_column("interval_median", median),
            "interval_std": float_column("interval_std", std),
            "interval_cv": float_column("interval_cv", std / mean),
            "interval_last": float_column("interval_last", interval_last),
            "interval_recent_mean": float_column("interval_recent_mean", recent),
            "interval_trend": float_column("interval_trend", trend),
            "intervals_lengthening": bool_column(
                "intervals_lengthening", (trend > LENGTHENING_RATIO) & (n_days >= 4)),
            "_days_since_last": days_since_last,
            "_median": median,
        })
    return columns


def _order_stats(lines: Lines, buyers: np.ndarray) -> dict:
    """Over every order (purchases, cancellations, refunds, adjustments) of the buyers."""
    orders, end = lines.orders, lines.end
    per_order = lines.order_starts
    items = seg_sum(np.where(lines.bought, np.nan_to_num(lines.quantity), 0.0), per_order)
    n_lines = seg_count(lines.bought, per_order)
    starts = starts_of(_changes(orders.cust))  # every customer has an order: one per customer
    purchase = orders.purchase
    recent = orders.day >= end - TREND_DAYS
    previous = (orders.day >= end - 2 * TREND_DAYS) & ~recent
    n = seg_count(purchase, starts)[buyers]
    revenue_last = seg_sum(np.where(recent, orders.amount, 0.0), starts)[buyers]
    revenue_prev = seg_sum(np.where(previous, orders.amount, 0.0), starts)[buyers]
    swing = np.abs(revenue_last) + np.abs(revenue_prev)

    def purchase_mean(values: np.ndarray) -> np.ndarray:
        return seg_sum(np.where(purchase, values, 0.0), starts)[buyers] / n

    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "orders": int_column("orders", n),
            "revenue": float_column("revenue", seg_sum(orders.amount, starts)[buyers]),
            "aov": float_column("aov", purchase_mean(orders.amount)),
            "refunds": int_column("refunds", seg_count(~purchase, starts)[buyers]),
            "basket_items": float_column("basket_items", purchase_mean(items)),
            "basket_lines": float_column("basket_lines", purchase_mean(n_lines)),
            "orders_last_90d": int_column(
                "orders_last_90d", seg_count(purchase & recent, starts)[buyers]),
            "orders_prev_90d": int_column(
                "orders_prev_90d", seg_count(purchase & previous, starts)[buyers]),
            "revenue_last_90d": float_column("revenue_last_90d", revenue_last),
            "revenue_prev_90d": float_column("revenue_prev_90d", revenue_prev),
            "revenue_trend": float_column("revenue_trend", np.where(
                swing > 0, (revenue_last - revenue_prev) / swing, 0.0)),
        }


def _top(owner: np.ndarray, key: np.ndarray, n_customers: int
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer, from ``(owner, key)`` pairs sorted by both (one pair per counted item):
    ``(distinct keys, most frequent key (ties: the smallest; -1 for none), its share)``."""
    distinct = np.zeros(n_customers, dtype=np.int64)
    top = np.full(n_customers, -1, dtype=np.int64)
    share = np.full(n_customers, np.nan)
    if not len(owner):
        return distinct, top, share
    pair_starts = starts_of(_changes(owner) | _changes(key))
    counts = lengths(pair_starts, len(owner))
    pair_owner, pair_key = owner[pair_starts], key[pair_starts]
    starts = starts_of(_changes(pair_owner))
    who = pair_owner[starts]
    most = np.maximum.reduceat(counts, starts)
    first_max = seg_first(counts == most[seg_ids(starts, len(counts))], starts)
    distinct[who] = lengths(starts, len(counts))
    top[who] = pair_key[first_max]
    share[who] = most / seg_sum(counts, starts)
    return distinct, top, share


def _product_mix(lines: Lines, buyers: np.ndarray) -> dict:
    """Over the purchased (non-return) lines with a product: one count per line."""
    products = lines.product_lines
    distinct, top, share = _top(products.cust, products.product, len(lines.customer_ids))
    return {
        "distinct_products": int_column("distinct_products", distinct[buyers]),
        "top_product_id": name_column("top_product_id", lines.products[1], top[buyers]),
        "top_product_share": float_column("top_product_share", share[buyers]),
    }


def _channel_mix(lines: Lines, buyers: np.ndarray, channels: Sequence[str]) -> dict:
    """Over the purchase orders with a channel (an order's channel: its first line's that
    has one)."""
    codes, names = lines.channels
    orders = lines.orders
    first = seg_first(codes >= 0, lines.order_starts)
    order_channel = np.where(first >= 0, codes[first], -1)
    counted = np.flatnonzero(orders.purchase & (order_channel >= 0))
    owner, channel = sort_keys(orders.cust[counted], order_channel[counted],
                               small=lines.small)
    n_customers = len(lines.customer_ids)
    distinct, top, share = _top(owner, channel, n_customers)
    total = np.bincount(owner, minlength=n_customers)[buyers]
    columns = {
        "n_channels": int_column("n_channels", distinct[buyers]),
        "top_channel": name_column("top_channel", names, top[buyers]),
        "top_channel_share": float_column("top_channel_share", share[buyers]),
    }
    index = {name: i for i, name in enumerate(names.to_list())}
    for name in channels:
        code = index.get(name, -1)
        count = np.bincount(owner[channel == code], minlength=n_customers)[buyers]
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[channel_column(name)] = float_column(
                channel_column(name), np.where(total > 0, count / total, np.nan))
    return columns


def observed_channels(transactions: Frame | Lines) -> list[str]:
    """The order channels present, for naming the ``channel_share_*`` columns consistently."""
    if isinstance(transactions, Lines):
        return transactions.channels[1].to_list()
    values = transactions.lazy().select(pl.col("channel").drop_nulls().unique()).collect()
    return sorted(values["channel"].to_list())


__all__ = ["channel_column", "customer_features", "observed_channels", "rfm_summary"]
