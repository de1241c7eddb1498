"""The data contract: transactions, customers and contacts in, clean typed frames out.

This is the only module of ``features/`` that does I/O. It reads CSV, Parquet or a SQL query,
renames columns by the shop's mapping, converts every column to its contract type and rejects
bad rows with a reason. With ``on_bad_rows="fail"`` (the default) any rejected row raises one
:class:`DataError` naming the file, the column and the first offending rows; with ``"skip"`` the
rejected rows are written, with their reason, to a side file and counted in the report.

Transactions contract (after mapping)::

    customer_id  string, required (surrounding spaces are stripped)
    order_id     string, optional: one order per row when the column or the value is missing
    ts           date or datetime, required; naive means UTC, aware values are converted to UTC
    amount       number, required: line revenue, negative = return (netted within the order)
    product_id   string, optional
    quantity     number, optional (1 when missing)
    channel      string, optional
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import polars as pl

from features.orders import midnight

OnBadRows = Literal["fail", "skip"]

TRANSACTION_REQUIRED = ("customer_id", "ts", "amount")
TRANSACTION_OPTIONAL = ("order_id", "product_id", "quantity", "channel")
CUSTOMER_REQUIRED = ("customer_id",)
CONTACT_REQUIRED = ("customer_id", "ts", "channel")

# Formats seen in shop exports: ISO, Russian day-first, compact (CDNOW), with and without time.
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y%m%d",
    "%Y/%m/%d",
)
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z")
_TRUE = ("true", "1", "yes", "y", "t", "да")
_FALSE = ("false", "0", "no", "n", "f", "нет", "")
_SHOWN_ROWS = 5
_ROW = "_row"
_ALL_COLUMNS = "all columns"
_REASON = "_reason"


class DataError(ValueError):
    """Input data breaks the contract; the message names the file, the column and the rows."""


@dataclass
class LoadReport:
    """What happened to the rows of one input."""

    source: str
    rows_read: int
    rows_kept: int
    rejected: dict[str, int] = field(default_factory=dict)
    rejects_path: Path | None = None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())


@dataclass
class Loaded:
    frame: pl.DataFrame
    report: LoadReport


def parse_column_map(pairs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["customer_id=client_code"]`` -> ``{"customer_id": "client_code"}`` (contract -> source)."""
    if not pairs:
        return {}
    if isinstance(pairs, Mapping):
        return dict(pairs)
    mapping: dict[str, str] = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise DataError(f"--map expects CONTRACT_COLUMN=YOUR_COLUMN, got {pair!r}")
        mapping[target.strip()] = source.strip()
    return mapping


def is_database_url(source: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+]*://", str(source)))


def read_table(source: str | Path, query: str | None = None) -> pl.DataFrame:
    """Read a CSV (every column as text), a Parquet file, or a SQL query against a database URL.

    A row index ``_row`` (0-based position in the source) is added so errors can point at rows.
    """
    name = str(source)
    if is_database_url(name):
        frame = _read_sql(name, query or "SELECT * FROM transactions")
    else:
        path = Path(name)
        if not path.exists():
            raise DataError(f"{name}: file not found")
        if path.stat().st_size == 0:
            raise DataError(f"{name}: the file is empty")
        suffixes = "".join(path.suffixes).lower()
        if suffixes.endswith((".parquet", ".pq")):
            frame = pl.read_parquet(path)
        elif suffixes.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            frame = _read_csv(path)
        else:
            raise DataError(f"{name}: unknown file type; use .csv, .parquet or a database URL")
    if frame.height == 0:
        raise DataError(f"{name}: no rows (only a header or an empty result)")
    return frame.with_row_index(_ROW)


def _read_csv(path: Path) -> pl.DataFrame:
    with path.open("rb") as handle:
        head = handle.readline().decode("utf-8-sig", errors="replace")
    separator = max((",", ";", "\t"), key=head.count)
    try:
        frame = pl.read_csv(
            path,
            separator=separator,
            infer_schema=False,
            encoding="utf8-lossy",
            truncate_ragged_lines=False,
        )
    except pl.exceptions.NoDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except pl.exceptions.ComputeError as exc:
        raise DataError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]})") from exc
    return frame.rename({c: c.strip().lstrip("\ufeff") for c in frame.columns})


