"""The customer and customer x product features of a few customers, in plain Python.

The same frames as ``customer_features_lazy(...).collect()`` (``features.customers``) and
``customer_product_features_lazy(...).collect()`` (``features.products``): same columns, dtypes,
row order, values and nulls (floats may differ in the last bits, from summation order). For a
handful of customers, planning those polars queries costs far more than the arithmetic (about
8 ms against well under 1 ms for one customer), so ``ScoringPipeline`` takes this path for
small requests. Per-customer Python loops: meant for small batches, not for a shop.

Input: contract-typed transactions (``customer_id``, ``ts`` and ``amount`` never null). Days
are counted as days since 1970-01-01 throughout.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from retain.features.customers import LENGTHENING_RATIO, TREND_DAYS, channel_column

_INPUT_COLUMNS = ("customer_id", "order_id", "amount", "product_id", "quantity", "channel")
_TICKS_PER_DAY = {"ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
_EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()

_CUSTOMER_SCHEMA = {
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

_PRODUCT_SCHEMA = pl.Schema({
    "customer_id": pl.String, "product_id": pl.String, "purchases": pl.Int64,
    "first_purchase": pl.Date, "last_purchase": pl.Date, "interval_median": pl.Float64,
    "interval_mean": pl.Float64, "days_since_last": pl.Float64, "next_due": pl.Date,
    "overdue_ratio": pl.Float64,
})


@dataclass
class _Line:
    order_id: str | None
    day: int
    amount: float
    product_id: str | None
    quantity: float | None
    channel: str | None


@dataclass
class _Order:
    """A customer's order, as ``features.orders.orders`` nets it."""

    day: int
    amount: float = 0.0
    items: float = 0.0
    n_lines: int = 0
    channel: str | None = None

    @property
    def is_purchase(self) -> bool:
        return self.amount > 0  # features.orders.is_purchase


