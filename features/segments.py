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

import threading
from dataclasses import dataclass, field
from datetime import date
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


class _once(cached_property):
    """``cached_property`` computed once per instance even when two threads ask at once
    (the features command builds customer and product features side by side on one
    ``Lines``; from Python 3.12 ``cached_property`` has no lock)."""

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        cache = instance.__dict__
        if self.attrname in cache:
            return cache[self.attrname]
        with instance._locks.setdefault(self.attrname, threading.RLock()):
            if self.attrname not in cache:
                cache[self.attrname] = self.func(instance)
            return cache[self.attrname]


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
    _owned: bool = field(repr=False, default=False)  # ``_frame`` is ours: drop what was read
    _let_go: set = field(repr=False, default_factory=set)  # columns dropped once read
    _pending: dict = field(repr=False, default_factory=dict)  # codes being made: Futures
    _locks: dict = field(repr=False, default_factory=dict)  # per lazily read property

    @property
    def end(self) -> int:
        """The as-of date as a day number (lines are strictly before it)."""
        return day_number(self.as_of)

    def __len__(self) -> int:
        return len(self.cust)

    @_once
    def quantity(self) -> np.ndarray:
        """Float quantities, NaN for missing."""
        if "quantity" not in self._frame.columns:
            return np.full(len(self), np.nan)
        values = self._frame.get_column("quantity")
        if not isinstance(values.dtype, pl.Float64):
            values = values.cast(pl.Float64)
        out = values.to_numpy()[self._perm]
        self._release("quantity")
        return out

    @_once
    def bought(self) -> np.ndarray:
        """A line that adds goods to its order, not a return: amount and quantity both >= 0
        (a missing quantity counts as 0)."""
        return (self.amount >= 0) & ~(self.quantity < 0)

    @_once
    def products(self) -> tuple[np.ndarray, pl.Series]:
        """``(code per line, -1 for none; product ids by code)``."""
        return self._codes("product_id")

    @_once
    def channels(self) -> tuple[np.ndarray, pl.Series]:
        """``(code per line, -1 for none; channel names by code)``: every channel on a line.
        The features need only ``order_channels``; on lines handed over (``own``) read this
        first or not at all (``order_channels`` lets the column go)."""
        return self._codes("channel")

    @_once
    def order_channels(self) -> tuple[np.ndarray, pl.Series]:
        """``(code per order, -1 for none; channel names by code)``: an order's channel is
        its first line's that has one; the names are the channels some order has. Only
        those lines are encoded (a third of a shop's lines, measured)."""
        if "order_channels" in self._pending:
            out = self._pending.pop("order_channels").result()
            self._release("channel")
            return out
        starts = self.order_starts
        if "channels" in self.__dict__ or "channel" in self._let_go:  # read per line
            codes, names = self.channels
            first = seg_first(codes >= 0, starts) if len(starts) else starts
            codes = np.where(first >= 0, codes[np.maximum(first, 0)], -1)
            present = np.unique(codes[codes >= 0])  # names by code: recode to those used
            table = np.full(len(names) + 1, -1, dtype=np.int32)
            table[present] = np.arange(len(present), dtype=np.int32)
            return table[codes], take(names, present)
        if "channel" not in self._frame.columns:
            return np.full(len(starts), -1, dtype=np.int32), pl.Series("channel", [], pl.String)
        out = _first_codes(self._frame.get_column("channel"), self._perm, starts,
                           self._numpy_engine)
        self._release("channel")
        return out

    def _codes(self, column: str) -> tuple[np.ndarray, pl.Series]:
        if column in self._pending:  # encoded while the lines were sorted
            codes, names = self._pending.pop(column).result()
        else:
            if column in self._let_go:
                raise RuntimeError(f"{column} was already read into codes and let go")
            if column not in self._frame.columns:
                return np.full(len(self), -1, dtype=np.int32), pl.Series(column, [], pl.String)
            codes, names = encode(self._frame.get_column(column), self._numpy_engine)
        out = codes[self._perm]
        self._release(column)
        return out, names

    def _release(self, column: str) -> None:
        """A shop's columns are the largest thing held: once read, ours can go."""
        if not self._owned:
            return
        with self._locks.setdefault("_release", threading.RLock()):  # two threads read
            if column in self._frame.columns:
                self._let_go.add(column)
                self._frame = self._frame.drop(column)
            if not self._frame.columns and not self._pending:
                self._perm = np.empty(0, dtype=np.int64)  # the order is not needed again

    @property
    def small(self) -> bool:
        """Few enough lines for the numpy engine (see ``NUMPY_MAX_LINES``)."""
        return self._numpy_engine

    @_once
    def product_lines(self) -> ProductLines:
        """The purchased (non-return) lines with a product, sorted by customer, product, day."""
        codes, _ = self.products
        rows = (self.bought & (codes >= 0)).nonzero()[0]
        keys = self.cust[rows], codes[rows], self.day[rows]
        packed = _packed_sort(keys, major_sorted=True)  # customers in order
        if packed is None:
            cust, product, day = sort_keys(*keys)
            new_pair = changes(cust) | changes(product)
            pairs = starts_of(new_pair)
            pair_cust, pair_product = cust[pairs], product[pairs]
        else:
            # Decoded only where needed: the day on every line, customer and product at the
            # first line of each pair (a third of the passes over the lines, measured).
            key, (low_c, low_p, low_d), (_, bits_p, bits_d) = packed
            day = key & ((1 << bits_d) - 1)
            day += low_d
            key >>= bits_d  # customer x product
            new_pair = changes(key)
            pairs = starts_of(new_pair)
            pair_key = key[pairs]
            del key
            pair_product = (pair_key & ((1 << bits_p) - 1)) + low_p
            pair_cust = (pair_key >> bits_p) + low_c
        return ProductLines(day.astype(np.int32), new_pair, pairs, lengths(pairs, len(day)),
                            pair_cust.astype(np.int64), pair_product.astype(np.int32))

    @_once
    def order_starts(self) -> np.ndarray:
        return self.new_order.nonzero()[0]

    @_once
    def purchase_days(self) -> PurchaseDays:
        """Each buyer's purchase days (days with a purchase order), in day order."""
        orders = self.orders
        bought = orders.purchase.nonzero()[0]
        cust, day, amount = orders.cust[bought], orders.day[bought], orders.amount[bought]
        if len(day):
            # Orders come in order-id order within a customer: sort them by day (stable:
            # same-day orders keep that order, so their sum does not depend on the input's
            # order of lines), unless they already are (order ids rising in time).
            low, span = int(day.min()), int(day.max() - day.min()) + 1
            key = cust * span + (day - low)
            if not (key[1:] >= key[:-1]).all():
                order = argsort_stable(key)
                cust, day, amount = cust[order], day[order], amount[order]
            del key
        starts = starts_of(changes(cust) | changes(day))
        cust = cust[starts]
        new_buyer = changes(cust)
        buyer_starts = starts_of(new_buyer)
        counts = lengths(buyer_starts, len(cust))
        return PurchaseDays(day=day[starts], amount=seg_sum(amount, starts),
                            new_buyer=new_buyer, starts=buyer_starts, counts=counts,
                            last=buyer_starts + counts - 1, buyers=cust[buyer_starts])

    @_once
    def orders(self) -> Orders:
        """Lines netted into orders (``features.orders.orders``' rule): the day of the first
        line, the net amount; a purchase is an order with a positive net amount."""
        starts = self.order_starts
        amount = np.add.reduceat(self.amount, starts) if len(starts) else np.zeros(0)
        day = self.day
        # An order's lines nearly always share its day: then the first line's is the
        # minimum (one comparison pass against a reduction, measured ~5x faster).
        same_day = len(day) < 2 or bool((self.new_order[1:] | (day[1:] == day[:-1])).all())
        return Orders(
            starts=starts,
            cust=self.cust[starts],
            day=(day[starts].astype(np.int64) if same_day
                 else np.minimum.reduceat(day, starts).astype(np.int64)),
            amount=amount,
            purchase=amount > 0,
        )


