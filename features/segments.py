"""Transactions as customer-sorted numpy arrays: what every per-customer feature is computed on.

One implementation serves one customer (the API), a shop (batch) and a Spark partition alike.
The lines before the as-of date are sorted once by ``(customer_id, order_id)``, input order
kept within an order; a customer, an order, a purchase day or a customer x product is then a
run of consecutive rows (a *segment*), reduced with ``np.add.reduceat`` and friends, never a
per-customer Python loop. Names (customers, products, channels) become integer codes in sorted
name order, so "ties go to the smallest name" is "ties go to the smallest code".

How the codes and the sort are computed is an engine step, not a rule: numpy for a request's
few lines (a polars query costs far more than the arithmetic there), polars for a shop. Both
give the same arrays, row for row (tests/features/test_one_implementation.py), so a customer
scored alone gets exactly the figures of the same customer in the batch.

Days are whole days since 1970-01-01 throughout (``floor``, so days before 1970 are negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import polars as pl

Frame = pl.DataFrame | pl.LazyFrame

EPOCH = date(1970, 1, 1)
_TICKS_PER_DAY = {"ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
# Up to this many lines, codes and sort in numpy: measured, numpy's fixed costs are a few
# microseconds per step against tens for a polars query; beyond it polars' sort is faster.
NUMPY_MAX_LINES = 2_000
COLUMNS = ("customer_id", "order_id", "ts", "amount", "product_id", "quantity", "channel")


def day_number(day: date) -> int:
    return (day - EPOCH).days


@dataclass
class Lines:
    """The lines strictly before ``as_of``, sorted by ``(customer, order)``.

    ``customer_ids``: the customers present, sorted (a String Series); ``cust``: each line's
    index into it (non-decreasing); ``new_order``: the line starts an order (a customer's first
    line always does); ``day``, ``amount``: per line. Product and channel codes and quantities
    are read on first use (the RFM summary needs none of them).
    """

    as_of: date
    customer_ids: pl.Series
    cust: np.ndarray
    new_order: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    _frame: pl.DataFrame = field(repr=False)
    _perm: np.ndarray = field(repr=False)
    _numpy_engine: bool = field(repr=False, default=True)

    @property
    def end(self) -> int:
        """The as-of date as a day number (lines are strictly before it)."""
        return day_number(self.as_of)

    def __len__(self) -> int:
        return len(self.cust)

    @cached_property
    def quantity(self) -> np.ndarray:
        """Float quantities, NaN for missing."""
        if "quantity" not in self._frame.columns:
            return np.full(len(self), np.nan)
        values = self._frame.get_column("quantity")
        if values.dtype != pl.Float64:
            values = values.cast(pl.Float64)
        return values.to_numpy()[self._perm]

    @cached_property
    def bought(self) -> np.ndarray:
        """A line that adds goods to its order, not a return: amount and quantity both >= 0
        (a missing quantity counts as 0)."""
        return (self.amount >= 0) & ~(self.quantity < 0)

    @cached_property
    def products(self) -> tuple[np.ndarray, pl.Series]:
        """``(code per line, -1 for none; product ids by code)``."""
        return self._codes("product_id")

    @cached_property
    def channels(self) -> tuple[np.ndarray, pl.Series]:
        return self._codes("channel")

    def _codes(self, column: str) -> tuple[np.ndarray, pl.Series]:
        if column not in self._frame.columns:
            return np.full(len(self), -1, dtype=np.int64), pl.Series(column, [], pl.String)
        codes, names = encode(self._frame.get_column(column), self._numpy_engine)
        return codes[self._perm], names

    @property
    def small(self) -> bool:
        """Few enough lines for the numpy engine (see ``NUMPY_MAX_LINES``)."""
        return self._numpy_engine

    @cached_property
    def product_lines(self) -> ProductLines:
        """The purchased (non-return) lines with a product, sorted by customer, product, day."""
        codes, _ = self.products
        rows = np.flatnonzero(self.bought & (codes >= 0))
        cust, product, day = sort_keys(self.cust[rows], codes[rows], self.day[rows],
                                       small=self.small)
        return ProductLines(cust, product, day)

    @cached_property
    def order_starts(self) -> np.ndarray:
        return np.flatnonzero(self.new_order)

    @cached_property
    def orders(self) -> Orders:
        """Lines netted into orders (``features.orders.orders``' rule): the day of the first
        line, the net amount; a purchase is an order with a positive net amount."""
        starts = self.order_starts
        amount = np.add.reduceat(self.amount, starts) if len(starts) else np.zeros(0)
        return Orders(
            starts=starts,
            cust=self.cust[starts],
            day=np.minimum.reduceat(self.day, starts) if len(starts) else np.zeros(0, np.int64),
            amount=amount,
            purchase=amount > 0,
        )


@dataclass
class ProductLines:
    cust: np.ndarray
    product: np.ndarray
    day: np.ndarray


@dataclass
class Orders:
    starts: np.ndarray  # first line of each order
    cust: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    purchase: np.ndarray


def lines_before(transactions: Frame | Lines, as_of: date) -> Lines:
    """The customer-sorted lines of ``transactions`` strictly before ``as_of`` (already
    prepared ``Lines`` for that date pass through, so several feature sets share one sort)."""
    if isinstance(transactions, Lines):
        if transactions.as_of != as_of:
            raise ValueError(f"lines prepared as of {transactions.as_of}, not {as_of}")
        return transactions
    if isinstance(transactions, pl.LazyFrame):
        names = transactions.collect_schema().names()
        cutoff = pl.lit(datetime_of(as_of)).cast(pl.Datetime("us"))
        frame = (transactions.select([c for c in COLUMNS if c in names])
                 .filter(pl.col("ts") < cutoff).collect())
    else:
        frame = transactions
    ts = frame.get_column("ts")
    per_day = _TICKS_PER_DAY[ts.dtype.time_unit]  # type: ignore[attr-defined]
    ticks = ts.cast(pl.Int64).to_numpy()
    keep = ticks < day_number(as_of) * per_day
    if ts.null_count():
        keep &= ts.is_not_null().to_numpy()
        ticks = np.nan_to_num(ticks).astype(np.int64)
    small = frame.height <= NUMPY_MAX_LINES
    perm, new_customer, new_order, customer_ids = _sort(frame, keep, small)
    amount = frame.get_column("amount")
    if amount.dtype != pl.Float64:
        amount = amount.cast(pl.Float64)
    return Lines(
        as_of=as_of,
        customer_ids=customer_ids,
        cust=np.cumsum(new_customer) - 1,
        new_order=new_order,
        day=ticks[perm] // per_day,
        amount=amount.to_numpy()[perm],
        _frame=frame,
        _perm=perm,
        _numpy_engine=small,
    )


def datetime_of(day: date):
    from datetime import datetime

    return datetime(day.year, day.month, day.day)


def _sort(frame: pl.DataFrame, keep: np.ndarray, small: bool):
    """``(perm, new_customer, new_order, customer_ids)``: the kept lines' stable order by
    ``(customer_id, order_id)`` (missing order ids first: together they are one order)."""
    customer_id = _strings(frame.get_column("customer_id"))
    order_id = (_strings(frame.get_column("order_id")) if "order_id" in frame.columns
                else pl.Series("order_id", [None] * frame.height, pl.String))
    if small:
        customers, names = encode(customer_id, numpy_engine=True)
        orders, _ = encode(order_id, numpy_engine=True)
        kept = np.flatnonzero(keep)
        perm = kept[np.lexsort((orders[kept], customers[kept]))]
        customers, orders = customers[perm], orders[perm]
        new_customer = changes(customers)
        new_order = new_customer | changes(orders)
        return perm, new_customer, new_order, names.gather(customers[new_customer])
    everything = pl.DataFrame([customer_id.alias("c"), order_id.alias("o")]).select(
        pl.arg_sort_by("c", "o", maintain_order=True)).to_series().to_numpy()
    perm = everything[keep[everything]]
    ids = customer_id.gather(perm)
    new_customer = changes_in(ids, missing=False)
    new_order = new_customer | changes_in(order_id.gather(perm), missing=True)
    return perm, new_customer, new_order, ids.gather(np.flatnonzero(new_customer))


def _strings(series: pl.Series) -> pl.Series:
    return series if series.dtype == pl.String else series.cast(pl.String)


def changes(codes: np.ndarray) -> np.ndarray:
    """True where a run of equal codes starts."""
    out = np.ones(len(codes), dtype=bool)
    np.not_equal(codes[1:], codes[:-1], out=out[1:])
    return out


def changes_in(values: pl.Series, missing: bool = True) -> np.ndarray:
    """``changes`` on a polars Series (``missing``: nulls compare equal to each other)."""
    out = np.ones(len(values), dtype=bool)
    if len(values) > 1:
        after, before = values.slice(1), values.slice(0, len(values) - 1)
        out[1:] = (after.ne_missing(before) if missing else after != before).to_numpy()
    return out


def encode(values: pl.Series, numpy_engine: bool) -> tuple[np.ndarray, pl.Series]:
    """``(codes, names)``: each value's index into its sorted distinct values (-1 when
    missing). Code order is name order (Unicode code points, as polars sorts strings)."""
    values = _strings(values)
    if numpy_engine:
        objects = values.to_numpy()
        codes = np.full(len(objects), -1, dtype=np.int64)
        if values.null_count():
            present = np.not_equal(objects, None)
            names, codes[present] = np.unique(objects[present], return_inverse=True)
        else:
            names, codes[:] = np.unique(objects, return_inverse=True)
        return codes, pl.Series(values.name, names.tolist(), pl.String)
    names = values.drop_nulls().unique().sort()
    physical = values.cast(pl.Enum(names.to_list())).to_physical()
    return physical.cast(pl.Int64).fill_null(-1).to_numpy(), names


def sort_keys(*keys: np.ndarray, small: bool) -> tuple[np.ndarray, ...]:
    """The rows of the integer ``keys`` sorted lexicographically (the first key major)."""
    if not len(keys[0]):
        return tuple(np.asarray(k, dtype=np.int64) for k in keys)
    lows = [int(k.min()) for k in keys]
    widths = [int(k.max()) - low + 1 for k, low in zip(keys, lows)]
    if float(np.prod(widths, dtype=np.float64)) >= 2.0**62:  # one int64 cannot hold them
        order = np.lexsort(keys[::-1])
        return tuple(k[order] for k in keys)
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for k, low, width in zip(keys, lows, widths):
        combined *= width
        combined += k - low
    # Sorting is the engine's step: numpy's sort is single-threaded, polars' is not.
    combined = np.sort(combined) if small else pl.Series(combined).sort().to_numpy()
    out = []
    for low, width in zip(lows[::-1], widths[::-1]):
        combined, rest = np.divmod(combined, width)
        out.append(rest + low)
    return tuple(out[::-1])


# --- segment reductions ------------------------------------------------------------------
# ``starts``: the first row of each segment, increasing, on rows sorted by segment.


def starts_of(new: np.ndarray) -> np.ndarray:
    return np.flatnonzero(new)


def lengths(starts: np.ndarray, n: int) -> np.ndarray:
    return np.diff(starts, append=n)


def seg_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    if not len(starts):
        return np.zeros(0, dtype=values.dtype)
    return np.add.reduceat(values, starts)


def seg_count(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return seg_sum(mask.astype(np.int64), starts)


def seg_ids(starts: np.ndarray, n: int) -> np.ndarray:
    """Each row's segment index."""
    ids = np.zeros(n, dtype=np.int64)
    ids[starts[1:]] = 1
    return np.cumsum(ids)


