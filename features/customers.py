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

import functools
import re
from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl

from retain.features.segments import (
    Frame,
    Lines,
    PurchaseDays,
    bool_column,
    date_column,
    float_column,
    frame,
    int_column,
    lengths,
    lines_before,
    median_of_steps,
    name_column,
    starts_of,
    steps,
    take,
)
from retain.features.segments import changes as _changes

TREND_DAYS = 90
LENGTHENING_RATIO = 1.25


@functools.lru_cache(maxsize=1024)
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
    shares = [channel_column(c) for c in channels]
    days = lines.purchase_days
    if not len(days.buyers):
        return pl.DataFrame(schema={**_SCHEMA, **dict.fromkeys(shares, pl.Float64)})
    with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 -> NaN -> null, as polars
        columns = {
            **_rfm_and_intervals(lines, days),
            **_order_stats(lines, days.buyers),
            **_channel_mix(lines, days.buyers, channels, shares),
            # Last: another thread may be sorting the product lines meanwhile.
            **_product_mix(lines, days.buyers),
        }
    return frame([columns[name] for name in _COLUMN_ORDER] + [columns[c] for c in shares])


def rfm_summary(transactions: Frame | Lines, as_of: date) -> pl.DataFrame:
    """``customer_id, frequency, recency, T, monetary_value`` exactly as
    ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D",
    observation_period_end=as_of - 1 day)`` on transactions strictly before ``as_of``."""
    lines = lines_before(transactions, as_of)
    days = lines.purchase_days
    if not len(days.buyers):
        return pl.DataFrame(schema={name: _SCHEMA[name] for name in _RFM})
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = _rfm_and_intervals(lines, days, intervals=False)
    return frame([columns[name] for name in _RFM])


def _rfm_and_intervals(lines: Lines, days: PurchaseDays, intervals: bool = True) -> dict:
    """RFM in lifetimes' convention and the intervals between purchase days. Gap sums
    telescope: the mean interval is recency / frequency, the last three's mean is the
    span of the last three."""
    end, day, last_row = lines.end, days.day, days.last
    first, last = day[days.starts], day[last_row]
    n_gaps = days.counts - 1
    frequency = n_gaps.astype(np.float64)
    recency = (last - first).astype(np.float64)
    repeat = np.add.reduceat(np.where(days.new_buyer, 0.0, days.amount), days.starts)
    columns = {
        "customer_id": take(lines.customer_ids, days.buyers),
        "frequency": float_column("frequency", frequency),
        "recency": float_column("recency", recency),
        "T": float_column("T", (end - 1 - first).astype(np.float64)),
        "monetary_value": float_column("monetary_value",
                                       np.where(n_gaps > 0, repeat / frequency, 0.0)),
    }
    if not intervals:
        return columns
    step = steps(day, days.new_buyer)
    # Sample variance from exact integer sums: (n * sum(g^2) - (sum g)^2) / (n (n - 1)).
    squares = np.add.reduceat(step * step, days.starts)
    span = last - first
    variance = (n_gaps * squares - span * span) / (n_gaps * (n_gaps - 1))
    std = np.where(n_gaps > 1, np.sqrt(np.maximum(variance, 0.0)), np.nan)
    mean = recency / frequency
    median = median_of_steps(step, days.new_buyer, days.starts, days.counts)
    recent_n = np.minimum(n_gaps, 3)
    recent = (last - day[last_row - recent_n]) / recent_n
    trend = recent / median
    since_last = (end - last).astype(np.float64)
    columns.update({
        "first_purchase": date_column("first_purchase", first),
        "last_purchase": date_column("last_purchase", last),
        "days_since_last_order": float_column("days_since_last_order", since_last),
        "interval_mean": float_column("interval_mean", mean),
        "interval_median": float_column("interval_median", median),
        "interval_std": float_column("interval_std", std),
        "interval_cv": float_column("interval_cv", std / mean),
        "interval_last": float_column(
            "interval_last", np.where(n_gaps > 0, last - day[last_row - 1], np.nan)),
        "interval_recent_mean": float_column("interval_recent_mean", recent),
        "overdue_ratio": float_column("overdue_ratio", since_last / median),
        "interval_trend": float_column("interval_trend", trend),
        "intervals_lengthening": bool_column(
            "intervals_lengthening", (trend > LENGTHENING_RATIO) & (n_gaps >= 3)),
    })
    return columns