def _read_sql(url: str, query: str) -> pl.DataFrame:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return pl.read_database(query, connection, infer_schema_length=None)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise DataError(f"{_safe_url(url)}: query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def _apply_map(frame: pl.DataFrame, column_map: Mapping[str, str], source: str) -> pl.DataFrame:
    missing = [src for src in column_map.values() if src not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: mapped column(s) {', '.join(map(repr, missing))} not found "
            f"(columns: {', '.join(c for c in frame.columns if c != _ROW)})"
        )
    renames = {src: target for target, src in column_map.items() if src != target}
    clashing = [t for t in renames.values() if t in frame.columns and t not in renames]
    return frame.drop(clashing).rename(renames)


def _require(frame: pl.DataFrame, required: Sequence[str], source: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(c for c in frame.columns if c != _ROW)
        hint = " ".join(f"--map {c}=YOUR_COLUMN" for c in missing)
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (found: {found}). "
            f"If they have other names, map them: {hint}"
        )


def _text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars()


def _datetime(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Any date/datetime/text column -> naive UTC Datetime('us'); unparseable -> null."""
    dtype = frame.schema[column]
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.cast(pl.Datetime("us"))
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us"))
    text = col.cast(pl.String).str.strip_chars()
    naive = [text.str.strptime(pl.Datetime("us"), f, strict=False) for f in _DATETIME_FORMATS]
    aware = [
        text.str.strptime(pl.Datetime("us", "UTC"), f, strict=False)
        .dt.replace_time_zone(None)
        for f in _AWARE_FORMATS
    ]
    return pl.coalesce(*aware, *naive)


def _number(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Numbers, or text like '1 234,50' / '1234.5' -> Float64; anything else -> null."""
    if frame.schema[column].is_numeric():
        value = pl.col(column).cast(pl.Float64)
    else:
        text = pl.col(column).cast(pl.String).str.replace_all(r"[\s\u00a0']", "")
        text = pl.when(text.str.contains(r"^-?\d+,\d+$")).then(text.str.replace(",", ".")).otherwise(text)
        value = text.cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def _boolean(frame: pl.DataFrame, column: str) -> pl.Expr:
    if frame.schema[column] == pl.Boolean:
        return pl.col(column)
    text = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE) | text.is_null()).then(False)


@dataclass
class _Check:
    column: str
    reason: str
    bad: pl.Expr  # true on rejected rows, evaluated on a frame holding raw and parsed columns


def _validate(
    raw: pl.DataFrame,
    parsed: dict[str, pl.Expr],
    checks: list[_Check],
    *,
    source: str,
    on_bad_rows: OnBadRows,
    rejects_path: Path | None,
    line_offset: int,
) -> Loaded:
    """Parse, run every check, then fail with one message or split off the rejected rows."""
    work = raw.with_columns(**{f"__{k}": v for k, v in parsed.items()})
    reason = pl.lit(None, dtype=pl.String)
    for check in reversed(checks):  # the first failing check gives the reason
        reason = pl.when(check.bad).then(pl.lit(f"{check.column}: {check.reason}")).otherwise(reason)
    work = work.with_columns(reason.alias(_REASON))
    rejected = work.filter(pl.col(_REASON).is_not_null())
    report = LoadReport(source=source, rows_read=raw.height, rows_kept=raw.height - rejected.height)
    if rejected.height:
        counts = rejected.group_by(_REASON, maintain_order=True).len()
        report.rejected = dict(zip(counts[_REASON].to_list(), counts["len"].to_list(), strict=True))
        if on_bad_rows == "fail":
            raise DataError(_describe(rejected, source, line_offset))
        if rejects_path is not None:
            _write_rejects(rejected, raw.columns, rejects_path, line_offset)
            report.rejects_path = rejects_path
    kept = work.filter(pl.col(_REASON).is_null()) if rejected.height else work
    clean = kept.select(
        pl.col(_ROW), *[pl.col(f"__{k}").alias(k) for k in parsed]
    )
    return Loaded(frame=clean, report=report)


