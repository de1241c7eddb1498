"""Columns as numpy arrays that compare and add up as polars columns do, for the decision rules.

The rules run on numpy arrays, one per column, so that one customer (the API) costs a few
microseconds per rule and a million customers the same rules over whole arrays. A
:class:`Column` keeps a validity mask beside its values and follows polars' semantics, which the
rules were written against: arithmetic with a null is null, a comparison with a null is null and
a rule on null does not hold (``when`` falls through, a filter drops the row), and NaN compares
as the greatest value (``NaN > x``, ``NaN == NaN``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

from retain.features import segments as _segments

_EPOCH = date(1970, 1, 1)
# Up to this many rows a column's nulls are found from its Python values.
_LISTED_MAX = 64


def day_number(day: date) -> int:
    """Days since 1970-01-01: how a :class:`Column` of dates holds each date."""
    return (day - _EPOCH).days


class Column:
    """Float64 values (dates: days since 1970) and their validity; ``ok`` None: no null."""

    __slots__ = ("_nan", "ok", "values")

    def __init__(self, values: np.ndarray, ok: np.ndarray | None = None,
                 nan: bool | None = None) -> None:
        self.values = values
        self.ok = ok
        self._nan = nan  # whether a value may be NaN or infinite (None: not looked at yet)

    @classmethod
    def of(cls, series: pl.Series) -> Column:
        """A numeric or Date Series; its nulls become invalid entries."""
        # Series methods that polars runs as expressions cost ~50 us each: to_numpy, a null
        # count and Arrow's validity are direct.
        values = series.to_numpy()
        nulls = series.null_count()
        if values.dtype.kind == "M":  # dates: datetime64[D], null as NaT
            days = values.view(np.int64).astype(np.float64)
            if nulls:
                ok = ~np.isnat(values)
                return cls(np.where(ok, days, 0.0), ok, nan=False)
            return cls(days, nan=False)
        if values.dtype != np.float64:
            values = values.astype(np.float64)
        if nulls:
            if len(values) <= _LISTED_MAX:  # a request's few rows: ~1 us against Arrow's ~10
                ok = np.fromiter((v is not None for v in series.to_list()), dtype=bool,
                                 count=len(values))
            else:
                ok = ~series.to_arrow().is_null().to_numpy(zero_copy_only=False)
            return cls(np.where(ok, values, 0.0), ok)  # a null is no NaN
        return cls(values)

    @staticmethod
    def look_for_nan(columns: Sequence[Column]) -> None:
        """Find which columns hold a NaN (or an infinity) in one pass (each alone would take
        two numpy calls)."""
        unknown = [c for c in columns if c._nan is None]
        if unknown:
            values = np.concatenate([c.values for c in unknown])  # np.stack costs 10x more
            found = (~np.isfinite(values)).reshape(len(unknown), -1).any(axis=1).tolist()
            for column, nan in zip(unknown, found, strict=True):
                column._nan = nan

    def may_be_nan(self) -> bool:
        """Whether a value may be NaN or infinite (then comparisons take the slower path
        that handles NaN)."""
        if self._nan is None:
            # One reduction instead of an elementwise test: NaN and infinities make the sum
            # not finite (and so may an overflow: the slower path is right for it too).
            self._nan = not math.isfinite(np.add.reduce(self.values, axis=None))
        return self._nan

    def finite(self) -> bool:
        """Known to hold only finite values and no null."""
        return self.ok is None and self._nan is False

    def valid(self) -> np.ndarray:
        """The validity mask, all True when there is no null."""
        return np.ones(len(self.values), dtype=bool) if self.ok is None else self.ok

    def fill_null(self, value: float) -> Column:
        if self.ok is None:
            return self
        return Column(np.where(self.ok, self.values, value), None,
                      None if self._nan is None else self._nan or math.isnan(value))

    def _binary(self, other: Column | float, op: Any) -> Column:
        # NaN comes from NaN (finite inputs that overflow twice over are not expected here).
        if isinstance(other, Column):
            nan = None if self._nan is None or other._nan is None else self._nan or other._nan
            return Column(op(self.values, other.values), both(self.ok, other.ok), nan)
        nan = None if self._nan is None else self._nan or math.isnan(other)
        return Column(op(self.values, other), self.ok, nan)

    def __add__(self, other: Column | float) -> Column:
        return self._binary(other, np.add)

    def __sub__(self, other: Column | float) -> Column:
        return self._binary(other, np.subtract)

    def __mul__(self, other: Column | float) -> Column:
        return self._binary(other, np.multiply)

    def __rmul__(self, other: float) -> Column:
        return self._binary(other, np.multiply)

    def __radd__(self, other: float) -> Column:
        return self._binary(other, np.add)

    def __rsub__(self, other: float) -> Column:
        return Column(other - self.values, self.ok,
                      None if self._nan is None else self._nan or math.isnan(other))

    # Comparisons answer "does the rule hold": False where either side is null.
    def _compare(self, other: Column | float | np.ndarray, op: Any, nan_holds: Any) -> np.ndarray:
        if isinstance(other, Column):
            b, ok = other.values, both(self.ok, other.ok)
            nan = self.may_be_nan() or other.may_be_nan()
        elif isinstance(other, np.ndarray):
            b, ok = other, self.ok
            nan = self.may_be_nan() or bool(np.isnan(other).any())
        else:
            b, ok = other, self.ok
            nan = self.may_be_nan() or math.isnan(other)
        held = op(self.values, b)
        if nan:
            held |= nan_holds(np.isnan(self.values), np.isnan(b))
        return held if ok is None else held & ok

    def __gt__(self, other: Column | float) -> np.ndarray:  # type: ignore[override]
        return self._compare(other, np.greater, lambda a, b: a & ~b)

    def __ge__(self, other: Column | float) -> np.ndarray:  # type: ignore[override]
        return self._compare(other, np.greater_equal, lambda a, b: a)

    def __lt__(self, other: Column | float) -> np.ndarray:  # type: ignore[override]
        return self._compare(other, np.less, lambda a, b: b & ~a)

    def __le__(self, other: Column | float) -> np.ndarray:  # type: ignore[override]
        return self._compare(other, np.less_equal, lambda a, b: b)

    def is_null(self) -> np.ndarray:
        return np.zeros(len(self.values), dtype=bool) if self.ok is None else ~self.ok


def both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Validity of a result from two inputs (None: all valid)."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def first_match(rules: Sequence[tuple[np.ndarray, int]], default: int, n: int) -> np.ndarray:
    """Per row the value of the first rule that holds, else ``default`` (polars' when/then
    chain): codes into a tuple of names."""
    out = np.full(n, default, dtype=np.int8)
    for held, value in reversed(rules):
        out[held] = value
    return out


def names_of(names: tuple[str | None, ...], codes: np.ndarray) -> np.ndarray:
    """``names[code]`` per row, as an object array (a name None: null)."""
    return _names(names)[codes]


def text_columns(names: Sequence[str], columns: Sequence[np.ndarray]) -> list[pl.Series]:
    """String Series from object arrays of str or None, all of one length."""
    # polars' direct constructor from lists (features.segments): ~1 us a column, where
    # pl.Series costs ~10 us in checks whatever the length (and one Series sliced ~5 us a
    # slice); from a list, less fixed cost than from an object array, as fast for millions.
    return [_segments.string_column(name, column.tolist())
            for name, column in zip(names, columns, strict=True)]


@lru_cache(maxsize=64)
def _names(names: tuple[str | None, ...]) -> np.ndarray:
    return np.asarray(names, dtype=object)


def float_series(name: str, values: np.ndarray, ok: np.ndarray | None = None) -> pl.Series:
    """Float64 ``values`` (NaN kept), null where ``ok`` is False: polars' own constructor
    (``features.segments``), ~1 us against ~10-30 us for ``pl.Series`` and a scatter."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if ok is not None and not ok.all():
        return with_nulls(pl.Series(name, values), ok)
    if _segments._FAST:
        return pl.Series._from_pyseries(_segments._PySeries.new_f64(name, values, False))
    return pl.Series(name, values)