@dataclass
class ProductLines:
    """Purchased product lines sorted by customer, product, day; ``pairs``: the first line of
    each customer x product, ``pair_lines``: its number of lines, ``pair_cust`` and
    ``pair_product``: its customer and product codes."""

    day: np.ndarray
    new_pair: np.ndarray
    pairs: np.ndarray
    pair_lines: np.ndarray
    pair_cust: np.ndarray
    pair_product: np.ndarray

    def __len__(self) -> int:
        return len(self.day)


@dataclass
class PurchaseDays:
    """One row per (buyer, purchase day), sorted: ``amount`` is the day's purchase orders'
    net total. Per buyer: ``starts`` (first row), ``counts`` (days), ``last`` (last row),
    ``buyers`` (indices into ``Lines.customer_ids``: the customers with a purchase)."""

    day: np.ndarray
    amount: np.ndarray
    new_buyer: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    last: np.ndarray
    buyers: np.ndarray


@dataclass
class Orders:
    starts: np.ndarray  # first line of each order
    cust: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    purchase: np.ndarray


def lines_before(transactions: Frame | Lines, as_of: date, *, own: bool = False,
                 ahead: bool | None = None) -> Lines:
    """The customer-sorted lines of ``transactions`` strictly before ``as_of`` (already
    prepared ``Lines`` for that date pass through, so several feature sets share one sort).

    ``own``: the caller hands a DataFrame over (and drops its own reference): its columns
    are let go as soon as they are read, as for a LazyFrame (a shop's lines are the largest
    thing held: ~1 GB of ids, dates and amounts per 20M lines).

    ``ahead`` (default: ``own``): product and order-channel codes are made in a background
    thread while the lines are sorted, for callers that read them (the features do; the RFM
    summary does not). Only above ``NUMPY_MAX_LINES`` lines: a request pays nothing."""
    if isinstance(transactions, Lines):
        if transactions.as_of != as_of:
            raise ValueError(f"lines prepared as of {transactions.as_of}, not {as_of}")
        return transactions
    if isinstance(transactions, pl.LazyFrame):
        names = transactions.collect_schema().names()
        cutoff = pl.lit(datetime_of(as_of)).cast(pl.Datetime("us"))
        schema = transactions.collect_schema()
        # Product and channel ids as categoricals: 4 bytes a line against a 16-byte string
        # view each, read once into codes (``encode``); a shop's lines are the peak memory.
        frame = (transactions.select([
            pl.col(c).cast(pl.Categorical)
            if c in ("product_id", "channel") and isinstance(schema[c], pl.String) else c
            for c in COLUMNS if c in names])
                 .filter(pl.col("ts") < cutoff).collect())
    else:
        frame = transactions
    ts = frame.get_column("ts")
    per_day = _TICKS_PER_DAY[ts.dtype.time_unit]  # type: ignore[attr-defined]
    if ts.null_count():
        keep_known = ts.is_not_null().to_numpy()
        ticks = np.nan_to_num(ts.cast(pl.Int64).to_numpy()).astype(np.int64)
        keep = keep_known & (ticks < day_number(as_of) * per_day)
    else:
        ticks = ts.to_numpy().view(np.int64)  # datetime64 ticks, no copy
        keep = ticks < day_number(as_of) * per_day
    small = frame.height <= NUMPY_MAX_LINES
    ahead = (own if ahead is None else ahead) and not small
    pending = {}
    if ahead and "product_id" in frame.columns:  # the other core encodes while we sort
        pending["product_id"] = _background().submit(
            encode, frame.get_column("product_id"), False)
    perm, new_customer, new_order, customer_ids = _sort(frame, keep, small)
    order_starts = new_order.nonzero()[0]
    if ahead and "channel" in frame.columns:
        pending["order_channels"] = _background().submit(
            _first_codes, frame.get_column("channel"), perm, order_starts, False)
    amount = frame.get_column("amount")
    if not isinstance(amount.dtype, pl.Float64):
        amount = amount.cast(pl.Float64)
    owned = own or isinstance(transactions, pl.LazyFrame)
    let_go = set()
    if owned:  # our own copy: keep only what is read later (a column being encoded is
        # held by its job until done)
        let_go = {c for c, job in (("product_id", "product_id"), ("channel", "order_channels"))
                  if job in pending}
        frame = frame.select([c for c in ("product_id", "quantity", "channel")
                              if c in frame.columns and c not in let_go])
    # In place where a step would copy a shop's size (peak memory on 20M lines).
    cust = np.cumsum(new_customer)
    cust -= 1
    day = ticks[perm]
    day //= per_day
    lines = Lines(
        as_of=as_of,
        customer_ids=customer_ids,
        cust=cust,
        new_order=new_order,
        day=day.astype(np.int32),
        amount=amount.to_numpy()[perm],
        _frame=frame,
        _perm=perm,
        _numpy_engine=small,
        _owned=owned,
        _let_go=let_go,
        _pending=pending,
    )
    lines.order_starts = order_starts  # the cached property, known already
    return lines