def _describe(rejected: pl.DataFrame, source: str, line_offset: int) -> str:
    unit = "line" if line_offset == 2 else "row"
    lines = [f"{source}: {rejected.height} bad row(s); nothing was loaded."]
    for (why,), group in rejected.group_by(_REASON, maintain_order=True):
        column = str(why).split(":", 1)[0]
        shown = group.head(_SHOWN_ROWS)
        where = ", ".join(str(r + line_offset) for r in shown[_ROW].to_list())
        values = ""
        if column in group.columns:
            examples = [repr(v) for v in shown[column].cast(pl.String).to_list()]
            values = f" (values: {', '.join(examples)})"
        more = f" and {group.height - shown.height} more" if group.height > shown.height else ""
        label = column if column == _ALL_COLUMNS else f"column '{column}'"
        lines.append(f"  {label}: {why.split(': ', 1)[1]} at {unit}s {where}{more}{values}")
    lines.append("Fix the rows, or pass --on-bad-rows=skip to write them to a side file and go on.")
    return "\n".join(lines)


def _write_rejects(
    rejected: pl.DataFrame, columns: list[str], path: Path, line_offset: int
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    unit = "line" if line_offset == 2 else "row"
    out = rejected.select(
        (pl.col(_ROW) + line_offset).alias(unit),
        pl.col(_REASON).alias("reason"),
        *[pl.col(c).cast(pl.String) for c in columns if c != _ROW],
    )
    out.write_csv(path)


def _line_offset(source: str) -> int:
    """Report CSV rows as file lines (header is line 1), other sources as 1-based rows."""
    return 2 if not is_database_url(source) and ".csv" in Path(source).name.lower() else 1


def load_transactions(
    source: str | Path,
    *,
    as_of: date | None = None,
    column_map: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "fail",
    rejects_path: Path | None = None,
    query: str | None = None,
    allow_until: date | None = None,
) -> Loaded:
    """Read and validate transactions.

    Rows dated at or after ``allow_until`` (default: ``as_of``) are rejected as dated after the
    as-of date; pass a later ``allow_until`` when the rows after ``as_of`` are wanted (labels).
    Returns a frame ``_row, customer_id, order_id, ts, amount, product_id, quantity, channel``
    where ``order_id`` is filled with a per-row key when missing and ``quantity`` with 1.
    """
    name = str(source) if not is_database_url(str(source)) else _safe_url(str(source))
    raw = _apply_map(read_table(source, query), column_map or {}, name)
    _require(raw, TRANSACTION_REQUIRED, name)
    has = set(raw.columns)
    parsed: dict[str, pl.Expr] = {
        "customer_id": _text("customer_id"),
        "order_id": _order_id(raw),
        "ts": _datetime(raw, "ts"),
        "amount": _number(raw, "amount"),
        "product_id": _text("product_id") if "product_id" in has else pl.lit(None, pl.String),
        "quantity": _number(raw, "quantity").fill_null(1.0) if "quantity" in has else pl.lit(1.0),
        "channel": _text("channel") if "channel" in has else pl.lit(None, pl.String),
    }
    checks = [
        _Check("customer_id", "missing customer id", pl.col("__customer_id").fill_null("") == ""),
        _Check("ts", "unparseable date", pl.col("__ts").is_null()),
        _Check("amount", "not a number", pl.col("__amount").is_null()),
    ]
    if "quantity" in has:
        quantity_given = pl.col("quantity").is_not_null() & (_text("quantity") != "")
        checks.append(_Check("quantity", "not a number", quantity_given & _number(raw, "quantity").is_null()))
    cutoff = allow_until or as_of
    if cutoff is not None and cutoff != date.max:
        checks.append(
            _Check("ts", f"dated on or after the as-of date {cutoff}", pl.col("__ts") >= midnight(cutoff))
        )
    repeated = _repeated_rows(raw, [c for c in raw.columns if c != _ROW])
    checks.append(_Check(_ALL_COLUMNS, "duplicated line (same as an earlier one)",
                         pl.col(_ROW).is_in(repeated.implode())))
    loaded = _validate(
        raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
        rejects_path=rejects_path, line_offset=_line_offset(name),
    )
    if loaded.frame.height == 0:
        raise DataError(f"{name}: no valid rows left after rejecting bad rows")
    return loaded


def _order_id(raw: pl.DataFrame) -> pl.Expr:
    """The order id, or a per-row key where it is missing (one order per row)."""
    per_row = pl.lit("#row") + pl.col(_ROW).cast(pl.String)
    if "order_id" not in raw.columns:
        return per_row
    order_id = _text("order_id")
    complete = raw.select((order_id.is_null() | (order_id == "")).any()).item() is False
    # Building a fallback key for every row costs a string per row: only when one is missing.
    return order_id if complete else pl.coalesce(order_id.replace("", None), per_row)


def load_customers(
    source: str | Path,
    *,
    column_map: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "fail",
    rejects_path: Path | None = None,
    query: str | None = None,
) -> Loaded:
    """Read the optional customers table: ``customer_id``, ``signup_ts``, ``acquisition_channel``
    and any ``consent_<channel>`` flags (true/false/1/0/yes/no/да/нет; missing = no consent)."""
    name = str(source)
    raw = _apply_map(read_table(source, query or "SELECT * FROM customers"), column_map or {}, name)
    _require(raw, CUSTOMER_REQUIRED, name)
    consents = [c for c in raw.columns if c.startswith("consent_")]
    parsed: dict[str, pl.Expr] = {"customer_id": _text("customer_id")}
    checks = [_Check("customer_id", "missing customer id", pl.col("__customer_id").fill_null("") == "")]
    if "signup_ts" in raw.columns:
        parsed["signup_ts"] = _datetime(raw, "signup_ts")
        given = pl.col("signup_ts").is_not_null() & (_text("signup_ts") != "")
        checks.append(_Check("signup_ts", "unparseable date", given & pl.col("__signup_ts").is_null()))
    if "acquisition_channel" in raw.columns:
        parsed["acquisition_channel"] = _text("acquisition_channel")
    for consent in consents:
        parsed[consent] = _boolean(raw, consent)
        checks.append(_Check(consent, "not true/false", pl.col(f"__{consent}").is_null()))
    checks.append(
        _Check("customer_id", "duplicated customer id", pl.col("__customer_id").is_duplicated()
               & ~pl.col("__customer_id").is_first_distinct())
    )
    return _validate(
        raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
        rejects_path=rejects_path, line_offset=_line_offset(name),
    )


def load_contacts(
    source: str | Path,
    *,
    column_map: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "fail",
    rejects_path: Path | None = None,
    query: str | None = None,
) -> Loaded:
    """Read the optional contacts log: ``customer_id, ts, channel, campaign, cost, control``."""
    name = str(source)
    raw = _apply_map(read_table(source, query or "SELECT * FROM contacts"), column_map or {}, name)
    _require(raw, CONTACT_REQUIRED, name)
    has = set(raw.columns)
    parsed: dict[str, pl.Expr] = {
        "customer_id": _text("customer_id"),
        "ts": _datetime(raw, "ts"),
        "channel": _text("channel").str.to_lowercase(),
        "campaign": _text("campaign") if "campaign" in has else pl.lit(None, pl.String),
        "cost": _number(raw, "cost").fill_null(0.0) if "cost" in has else pl.lit(0.0),
        "control": _boolean(raw, "control") if "control" in has else pl.lit(False),
    }
    checks = [
        _Check("customer_id", "missing customer id", pl.col("__customer_id").fill_null("") == ""),
        _Check("ts", "unparseable date", pl.col("__ts").is_null()),
        _Check("channel", "missing channel", pl.col("__channel").fill_null("") == ""),
    ]
    if "control" in has:
        checks.append(_Check("control", "not true/false", pl.col("__control").is_null()))
    return _validate(
        raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
        rejects_path=rejects_path, line_offset=_line_offset(name),
    )


def _repeated_rows(raw: pl.DataFrame, columns: list[str]) -> pl.Series:
    """Row indexes of lines identical to an earlier line. Row hashes find the candidates in one
    cheap pass; only those are compared exactly (a hash collision is never a duplicate)."""
    candidates = raw.select(columns).hash_rows(seed=0).is_duplicated()
    if not candidates.any():
        return pl.Series(_ROW, [], dtype=raw.schema[_ROW])
    subset = raw.filter(candidates).select(_ROW, *columns)
    return subset.filter(~pl.struct(columns).is_first_distinct())[_ROW]