def with_nulls(series: pl.Series, ok: np.ndarray | None) -> pl.Series:
    """``series`` with null where ``ok`` is False."""
    if ok is None or ok.all():
        return series
    return series.scatter(np.flatnonzero(~ok), None)


def aligned(ids: pl.Series, frame: pl.DataFrame, columns: Sequence[str],
            duplicates: str = "first") -> list[pl.Series]:
    """``columns`` of ``frame`` for each of ``ids`` in turn (a left join on ``customer_id``):
    null for an id the frame lacks. A frame with an id on several rows: the first row
    (``duplicates="first"``) or, for booleans, whether any row is true (``"any"``)."""
    key = frame.get_column("customer_id")
    if key.len() == ids.len() and key.dtype == ids.dtype and key.equals(ids):
        # The same customers in the same order (the API's one-customer requests): no join.
        return [frame.get_column(c) for c in columns]
    right = frame.select("customer_id", *columns)
    if key.is_duplicated().any():
        if duplicates == "any":
            right = right.group_by("customer_id").agg(
                pl.col(list(columns)).fill_null(False).any())
        else:
            right = right.unique("customer_id", keep="first", maintain_order=True)
    joined = ids.to_frame("customer_id").join(right, on="customer_id", how="left",
                                              maintain_order="left")
    return [joined.get_column(c) for c in columns]