_BACKGROUND: dict = {}  # process id -> its executor


def _background():
    """One worker thread, made on first use: the features' encoding overlaps the sort
    (both spend their time in polars or numpy, outside the GIL). Per process: a forked
    child (a Spark or gunicorn worker) has none of its parent's threads."""
    import os

    pid = os.getpid()
    if pid not in _BACKGROUND:
        from concurrent.futures import ThreadPoolExecutor

        _BACKGROUND.clear()
        _BACKGROUND[pid] = ThreadPoolExecutor(1, thread_name_prefix="retain-lines")
    return _BACKGROUND[pid]


def _first_codes(values: pl.Series, perm: np.ndarray, starts: np.ndarray,
                 numpy_engine: bool) -> tuple[np.ndarray, pl.Series]:
    """``encode`` of each segment's first non-missing value (missing when none) of
    ``values`` read in ``perm`` order: only those rows are encoded."""
    rows = starts
    if values.null_count():
        first = seg_first(values.is_not_null().to_numpy()[perm], starts)
        rows = np.where(first >= 0, first, starts)
    return encode(take(values, perm[rows]), numpy_engine)


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
        # encode's codes, without its names as a Series: the order ids' are not needed and
        # the customers' are built once, for the customers kept (measured ~10 us a request).
        customers, names = _list_codes(customer_id.to_list())
        orders, _ = _list_codes(order_id.to_list())
        kept = keep.nonzero()[0]
        perm = kept[np.lexsort((orders[kept], customers[kept]))]
        customers, orders = customers[perm], orders[perm]
        new_customer = changes(customers)
        new_order = new_customer | changes(orders)
        kept_names = [names[code] if code >= 0 else None  # a missing id sorts first
                      for code in customers[new_customer].tolist()]
        return perm, new_customer, new_order, string_column(customer_id.name, kept_names)
    coded = _sort_by_customer_codes(customer_id, order_id, keep)
    if coded is not None:
        return coded
    everything = _arg_sort_pairs(customer_id, order_id)
    perm = everything[keep[everything]]
    del everything
    # One gathered string column at a time: each is a shop's size.
    ids = take(customer_id, perm)
    new_customer = changes_in(ids, missing=False)
    customer_ids = take(ids, new_customer.nonzero()[0])
    del ids
    new_order = new_customer | changes_in(take(order_id, perm), missing=True)
    return perm, new_customer, new_order, customer_ids