def small_features(transactions: pl.DataFrame, as_of: date,
                   channels: Sequence[str] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(customer features, customer x product features)``, read from the input once."""
    customers = _customers(transactions, as_of)
    return _customer_frame(customers, as_of, channels), _product_frame(customers, as_of)


def customer_features_small(transactions: pl.DataFrame, as_of: date,
                            channels: Sequence[str] | None = None) -> pl.DataFrame:
    return _customer_frame(_customers(transactions, as_of), as_of, channels or ())


def customer_product_features_small(transactions: pl.DataFrame, as_of: date) -> pl.DataFrame:
    return _product_frame(_customers(transactions, as_of), as_of)


def _customers(transactions: pl.DataFrame, as_of: date) -> dict[str, list[_Line]]:
    """Each customer's lines strictly before ``as_of``, in input order, by ``customer_id``."""
    end = _day_number(as_of)
    ts = transactions.get_column("ts")
    # Whole days from the raw timestamps: a polars date conversion costs more than the loop.
    per_day = _TICKS_PER_DAY[ts.dtype.time_unit]  # type: ignore[attr-defined]
    columns = zip(*(transactions.get_column(name).to_list() for name in _INPUT_COLUMNS),
                  ts.cast(pl.Int64).to_list())
    customers: dict[str, list[_Line]] = {}
    for customer_id, order_id, amount, product_id, quantity, channel, ticks in columns:
        day = ticks // per_day
        if day < end:
            customers.setdefault(customer_id, []).append(
                _Line(order_id, day, amount, product_id, quantity, channel))
    return dict(sorted(customers.items()))


@functools.cache
def _customer_schema(channels: tuple[str, ...]) -> pl.Schema:
    # Cached: building a polars Schema costs about as much as one customer's features.
    return pl.Schema({**_CUSTOMER_SCHEMA, **{channel_column(c): pl.Float64 for c in channels}})


def _customer_frame(customers: dict[str, list[_Line]], as_of: date,
                    channels: Sequence[str]) -> pl.DataFrame:
    rows = []
    for customer_id, lines in customers.items():
        row = _customer_row(customer_id, lines, _day_number(as_of), channels)
        if row is not None:
            rows.append(row)
    return _frame(rows, _customer_schema(tuple(channels)))


def _customer_row(customer_id: str, lines: list[_Line], end: int,
                  channels: Sequence[str]) -> tuple | None:
    """One customer's features (``_CUSTOMER_SCHEMA`` order, then channel shares), or None
    without a purchase."""
    all_orders = _orders(lines)
    purchases = [o for o in all_orders if o.is_purchase]
    if not purchases:
        return None
    day_amounts: dict[int, float] = {}
    for order in sorted(purchases, key=lambda o: o.day):
        day_amounts[order.day] = day_amounts.get(order.day, 0.0) + order.amount
    days = sorted(day_amounts)
    first, last = days[0], days[-1]
    gaps = [float(b - a) for a, b in itertools.pairwise(days)]
    frequency = float(len(days) - 1)
    monetary_value = ((sum(day_amounts[d] for d in days) - day_amounts[first]) / frequency
                      if frequency > 0 else 0.0)
    days_since_last = float(end - last)
    interval_mean, interval_median = _mean(gaps), _median(gaps)
    interval_std = _std(gaps)
    interval_recent_mean = _mean(gaps[-3:])
    interval_trend = _ratio(interval_recent_mean, interval_median)
    lengthening = (interval_trend is not None and interval_trend > LENGTHENING_RATIO
                   and len(days) >= 4)

    recent, previous = end - TREND_DAYS, end - 2 * TREND_DAYS
    revenue_last = sum(o.amount for o in all_orders if o.day >= recent)
    revenue_prev = sum(o.amount for o in all_orders if previous <= o.day < recent)
    swing = abs(revenue_last) + abs(revenue_prev)

    product_lines = Counter(
        line.product_id for line in lines if _bought(line) and line.product_id is not None)
    top_product, top_product_share = _top(product_lines)
    channel_orders = Counter(o.channel for o in purchases if o.channel is not None)
    top_channel, top_channel_share = _top(channel_orders)
    channel_total = sum(channel_orders.values())
    shares = [channel_orders[name] / channel_total if channel_total else None
              for name in channels]
    return (
        customer_id, frequency, float(last - first), float(end - 1 - first), monetary_value,
        len(purchases), sum(o.amount for o in all_orders), _mean([o.amount for o in purchases]),
        len(all_orders) - len(purchases), _date(first), _date(last), days_since_last,
        interval_mean, interval_median, interval_std, _ratio(interval_std, interval_mean),
        gaps[-1] if gaps else None, interval_recent_mean, _ratio(days_since_last, interval_median),
        interval_trend, lengthening, _mean([o.items for o in purchases]),
        _mean([float(o.n_lines) for o in purchases]), len(product_lines), top_product,
        top_product_share, sum(o.day >= recent for o in purchases),
        sum(previous <= o.day < recent for o in purchases), revenue_last, revenue_prev,
        (revenue_last - revenue_prev) / swing if swing > 0 else 0.0, len(channel_orders),
        top_channel, top_channel_share, *shares,
    )


def _bought(line: _Line) -> bool:
    """``features.orders.bought_line``: not a return."""
    return line.amount >= 0 and (line.quantity is None or line.quantity >= 0)


def _orders(lines: Iterable[_Line]) -> list[_Order]:
    """Lines netted into orders: ``day`` of the first line, ``items`` and ``n_lines`` of the
    non-return lines, the first channel given."""
    orders: dict[str | None, _Order] = {}
    for line in lines:
        order = orders.get(line.order_id)
        if order is None:
            order = orders[line.order_id] = _Order(line.day)
        order.day = min(order.day, line.day)
        order.amount += line.amount
        if _bought(line):
            order.n_lines += 1
            if line.quantity is not None:
                order.items += line.quantity
        if order.channel is None:
            order.channel = line.channel
    return list(orders.values())


def _product_frame(customers: dict[str, list[_Line]], as_of: date) -> pl.DataFrame:
    end = _day_number(as_of)
    rows = []
    for customer_id, lines in customers.items():
        product_days: dict[str, set[int]] = {}
        for line in lines:
            if _bought(line) and line.product_id is not None:
                product_days.setdefault(line.product_id, set()).add(line.day)
        for product_id in sorted(product_days):
            days = sorted(product_days[product_id])
            gaps = [float(b - a) for a, b in itertools.pairwise(days)]
            median = _median(gaps)
            days_since_last = float(end - days[-1])
            # Half to even, as polars' round.
            next_due = None if median is None else _date(days[-1] + round(median))
            rows.append((customer_id, product_id, len(days), _date(days[0]), _date(days[-1]),
                         median, _mean(gaps), days_since_last, next_due,
                         _ratio(days_since_last, median)))
    return _frame(rows, _PRODUCT_SCHEMA)


def _frame(rows: list[tuple], schema: pl.Schema) -> pl.DataFrame:
    # From dicts: half the cost of the row orientation, whose schema checks cost more than
    # one customer's features.
    names = schema.names()
    return pl.from_dicts([dict(zip(names, row, strict=True)) for row in rows], schema=schema)


def _top(counts: Counter) -> tuple[str | None, float | None]:
    """The most frequent key (ties: the smallest) and its share; None for no counts."""
    if not counts:
        return None, None
    key, n = min(counts.items(), key=lambda item: (-item[1], item[0]))
    return key, n / sum(counts.values())


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _std(values: list[float]) -> float | None:
    """Sample standard deviation (ddof 1, as polars): None below two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _date(day_number: int) -> date:
    return _EPOCH + timedelta(days=day_number)


__all__ = ["customer_features_small", "customer_product_features_small", "small_features"]