def seg_first(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The first row of each segment where ``mask`` holds; -1 where it never does."""
    n = len(mask)
    rows = np.where(mask, np.arange(n), n)
    first = np.minimum.reduceat(rows, starts) if len(starts) else np.zeros(0, np.int64)
    return np.where(first < n, first, -1)


def seg_median(values: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Median of each segment's integer ``values`` (NaN for an empty one); ``segment``: each
    value's segment index, non-decreasing."""
    out = np.full(n_segments, np.nan)
    if not len(values):
        return out
    low = int(values.min())
    width = int(values.max()) - low + 1
    ordered = np.sort(segment * width + (values - low))  # by segment, then value
    counts = np.bincount(segment, minlength=n_segments)
    first = np.cumsum(counts) - counts
    has = counts > 0
    lo = first + (counts - 1) // 2
    hi = first + counts // 2
    lo_v = ordered[lo[has]] % width + low
    hi_v = ordered[hi[has]] % width + low
    out[has] = (lo_v + hi_v) / 2.0
    return out


def gaps_within(day: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gap, row)``: days since the previous row of the same segment, for every row but
    each segment's first (``row``: the later row of the pair)."""
    rows = np.flatnonzero(~new)
    return (day[rows] - day[rows - 1]), rows


def seg_mean_of_last(values: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """Mean of each segment's last ``k`` values (fewer when shorter; NaN when empty)."""
    n = len(values)
    counts = lengths(starts, n)
    total = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    ends = starts + counts
    used = np.minimum(counts, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(used > 0, (total[ends] - total[ends - used]) / used, np.nan)


# --- building polars columns --------------------------------------------------------------

try:  # the numpy constructors polars' own Series() ends in, without its ~30 us of checks
    from polars._plr import PySeries as _PySeries  # polars >= 1.32
except ImportError:  # pragma: no cover
    try:
        from polars.polars import PySeries as _PySeries  # type: ignore[no-redef]
    except ImportError:
        _PySeries = None


def float_column(name: str, values: np.ndarray) -> pl.Series:
    """Float64; NaN becomes null (the features' missing values)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if _PySeries is not None:
        return pl.Series._from_pyseries(_PySeries.new_f64(name, values, True))
    return pl.Series(name, values, nan_to_null=True)


def int_column(name: str, values: np.ndarray) -> pl.Series:
    values = np.ascontiguousarray(values, dtype=np.int64)
    if _PySeries is not None:
        return pl.Series._from_pyseries(_PySeries.new_i64(name, values, True))
    return pl.Series(name, values)


def bool_column(name: str, values: np.ndarray) -> pl.Series:
    values = np.ascontiguousarray(values, dtype=bool)
    if _PySeries is not None:
        return pl.Series._from_pyseries(_PySeries.new_bool(name, values, True))
    return pl.Series(name, values)


def date_column(name: str, days: np.ndarray) -> pl.Series:
    """Day numbers (float NaN or int) -> Date; NaN becomes null."""
    if days.dtype.kind == "f":
        return float_column(name, days).cast(pl.Int32).cast(pl.Date)
    values = np.ascontiguousarray(days, dtype=np.int32)
    if _PySeries is not None:
        return pl.Series._from_pyseries(_PySeries.new_i32(name, values, True)).cast(pl.Date)
    return pl.Series(name, values).cast(pl.Date)


def name_column(name: str, names: pl.Series, codes: np.ndarray) -> pl.Series:
    """``names[code]``, null where the code is -1."""
    if not len(codes) or codes.min() >= 0:
        return names.gather(codes).alias(name)
    padded = names.extend_constant(None, 1)
    return padded.gather(np.where(codes >= 0, codes, len(names))).alias(name)


def days_between(later: int, earlier: np.ndarray) -> np.ndarray:
    return (later - earlier).astype(np.float64)


def date_of(day: int) -> date:
    return EPOCH + timedelta(days=day)