def _sort_by_customer_codes(customer_id: pl.Series, order_id: pl.Series, keep: np.ndarray):
    """``_sort``'s result without sorting a string per line, or None when it cannot tell.

    Customers become integer codes in name order: runs of a customer-sorted column are
    numbered as they come (one pass), otherwise categorical codes are mapped to name order
    (only the distinct ids are sorted as strings). One stable sort of the codes (none when the
    column is sorted) then groups each customer's lines in input order. That is the
    ``(customer_id, order_id)`` order whenever each customer's order ids already come in
    non-decreasing order, as exports give them (customer by customer, or in time order with
    order ids rising in time): checked, and otherwise the strings are sorted (None).
    Measured on 20.7M lines: ~1 s CPU customer-sorted, ~5 s in time order, against ~4.5 s
    and ~25 s for the string sort.
    """
    if customer_id.null_count() or order_id.null_count():
        return None  # missing ids: the exact string sort decides their place
    n = len(customer_id)
    in_order = customer_id.is_sorted()
    if in_order and n > 1:
        runs = _runs_as_they_come(customer_id, order_id, keep)
        if runs is not None:
            return runs
    if in_order and keep.all():  # as it comes: the runs are the customers
        perm = np.arange(n)
        new_customer = changes_in(customer_id, missing=False)
    else:
        if in_order:
            code = np.cumsum(changes_in(customer_id, missing=False))
            perm = keep.nonzero()[0]
        else:
            code = _name_order_codes(customer_id.cast(pl.Categorical))
            perm = argsort_stable(code)
            perm = perm[keep[perm]]
        new_customer = changes(code[perm])
        del code
    m = len(perm)
    ordered = order_id if in_order and m == n else take(order_id, perm)
    new_order = new_customer.copy()
    if m > 1:
        after, before = ordered.slice(1), ordered.slice(0, m - 1)
        if not ((after >= before).to_numpy() | new_customer[1:]).all():
            return None
        new_order[1:] |= (after != before).to_numpy()
    return perm, new_customer, new_order, take(customer_id, perm[new_customer])