def _order_stats(lines: Lines, buyers: np.ndarray) -> dict:
    """Over every order (purchases, cancellations, refunds, adjustments) of the buyers."""
    orders, end, bought, quantity = lines.orders, lines.end, lines.bought, lines.quantity
    purchase, amount = orders.purchase, orders.amount
    n_customers = len(lines.customer_ids)
    # Basket sizes, summed over the purchase orders' lines straight into their customer
    # (no per-order step: bincount is ~4x faster than a reduction per order, measured).
    in_purchase = np.repeat(purchase, lengths(orders.starts, len(bought)))
    counted = bought & in_purchase
    basket_lines = np.bincount(lines.cust, weights=counted, minlength=n_customers)[buyers]
    counted &= quantity > 0  # the quantities of non-return lines (a missing one counts 0)
    basket_items = np.bincount(lines.cust, weights=np.where(counted, quantity, 0.0),
                               minlength=n_customers)[buyers]
    recent = orders.day >= end - TREND_DAYS
    previous = (orders.day >= end - 2 * TREND_DAYS) & ~recent
    # Per-order figures per customer: counts by bincount, amounts by the per-segment
    # reduction (its sums, to the last bit, as before).
    starts = starts_of(_changes(orders.cust))
    segment = np.zeros(n_customers, dtype=np.int64)  # each customer's run of orders
    segment[orders.cust[starts]] = np.arange(len(starts))
    segment = segment[buyers]  # buyers have orders

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(orders.cust, weights=mask, minlength=n_customers)[buyers]

    def amounts(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts)[segment]

    n, last_n, prev_n = count(purchase), count(purchase & recent), count(purchase & previous)

    revenue = amounts(amount)
    spent = amounts(np.where(purchase, amount, 0.0))
    last_rev = amounts(np.where(recent, amount, 0.0))
    prev_rev = amounts(np.where(previous, amount, 0.0))
    refunds = lengths(starts, len(orders.cust))[segment] - n
    swing = np.abs(last_rev) + np.abs(prev_rev)
    return {
        "orders": int_column("orders", n),
        "revenue": float_column("revenue", revenue),
        "aov": float_column("aov", spent / n),
        "refunds": int_column("refunds", refunds),
        "basket_items": float_column("basket_items", basket_items / n),
        "basket_lines": float_column("basket_lines", basket_lines / n),
        "orders_last_90d": int_column("orders_last_90d", last_n),
        "orders_prev_90d": int_column("orders_prev_90d", prev_n),
        "revenue_last_90d": float_column("revenue_last_90d", last_rev),
        "revenue_prev_90d": float_column("revenue_prev_90d", prev_rev),
        "revenue_trend": float_column(
            "revenue_trend", np.where(swing > 0, (last_rev - prev_rev) / swing, 0.0)),
    }


def _product_mix(lines: Lines, buyers: np.ndarray) -> dict:
    """Over the purchased (non-return) lines with a product: one count per line."""
    products = lines.product_lines
    n_customers = len(lines.customer_ids)
    distinct = np.zeros(n_customers, dtype=np.int64)
    top = np.full(n_customers, -1, dtype=np.int64)
    share = np.full(n_customers, np.nan)
    if len(products.pairs):
        owner = products.pair_cust
        counts = products.pair_lines
        starts = starts_of(_changes(owner))
        who = owner[starts]
        # The most lines, ties to the smallest product id, as one maximum of count x reversed
        # code (codes are in id order).
        width = int(products.pair_product.max()) + 1
        best = np.maximum.reduceat(
            counts * width + (width - 1 - products.pair_product), starts)
        distinct[who] = lengths(starts, len(owner))
        top[who] = width - 1 - best % width
        share[who] = (best // width) / np.add.reduceat(counts, starts)
    return {
        "distinct_products": int_column("distinct_products", distinct[buyers]),
        "top_product_id": name_column("top_product_id", lines.products[1], top[buyers]),
        "top_product_share": float_column("top_product_share", share[buyers]),
    }


# Channels are few: their counts per buyer fit a dense table of this many cells at a time.
_CHANNEL_CELLS = 1 << 24


def _channel_mix(lines: Lines, buyers: np.ndarray, channels: Sequence[str],
                 shares_named: list[str]) -> dict:
    """Over the purchase orders with a channel (an order's channel: its first line's that
    has one)."""
    order_channel, names = lines.order_channels
    orders = lines.orders
    counted = (orders.purchase & (order_channel >= 0)).nonzero()[0]
    # Only buyers have purchase orders; their rows come in customer order.
    buyer_row = np.empty(len(lines.customer_ids), dtype=np.int64)
    buyer_row[buyers] = np.arange(len(buyers))
    row = buyer_row[orders.cust[counted]]
    channel = order_channel[counted]
    n_buyers, width = len(buyers), max(len(names), 1)
    index = {name: i for i, name in enumerate(names.to_list())}
    wanted = [index.get(name, -1) for name in channels]
    block = max(_CHANNEL_CELLS // width, 1)
    blocks = []
    # Blocks of buyers, not customers one by one: one block unless channels run to thousands.
    for low in range(0, n_buyers, block):
        high = min(low + block, n_buyers)
        part = (slice(None) if high - low == n_buyers  # one block: every row
                else slice(*np.searchsorted(row, [low, high])))
        counts = np.bincount((row[part] - low) * width + channel[part],
                             minlength=(high - low) * width).reshape(high - low, width)
        total = counts.sum(axis=1, dtype=np.float64)
        total[total == 0] = np.nan  # no channel given: shares are null
        blocks.append([
            (counts > 0).sum(axis=1),
            np.where(total > 0, counts.argmax(axis=1), -1),  # ties: the first name
            counts.max(axis=1) / total,
            *[(counts[:, code] if code >= 0 else 0.0) / total for code in wanted],
        ])
    n_channels, top, share, *shares = (
        blocks[0] if len(blocks) == 1 else [np.concatenate(b) for b in zip(*blocks)])
    columns = {
        "n_channels": int_column("n_channels", n_channels),
        "top_channel": name_column("top_channel", names, top),
        "top_channel_share": float_column("top_channel_share", share),
    }
    for name, values in zip(shares_named, shares):
        columns[name] = float_column(name, values)
    return columns


def observed_channels(transactions: Frame | Lines) -> list[str]:
    """The order channels present, for naming the ``channel_share_*`` columns consistently."""
    if isinstance(transactions, Lines):
        return transactions.channels[1].to_list()
    values = transactions.lazy().select(pl.col("channel").drop_nulls().unique()).collect()
    return sorted(values["channel"].to_list())


__all__ = ["channel_column", "customer_features", "observed_channels", "rfm_summary"]