def _runs_as_they_come(customer_id: pl.Series, order_id: pl.Series, keep: np.ndarray):
    """``_sort``'s result for customer-sorted lines whose order ids never fall within a
    customer, checked on every line, kept or not (then the kept ones qualify too); None
    when the check fails. Customer and order runs are found on the input as it is, in one
    polars query (its three comparisons side by side), and carried to the kept lines as
    run numbers: no copy of the order ids (measured ~40% less CPU on 2.1M lines)."""
    n = len(customer_id)
    after, before = pl.col("c").slice(1), pl.col("c").slice(0, n - 1)
    later, earlier = pl.col("o").slice(1), pl.col("o").slice(0, n - 1)
    compared = pl.DataFrame([customer_id.alias("c"), order_id.alias("o")]).select(
        (after != before).alias("customer"), (later >= earlier).alias("rising"),
        (later != earlier).alias("order"))
    new_customer = np.ones(n, dtype=bool)
    new_customer[1:] = compared.get_column("customer").to_numpy()
    if not (compared.get_column("rising").to_numpy() | new_customer[1:]).all():
        return None
    new_order = new_customer.copy()
    new_order[1:] |= compared.get_column("order").to_numpy()
    del compared
    if keep.all():
        perm = np.arange(n)
    else:  # a kept line starts a run when a run started since the previous kept line
        perm = keep.nonzero()[0]
        runs = np.int32 if n < 2**31 else np.int64  # half the memory: a shop's size
        new_customer = changes(np.cumsum(new_customer, dtype=runs)[perm])
        new_order = changes(np.cumsum(new_order, dtype=runs)[perm])
    return perm, new_customer, new_order, take(customer_id, perm[new_customer])


def _name_order_codes(values: pl.Series) -> np.ndarray:
    """Codes in name order of a categorical column without missing values. The distinct
    physical ids are found by scattering into a table (no unique() over every line: measured
    ~1 s less CPU than ``_encode_categorical`` on 20.7M lines in time order); only the
    distinct names are sorted as strings."""
    physical = values.to_physical().to_numpy()
    size = int(physical.max()) + 1 if len(physical) else 1
    row = np.empty(size, dtype=np.int64)
    row[physical] = np.arange(len(physical))  # any one line of each id
    seen = np.zeros(size, dtype=bool)
    seen[physical] = True
    present = seen.nonzero()[0]
    names = take(values, row[present]).cast(pl.String)
    table = np.empty(size, dtype=np.int64)
    table[present[names.arg_sort().to_numpy()]] = np.arange(len(present))
    return table[physical]


def _arg_sort_pairs(customer_id: pl.Series, order_id: pl.Series) -> np.ndarray:
    """The stable order of the rows by ``(customer_id, order_id)``, missing order ids first.

    polars sorts one string column of ``customer_id + NUL + order_id`` in half the time of
    the two columns (measured on 20.7M lines: 2.5 s CPU with the concatenation, against 5.1 s;
    the two-column sort row-encodes both). The order is the same: no customer id contains NUL
    (it sorts before every other character, so a customer id that is a prefix of another
    still comes first). A missing order id becomes "", which only merges it with a real
    empty order id: then, or with NUL in a customer id or a missing customer id, the two
    columns are sorted as they are.
    """
    exact = (customer_id.null_count() == 0
             and not customer_id.str.contains("\x00", literal=True).any()
             and (order_id.null_count() == 0 or not (order_id == "").any()))
    if not exact:
        return pl.DataFrame([customer_id.alias("c"), order_id.alias("o")]).select(
            pl.arg_sort_by("c", "o", maintain_order=True)).to_series().to_numpy()
    key = pl.DataFrame([customer_id.alias("c"), order_id.alias("o")]).select(
        pl.concat_str("c", pl.lit("\x00"), pl.col("o").fill_null(""))).to_series()
    return pl.DataFrame([key.alias("k")]).select(
        pl.arg_sort_by("k", maintain_order=True)).to_series().to_numpy()


def _strings(series: pl.Series) -> pl.Series:
    return series if isinstance(series.dtype, pl.String) else series.cast(pl.String)


def changes(codes: np.ndarray) -> np.ndarray:
    """True where a run of equal codes starts."""
    out = np.empty(len(codes), dtype=bool)
    out[:1] = True
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
    if not numpy_engine and isinstance(values.dtype, pl.Categorical):
        return _encode_categorical(values)
    values = _strings(values)
    if numpy_engine:
        codes, names = _list_codes(values.to_list())
        return codes, string_column(values.name, names)
    names = values.drop_nulls().unique().sort()
    physical = values.cast(pl.Enum(names.to_list())).to_physical()
    if not physical.null_count():  # numpy's cast: ~6x less than polars' cast and fill_null
        return physical.to_numpy().astype(np.int32), names
    return physical.cast(pl.Int32).fill_null(-1).to_numpy(), names


def _list_codes(listed: list) -> tuple[np.ndarray, list]:
    """``encode`` of a request's few values as a list: ``(codes, sorted distinct names)``.
    A dict beats np.unique on Python strings several times over."""
    names = sorted(set(listed) - {None})
    index = {name: code for code, name in enumerate(names)}
    index[None] = -1
    return np.array([index[v] for v in listed], dtype=np.int32), names


def _encode_categorical(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """``encode`` of a categorical column: its physical ids mapped to name-order codes."""
    present = values.drop_nulls().unique()
    strings = present.cast(pl.String)
    names = strings.sort()
    ids = present.to_physical().to_numpy().astype(np.int64)
    table = np.full(int(ids.max()) + 2 if len(ids) else 1, -1, dtype=np.int32)
    table[ids] = strings.rank("ordinal").to_numpy().astype(np.int32) - 1
    physical = values.to_physical().fill_null(len(table) - 1).to_numpy()
    return table[physical], names


def sort_keys(*keys: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rows of the integer ``keys`` sorted lexicographically (the first key major), as
    int64 arrays."""
    packed = _packed_sort(keys)
    if packed is None:
        order = np.lexsort(keys[::-1])
        return tuple(k[order].astype(np.int64) for k in keys)
    combined, lows, bits = packed
    out = []
    for low, width in zip(lows[::-1], bits[::-1]):
        rest = combined & ((1 << width) - 1)
        rest += low
        out.append(rest)
        combined >>= width
    return tuple(out[::-1])


def _packed_sort(keys, major_sorted: bool = False
                 ) -> tuple[np.ndarray, list[int], list[int]] | None:
    """``(sorted packed keys, lows, bit widths)``: each key minus its low in a field of
    whole bits (the first key highest), one int64 per row, sorted in place; None when
    numpy's lexsort is the better way (few rows) or one int64 cannot hold the fields.
    A third of lexsort's memory and time; shifts and masks, not products and divisions
    (measured ~0.4 s less CPU on 20M product lines). ``major_sorted``: the first key is
    already in order (as customers are in ``Lines``), so two halves cut between two of its
    values sort apart, on two cores."""
    if len(keys[0]) < 100_000:  # numpy's lexsort: fewest steps on small arrays
        return None
    lows = [int(k.min()) for k in keys]
    bits = [(int(k.max()) - low).bit_length() for k, low in zip(keys, lows)]
    if sum(bits) > 62:
        return None
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for k, low, width in zip(keys, lows, bits):
        combined <<= width
        combined += k
        combined -= low
    cut = len(combined) // 2
    if major_sorted and cut >= _HALVES_MIN:
        major = keys[0]
        cut = int(np.searchsorted(major, major[cut]))  # the first row of that major value
        # Every key before the cut is smaller than every key after it: each half sorted
        # in place is the whole sorted (numpy's sort lets the GIL go; no extra memory).
        other = threading.Thread(target=combined[cut:].sort, name="retain-sort")
        other.start()
        combined[:cut].sort()
        other.join()
    else:
        combined.sort()
    return combined, lows, bits


# From this many rows a packed sort is split over two threads (a thread costs ~100 us).
_HALVES_MIN = 250_000


# numpy's sorts, measured on 2M-line shops on 2 busy cores, beat polars' (0.12 s against
# 0.65 s for a sort of int64 keys; argsorts of keys nearly in order, as a customer's orders
# are, are faster still).
def sort_ints(values: np.ndarray) -> np.ndarray:
    return np.sort(values)


def argsort_stable(values: np.ndarray) -> np.ndarray:
    return np.argsort(values, kind="stable")


# --- segment reductions ------------------------------------------------------------------
# ``starts``: the first row of each segment, increasing, on rows sorted by segment.


def starts_of(new: np.ndarray) -> np.ndarray:
    return new.nonzero()[0]


def lengths(starts: np.ndarray, n: int) -> np.ndarray:
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1:] = n
    return ends - starts


def seg_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    if not len(starts):
        return np.zeros(0, dtype=values.dtype)
    return np.add.reduceat(values, starts)






def seg_first(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The first row of each segment where ``mask`` holds; -1 where it never does."""
    n = len(mask)
    rows = np.where(mask, np.arange(n), n)
    first = np.minimum.reduceat(rows, starts) if len(starts) else np.zeros(0, np.int64)
    return np.where(first < n, first, -1)


def steps(values: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Each row's value minus the previous row's within its segment; 0 on a segment's first
    row (``new``: the rows that start a segment)."""
    out = np.empty_like(values)
    out[:1] = 0
    np.subtract(values[1:], values[:-1], out=out[1:])
    out[new] = 0
    return out


def median_of_steps(step: np.ndarray, new: np.ndarray, starts: np.ndarray,
                    counts: np.ndarray) -> np.ndarray:
    """Median of each segment's ``steps`` (its ``counts - 1`` differences, all >= 1: the
    values differ within a segment); NaN for a one-row segment."""
    n = len(step)
    if n and int(counts.max()) > 3:
        bits = int(step.max()).bit_length()
        # Sorted within each segment (in place: these arrays are a shop's size); the first
        # row's 0 comes first, the steps after it. Whole-bit fields: a shift and a mask, not a
        # division; int32 keys when segment number and step fit in 31 bits (a 2M-line shop's
        # do: measured ~35% less time than int64 keys, half the memory traffic).
        fits = len(starts).bit_length() + bits <= 31
        ordered = np.cumsum(new, dtype=np.int32 if fits else np.int64)
        ordered <<= bits
        ordered += step
        ordered.sort()
        ordered &= (1 << bits) - 1
    else:
        # At most 3 rows a segment (often so on one customer's lines): the positions read
        # below are rows 1 and 2, whose sum does not depend on their order.
        ordered = step
    # Positions of the middle steps: the segment's first row holds the 0 (placeholder).
    half = counts // 2
    low = starts + half
    high = np.minimum(low + (counts & 1), n - 1)  # odd counts: an even number of steps
    return np.where(counts > 1, (ordered[low].astype(np.int64) + ordered[high]) * 0.5, np.nan)


# --- building polars columns --------------------------------------------------------------

# polars' own constructors, called directly: pl.Series(numpy), Series.gather and
# pl.DataFrame(series) spend 10-50 us each in Python-side checks or a one-expression query
# (measured), which on a one-customer request came to most of the time; numpy arrays of known
# dtype need none of it. Public API when those internals are missing.
try:
    from polars._plr import PyDataFrame as _PyDataFrame  # polars >= 1.32
    from polars._plr import PySeries as _PySeries
except ImportError:  # pragma: no cover
    try:
        from polars.polars import PyDataFrame as _PyDataFrame  # type: ignore[no-redef]
        from polars.polars import PySeries as _PySeries  # type: ignore[no-redef]
    except ImportError:
        _PySeries = _PyDataFrame = None
_FAST = _PySeries is not None and all(hasattr(_PySeries, name) for name in (
    "new_f64", "new_i64", "new_i32", "new_u32", "new_bool", "gather_with_series"))


def take(series: pl.Series, rows: np.ndarray) -> pl.Series:
    """``series.gather(rows)`` (``rows``: non-negative positions)."""
    if _FAST:
        index = _PySeries.new_u32("", np.ascontiguousarray(rows, dtype=np.uint32), True)
        return pl.Series._from_pyseries(series._s.gather_with_series(index))
    return series.gather(rows)


def frame(columns: list[pl.Series]) -> pl.DataFrame:
    """A DataFrame of equal-length, distinctly named Series."""
    if _FAST and _PyDataFrame is not None:
        return pl.DataFrame._from_pydf(_PyDataFrame([c._s for c in columns]))
    return pl.DataFrame(columns)


_F64, _I64 = np.dtype(np.float64), np.dtype(np.int64)


def float_column(name: str, values: np.ndarray) -> pl.Series:
    """Float64; NaN becomes null (the features' missing values)."""
    if values.dtype is not _F64 or not values.flags.c_contiguous:
        values = np.ascontiguousarray(values, dtype=np.float64)
    if _FAST:
        return pl.Series._from_pyseries(_PySeries.new_f64(name, values, True))
    return pl.Series(name, values, nan_to_null=True)


def int_column(name: str, values: np.ndarray) -> pl.Series:
    if values.dtype is not _I64 or not values.flags.c_contiguous:
        values = np.ascontiguousarray(values, dtype=np.int64)
    if _FAST:
        return pl.Series._from_pyseries(_PySeries.new_i64(name, values, True))
    return pl.Series(name, values)


def bool_column(name: str, values: np.ndarray) -> pl.Series:
    values = np.ascontiguousarray(values, dtype=bool)
    if _FAST:
        return pl.Series._from_pyseries(_PySeries.new_bool(name, values, True))
    return pl.Series(name, values)


def date_column(name: str, days: np.ndarray) -> pl.Series:
    """Day numbers (float NaN or int) -> Date; NaN becomes null."""
    if days.dtype.kind == "f":
        return float_column(name, days).cast(pl.Int32).cast(pl.Date)
    values = np.ascontiguousarray(days, dtype=np.int32)
    if _FAST:
        try:
            return pl.Series._from_pyseries(
                _PySeries.new_i32(name, values, True).cast(pl.Date, True, True))
        except TypeError:  # pragma: no cover - another signature of the internal cast
            return pl.Series._from_pyseries(_PySeries.new_i32(name, values, True)).cast(pl.Date)
    return pl.Series(name, values).cast(pl.Date)


def string_column(name: str, values: list) -> pl.Series:
    if _FAST and hasattr(_PySeries, "new_str"):
        return pl.Series._from_pyseries(_PySeries.new_str(name, values, True))
    return pl.Series(name, values, pl.String)


def name_column(name: str, names: pl.Series, codes: np.ndarray) -> pl.Series:
    """``names[code]``, null where the code is -1."""
    if len(codes) and codes.min() < 0:
        names = _with_null(names)
        codes = np.where(codes >= 0, codes, len(names) - 1)
    return take(names, codes).alias(name)


def _with_null(names: pl.Series) -> pl.Series:
    """``names.extend_constant(None, 1)``: that runs a query, ~125 us against ~1 us for
    appending a one-null Series (measured; a request whose lines carry no channel pays it)."""
    if (_FAST and isinstance(names.dtype, pl.String) and hasattr(_PySeries, "new_str")
            and hasattr(names._s, "append")):
        out = names._s.clone()  # shares the buffers: append copies on write, names unchanged
        out.append(_PySeries.new_str(names.name, [None], True))
        return pl.Series._from_pyseries(out)
    return names.extend_constant(None, 1)
