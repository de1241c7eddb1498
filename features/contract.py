"""The data contract: transactions, customers and contacts in, clean typed frames out.

This is the only module of ``features/`` that does I/O. It reads CSV, an Excel workbook's
sheet, Parquet or a SQL query, renames columns by the shop's mapping, converts every column to
its contract type and rejects bad rows with a reason. With ``on_bad_rows="fail"`` (the default) any rejected row raises one
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
    price        number, optional: with no amount column, amount = price x quantity
    status       string, optional: the order's status as the export writes it; a cancelled
                 line is left out (counted), a returned line is a refund (amount and quantity
                 negative whatever sign the file wrote), anything else is a sale
                 (``CANCELLED_STATUSES``, ``RETURNED_STATUSES``: :func:`status_kind` says
                 which, :func:`status_lines` finds the lines, :func:`refunded` signs them;
                 :func:`apply_status` is the three on typed lines)

Real exports, as they come (see README "Data contract"): UTF-8 (with or without BOM), else
cp1251 detected and reported, never a lossy read; comma, semicolon, tab, pipe or whitespace
separated (CDNOW); ids a spreadsheet wrote as floats (``17850.0``) are ``17850``; duplicated
lines are reported, kept unless ``drop_duplicates``; lines on or after the as-of date (or after
the horizon when labels are wanted) are outside the window: counted, reported, not used and
never rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pyarrow as pa

from retain.features.orders import midnight

OnBadRows = Literal["fail", "skip"]

TRANSACTION_REQUIRED = ("customer_id", "ts", "amount")
TRANSACTION_OPTIONAL = ("order_id", "product_id", "quantity", "channel", "price", "status")
# The API refuses larger amounts too (serving.schemas imports it): 1e308 would be inf revenue.
MAX_ABS_AMOUNT = 1e12
# Encodings tried when a file is not UTF-8, with the letters that tell them apart.
_FALLBACK_ENCODINGS = ("cp1251",)
_SHOWN_DUPLICATES = 5
MISSING_CUSTOMER = "missing customer id"
GUEST_HINT = ("Lines without a customer id are guest orders: retain follows known customers "
              "only; --on-bad-rows=skip leaves them out.")
CUSTOMER_REQUIRED = ("customer_id",)
CONTACT_REQUIRED = ("customer_id", "ts", "channel")

# Russian day-first dates (1C), read the same by the batch and the API. Two-digit years first
# (01.03.24 from 1C): `%Y` would read `24` as the year 24 AD.
DOTTED_DATE_FORMATS = ("%d.%m.%y %H:%M:%S", "%d.%m.%y %H:%M", "%d.%m.%y",
                       "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")
# Formats seen in shop exports: ISO, Russian day-first, compact (CDNOW), with and without time.
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%MZ",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    *DOTTED_DATE_FORMATS,
    "%Y%m%d",
    "%Y/%m/%d",
)
# Slash dates: US month-first (UCI Online Retail: 12/1/2010 8:26) unless a first field > 12
# shows the file is day-first. Two-digit years (12/1/10 8:26, as Excel saves the same log) come
# first: `%Y` reads `10` as the year 10 AD, `%y` reads it as 2010 (00-69: 20xx, 70-99: 19xx)
# and never matches a four-digit year.
_MONTH_FIRST = ("%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%y",
                "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
_DAY_FIRST = ("%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%y",
              "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z")
# Excel in a Russian locale writes booleans as ИСТИНА / ЛОЖЬ (TRUE / FALSE), 1C as Да / Нет.
_TRUE = ("true", "1", "yes", "y", "t", "да", "истина")
_FALSE = ("false", "0", "no", "n", "f", "нет", "ложь", "")
# How CRMs and mailing services spell the channels, written without spaces, hyphens, dots or
# underscores (``E-mail``, ``Whats App``, ``СМС``): each is the rules' one name, so a log's
# ``E-mail`` is measured with ``email`` and matches ``consent_email``. A name not here stays as
# written, lower case (a channel the rules file adds).
_CHANNEL_ALIASES = {
    **{name: name for name in ("email", "sms", "push", "whatsapp", "telegram", "vk", "max")},
    "еmail": "email",  # a Cyrillic е, as typed on a Russian keyboard
    "почта": "email", "элпочта": "email", "электроннаяпочта": "email",
    "смс": "sms",
    "пуш": "push", "webpush": "push", "вебпуш": "push",
    "pushуведомление": "push", "pushуведомления": "push", "пушуведомления": "push",
    "вотсап": "whatsapp", "ватсап": "whatsapp", "вацап": "whatsapp",
    "телеграм": "telegram", "телеграмм": "telegram", "tg": "telegram",
    "вк": "vk", "вконтакте": "vk", "vkontakte": "vk",
    "макс": "max",
}
_CHANNEL_SEPARATORS = r"[\s\-_.]"
# Order statuses, written as ``status_key`` writes them (lower case, no spaces, ё as е), that
# are not a sale. Marketplaces and CRMs export every order with its status: Ozon's Статус
# (Доставлен, Отменён, Возврат), Wildberries' sales report (Продажа / Возврат, the return
# with a POSITIVE amount), Shopify and English CRMs (cancelled, refunded), 1C (Отменен).
# Any other value (Доставлен, Продажа, completed, blank) is a sale. --cancelled-status and
# --returned-status add values (ReadOptions), they never remove these.
CANCELLED_STATUSES = (
    "отменен", "отменена", "отменено", "отмена", "аннулирован", "аннулирована",
    "аннулировано", "аннулирование", "cancelled", "canceled", "cancel", "annulled", "voided",
    "void",
)
RETURNED_STATUSES = (
    "возврат", "возвращен", "возвращена", "возвращено", "return", "returned",
    "refunded", "refund",
)
StatusKind = Literal["sale", "cancelled", "returned"]
_SHOWN_ROWS = 5
_ROW = "_row"
_ALL_COLUMNS = "all columns"
_REASON = "_reason"
_PARSED_TS = "__ts_parsed"


class DataError(ValueError):
    """Input data breaks the contract; the message names the file, the column and the rows."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file when guessing is not enough.

    ``encoding``: None = UTF-8, else cp1251 detected (never a lossy read); ``date_format``:
    one strftime format for the ts column (default: the formats above); ``drop_duplicates``:
    drop lines identical to an earlier one (default: keep and report them).
    """

    encoding: str | None = None
    date_format: str | None = None
    drop_duplicates: bool = False
    # Status values beside CANCELLED_STATUSES / RETURNED_STATUSES (--cancelled-status,
    # --returned-status), as the file writes them: case, spaces and ё do not matter.
    cancelled_statuses: tuple[str, ...] = ()
    returned_statuses: tuple[str, ...] = ()


@dataclass
class ReadInfo:
    """What reading a file found out: the encoding and the separator."""

    encoding: str = "utf-8"
    separator: str | None = None
    # Lines above the header skipped: a report's title and parameters (1C, Excel).
    title_lines: int = 0
    title: str = ""
    # A workbook: the sheet read, the workbook's sheets, and the blank rows above the sheet's
    # first cell (the reader starts there; Excel numbers rows from 1).
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    sheet_named: bool = False  # FILE#SHEET chose it
    blank_rows_above: int = 0
    # The header's rows: 2 for a report's header drawn over two rows with merged cells.
    header_rows: int = 1
    # Rows that are no data, left out (CSV and workbooks): rows with no value (the first
    # ones' 0-based row indexes) and a report's totals rows (index, first filled cell).
    empty_rows: int = 0
    empty_rows_first: list[int] = field(default_factory=list)
    totals_count: int = 0
    totals_rows: list[tuple[int, str]] = field(default_factory=list)

    def notes(self, source: str) -> list[str]:
        out = []
        if len(self.sheets) > 1:
            others = [s for s in self.sheets if s != self.sheet]
            first = "first" if self.sheet == self.sheets[0] else "first visible"
            out.append(f"{source}: sheet {self.sheet!r} read, the workbook's {first} (also "
                       f"there: {', '.join(map(repr, others))}; {source}#{others[0]} reads "
                       "another)" if not self.sheet_named else
                       f"{source}: sheet {self.sheet!r} read")
        if self.title_lines:
            what = "rows" if self.sheet is not None else "lines"
            where = "the sheet" if self.sheet is not None else "the file"
            above = self.blank_rows_above + self.title_lines
            out.append(f"{source}: {above} {what[:-1]}(s) above the header skipped "
                       f"(a report's title: {self.title!r}); {what} are numbered as in {where}")
        if self.header_rows == 2:
            first = self.blank_rows_above + self.title_lines + 1
            out.append(f"{source}: sheet rows {first} and {first + 1} read as one header "
                       "(merged cells over two rows: the lower row's names, the upper where "
                       "there is none below)")
        unit = "sheet row" if self.sheet is not None else "line"
        offset = 2 if self.sheet is not None or self.separator is not None else 1
        if self.empty_rows:
            more = ", ..." if self.empty_rows > len(self.empty_rows_first) else ""
            out.append(f"{source}: {self.empty_rows:,} empty {unit}(s) skipped ({unit}s "
                       f"{', '.join(str(r + offset) for r in self.empty_rows_first)}{more})")
        if self.totals_count:
            shown = ", ".join(f"{unit} {r + offset}: {text[:30]!r}" for r, text in self.totals_rows)
            more = ", ..." if self.totals_count > len(self.totals_rows) else ""
            out.append(f"{source}: {self.totals_count:,} totals row(s) skipped ({shown}{more}): "
                       "a report's totals, not data (no customer, purchase or spend)")
        return out


@dataclass
class LoadReport:
    """What happened to the rows of one input."""

    source: str
    rows_read: int
    rows_kept: int
    rejected: dict[str, int] = field(default_factory=dict)
    rejects_path: Path | None = None
    encoding: str = "utf-8"
    separator: str | None = None
    amount_from_price: bool = False
    duplicates: int = 0
    duplicate_lines: list[int] = field(default_factory=list)
    duplicates_dropped: int = 0
    float_ids_rewritten: int = 0
    header_lines: int = 0
    # Rows left out as no data: empty rows, and a report's totals rows (Итого).
    empty_rows: int = 0
    totals_rows: int = 0
    as_of: date | None = None
    window_end: date | None = None
    after_as_of: int = 0
    after_as_of_first: date | None = None
    after_as_of_last: date | None = None
    # Lines whose status says cancelled (left out) or returned (read as refunds).
    cancelled_lines: int = 0
    returned_lines: int = 0
    # What the user should know about values read as a default (e.g. a blank cost as 0).
    read_notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def notes(self) -> list[str]:
        """One-line notices a command prints: what was read how, and what is not used."""
        out: list[str] = []
        if self.encoding not in ("utf-8", "utf-8-sig"):
            out.append(f"{self.source}: read as {self.encoding} (not UTF-8)")
        if self.separator == "whitespace":
            out.append(f"{self.source}: columns separated by whitespace")
        if self.amount_from_price:
            out.append("amount = price x quantity (no amount column)")
        if self.header_lines:
            out.append(f"{self.header_lines:,} repeated header line(s) skipped (a line whose "
                       "customer id is the column's own name, as concatenated exports have)")
        if self.float_ids_rewritten:
            out.append(f"{self.float_ids_rewritten:,} customer ids written as floats "
                       "(17850.0) read as integers (17850)")
        if self.duplicates:
            lines = ", ".join(map(str, self.duplicate_lines))
            more = ", ..." if self.duplicates > len(self.duplicate_lines) else ""
            what = ("dropped (--drop-duplicates)" if self.duplicates_dropped
                    else "kept: real logs repeat legitimate lines; --drop-duplicates drops them")
            out.append(f"{self.duplicates:,} duplicated lines (same as an earlier line: "
                       f"{lines}{more}) {what}")
        if self.after_as_of:
            boundary = self.window_end or self.as_of
            what = "the as-of date" if self.window_end in (None, self.as_of) else "the horizon end"
            out.append(f"{self.after_as_of:,} rows on or after {what} {boundary} are not used "
                       f"(dated {self.after_as_of_first} to {self.after_as_of_last}: outside "
                       "the window)")
        out += status_notes(self.cancelled_lines, self.returned_lines)
        return out + self.read_notes


def status_notes(cancelled: int, returned: int) -> list[str]:
    """What the status column changed, in counts only."""
    out = []
    if cancelled:
        out.append(f"{cancelled:,} cancelled lines (status column) left out: a cancelled order "
                   "is no purchase and no revenue (--cancelled-status adds values)")
    if returned:
        out.append(f"{returned:,} returned lines (status column) read as refunds: amount and "
                   "quantity negative whatever sign the file wrote (--returned-status adds "
                   "values)")
    return out


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


# ``--map customers.customer_id=client_code`` maps a side table's column; a name without one
# of these prefixes maps the transactions'.
SIDE_TABLES = ("customers", "contacts", "costs")


def table_map(column_map: Mapping[str, str] | None, table: str | None = None) -> dict[str, str]:
    """One table's part of a column map (contract column -> the file's): ``table=None`` the
    transactions' (names without a table prefix), else ``customers``, ``contacts`` or ``costs``
    (``{"customers.customer_id": "Код клиента"}`` -> ``{"customer_id": "Код клиента"}``)."""
    mapped: dict[str, str] = {}
    for target, source in (column_map or {}).items():
        prefix, dot, column = target.partition(".")
        if dot and prefix in SIDE_TABLES:
            if prefix == table:
                mapped[column] = source
        elif dot:
            # No contract column has a dot: "customer.customer_id" is a misspelt table.
            raise DataError(f"--map {target}={source}: no table {prefix!r}; a side table's "
                            f"columns are mapped as {', '.join(t + '.<column>' for t in SIDE_TABLES)}")
        elif table is None:
            mapped[target] = source
    return mapped


def is_database_url(source: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+]*://", str(source)))


def read_table(source: str | Path | _InMemory, query: str | None = None,
               options: ReadOptions | None = None, info: ReadInfo | None = None) -> pl.DataFrame:
    """Read a CSV (every column as text), a Parquet file, or a SQL query against a database URL.

    A row index ``_row`` (0-based position in the source) is added so errors can point at rows.
    ``info``, when given, receives the encoding and separator found.
    """
    if isinstance(source, _InMemory):  # validate_transactions: the rows are already here
        return source.rows()
    options = options or ReadOptions()
    info = info if info is not None else ReadInfo()
    name = str(source)
    if is_database_url(name):
        frame = _read_sql(name, query or "SELECT * FROM transactions")
    else:
        path, sheet = _workbook_sheet(name)
        if not path.exists():
            raise DataError(f"{name}: file not found")
        if path.stat().st_size == 0:
            raise DataError(f"{name}: the file is empty")
        suffixes = "".join(path.suffixes).lower()
        if suffixes.endswith((".parquet", ".pq")):
            frame = _read_parquet(path)
        elif suffixes.endswith((".csv", ".csv.gz", ".txt", ".tsv", ".txt.gz", ".tsv.gz")):
            frame = _read_csv(path, options, info)
        elif suffixes.endswith(_WORKBOOKS):
            frame = _read_workbook(path, sheet, info, name)
        else:
            raise DataError(f"{name}: unknown file type; use .csv, .xlsx, .parquet or a "
                            "database URL")
    if frame.height == 0:
        raise DataError(f"{name}: no rows (only a header or an empty result)")
    # Rows are numbered from the header's line, so errors name the file's own lines (a
    # sheet's rows as Excel shows them).
    frame = frame.with_row_index(_ROW, offset=info.blank_rows_above + info.title_lines
                                 + info.header_rows - 1)
    if not is_database_url(name) and not suffixes.endswith((".parquet", ".pq")):
        frame = _without_blank_and_totals_rows(frame, info)
        if frame.height == 0:
            raise DataError(f"{name}: no rows (only a header, empty rows and totals)")
    return frame


# A report's totals row (1C, Wildberries, Ozon, Excel's own "Total Row"): its first filled cell
# says so, alone or as "Итого по контрагенту:", "Итого: 2 клиента" or "Всего клиентов: 1500".
# Matched whole, so an id "Total Gym" is no totals row.
_TOTALS_WORDS = (r"(?i)^\s*(итого|всего|итог|итоги|total|totals|grand total|subtotal|sub-total)"
                 r"((\s+[^\s:]+){0,2}\s*:.*|\s+(по|за|for|of)(\s.*)?|\s*\.?)\s*$")


_MAYBE_BLANK_OR_TOTAL = r"(?i)^\s*(?:$|итог|всег|total|grand|sub)"


def _without_blank_and_totals_rows(frame: pl.DataFrame, info: ReadInfo) -> pl.DataFrame:
    """Leave out the rows that are not data: a row with no value in any cell (an empty line,
    or the blank rows a report puts between groups and above its totals) and a totals row
    (``Итого`` with the sum of the amounts: never a customer, a purchase or a bad row). Both
    are counted in ``info`` for a note; the rows left keep their numbers. Only rows whose
    first column is empty or a totals word are looked at further (a real log's rows are not)."""
    columns = [c for c in frame.columns if c != _ROW and frame.schema[c] == pl.String]
    if not columns or len(columns) < frame.width - 1:
        return frame
    first = pl.col(columns[0])
    # One anchored pattern, failing at a real id's first letters (~35 ms per 2M rows; a strip
    # and the whole rule cost twice that); the whole rule then reads the few candidates.
    candidates = frame.filter(first.is_null() | first.str.contains(_MAYBE_BLANK_OR_TOTAL))
    if candidates.height == 0:
        return frame
    cell = pl.coalesce([pl.when(pl.col(c).str.strip_chars() != "")
                        .then(pl.col(c).str.strip_chars()) for c in columns]).alias("cell")
    found = candidates.select(_ROW, cell)
    empty = found.filter(pl.col("cell").is_null())
    totals = found.filter(pl.col("cell").str.contains(_TOTALS_WORDS))
    if empty.height == 0 and totals.height == 0:
        return frame
    info.empty_rows = empty.height
    info.empty_rows_first = empty[_ROW].head(5).to_list()
    # Shown by its word only: the rest of the cell may name someone ("Итого по клиенту
    # Иванов И.И."), and notes name no customer.
    word = pl.col("cell").str.extract(_TOTALS_WORDS, 1)
    info.totals_rows = list(totals.head(5).select(
        _ROW, pl.when(word.str.len_chars() < pl.col("cell").str.len_chars())
        .then(word + " …").otherwise(word)).iter_rows())
    info.totals_count = totals.height
    drop = pl.concat([empty[_ROW], totals[_ROW]])
    return frame.filter(~pl.col(_ROW).is_in(drop.implode()))


_WORKBOOKS = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")


def _workbook_sheet(name: str) -> tuple[Path, str | None]:
    """``report.xlsx#Возвраты`` -> (report.xlsx, "Возвраты"): one sheet of a workbook named
    the same way for every input (transactions, customers, contacts, costs); a plain path has
    no sheet (the first is read). A file whose own name holds ``#`` is that file."""
    path = Path(name)
    base, hash_, sheet = name.rpartition("#")
    if hash_ and not path.exists() and base.lower().endswith(_WORKBOOKS) and Path(base).exists():
        return Path(base), sheet
    return path, None


def _is_workbook(source: str) -> bool:
    return _workbook_sheet(source)[0].name.lower().endswith(_WORKBOOKS)


def _read_workbook(path: Path, sheet: str | None, info: ReadInfo, name: str) -> pl.DataFrame:
    """One sheet of an Excel (.xlsx, .xlsm, .xlsb, .xls) or OpenDocument workbook, every cell
    as text, as the CSV path reads: the contract's own parsers then read dates, numbers and
    ids the same from either. A date cell is its ISO text (``2026-03-01 10:00:00``), never
    Excel's serial number; a number cell its shortest exact text (17850, 1234.5). Read by
    calamine (Rust, through fastexcel), straight to Arrow. Title rows above the header are
    skipped by the CSV path's rule, and rows keep the numbers Excel shows."""
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        sheets = list(reader.sheet_names)
        if sheet is not None and sheet not in sheets:
            raise DataError(f"{name}: no sheet {sheet!r} (sheets: {', '.join(map(repr, sheets))})")
        chosen = sheet if sheet is not None else _first_visible_sheet(path, reader, sheets)
        cells = reader.load_sheet(chosen, header_row=None, dtypes="string").to_polars()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - calamine's errors for a broken file are many kinds
        raise DataError(f"{name}: {_unreadable_workbook(path, exc)}") from None
    info.sheet, info.sheets, info.encoding = chosen, sheets, "utf-8"
    info.sheet_named = sheet is not None
    # Columns with no cell at all (a 1C report's margins) are not columns of the table.
    cells = cells.select(c for c in cells.columns if cells[c].null_count() < cells.height)
    if cells.height == 0 or cells.width == 0:
        raise DataError(f"{name}: sheet {chosen!r} is empty")
    head = [["" if v is None else str(v) for v in row]
            for row in cells.head(_MOST_TITLE_LINES + 6).iter_rows()]
    at = _header_row(head, _MOST_TITLE_LINES)
    two_rows = _two_row_header(head) if at is None else None
    if two_rows is not None:
        at, names = two_rows
        info.header_rows = 2
    else:
        at = at or 0
        names = [v.strip() for v in head[at]]
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        info.blank_rows_above = _blank_rows_above(path, chosen)
    if at:
        info.title_lines = at
        info.title = next((v.strip() for row in head[:at] for v in row if v.strip()), "")[:60]
    repeated = sorted({c for c in names if c and names.count(c) > 1})
    if repeated:
        raise DataError(f"{name}: column name(s) {', '.join(map(repr, repeated))} appear more "
                        f"than once in the header (sheet row {info.blank_rows_above + at + 1}); "
                        "rename one of them")
    # An unnamed column is named by its letter, as Excel shows it.
    names = [n or f"column {_column_letter(i)}" for i, n in enumerate(names)]
    body = cells.slice(at + info.header_rows).rename(dict(zip(cells.columns, names, strict=True)))
    # Blank rows below the table (a sheet's formatting reaches further than its data) are no
    # rows; a blank row inside the table stays, as a CSV's empty line, so that rows keep their
    # numbers.
    filled = body.select(pl.any_horizontal(pl.all().is_not_null()).alias("f"))["f"]
    last = filled.arg_true().max() if filled.any() else -1
    return body.head(int(last) + 1)  # type: ignore[arg-type]


_NOT_A_NAME = re.compile(r"[\d\s.,:;/+\-]*")  # numbers, dates and times: a data row's cells


def _two_row_header(head: list[list[str]]) -> tuple[int, list[str]] | None:
    """A header over two rows, as 1C and Excel reports draw it with merged cells: ``Продажа``
    over ``Сумма`` and ``Кол-во``, ``Код покупателя`` merged down over both rows (its second
    row's cell empty). Returns the first row's index and one name per column: the lower name,
    or the upper one where there is none below; a lower name used twice (``Сумма`` under both
    ``Продажа`` and ``Возврат``) gets its group's name first (``Продажа Сумма``). None when no
    two rows read so: every column named by one of them, the lower row partly empty and only
    words in it (a data row holds numbers or dates), the rows above them titles."""
    for at in range(min(_MOST_TITLE_LINES, len(head) - 2) + 1):
        upper = [v.strip() for v in head[at]]
        lower = [v.strip() for v in head[at + 1]]
        if (not all(u or w for u, w in zip(upper, lower, strict=True)) or all(lower)
                or not any(lower) or not any(upper)
                or any(_NOT_A_NAME.fullmatch(w) for w in lower if w)
                or any(sum(bool(v.strip()) for v in row) > len(upper) // 2 for row in head[:at])):
            continue
        group, groups = "", []
        for u in upper:
            group = u or group
            groups.append(group)
        names = [w or u for u, w in zip(upper, lower, strict=True)]
        names = [f"{g} {n}" if lower[i] and names.count(n) > 1 else n
                 for i, (g, n) in enumerate(zip(groups, names, strict=True))]
        return at, names
    return None


def _first_visible_sheet(path: Path, reader: Any, sheets: list[str]) -> str:
    """The sheet Excel shows first: the first one not hidden (a report's service sheet, or a
    lookup list, is often the first and hidden). An .xlsx says which are hidden in its
    workbook part, read here without loading a sheet; other formats ask the reader."""
    if len(sheets) == 1:
        return sheets[0]
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import zipfile
        from xml.etree import ElementTree

        try:
            with zipfile.ZipFile(path) as archive:
                book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            hidden = {el.get("name") for el in book.iter()
                      if el.tag.rpartition("}")[2] == "sheet"
                      and el.get("state") in ("hidden", "veryHidden")}
            return next((name for name in sheets if name not in hidden), sheets[0])
        except (KeyError, ValueError, ElementTree.ParseError, zipfile.BadZipFile):
            return sheets[0]
    for name in sheets:
        if reader.load_sheet(name, n_rows=0, header_row=None).visible == "visible":
            return name
    return sheets[0]


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _unreadable_workbook(path: Path, exc: Exception) -> str:
    """Why a workbook cannot be read, in one line: a password (Excel encrypts the whole file
    into an OLE container holding an ``EncryptedPackage``: an .xlsx that is not a ZIP), not a
    workbook at all, or damaged."""
    data = path.read_bytes()
    first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    ole = data.startswith(b"\xd0\xcf\x11\xe0")
    if ((ole and path.suffix.lower() in (".xlsx", ".xlsm", ".xlsb"))
            or "EncryptedPackage".encode("utf-16-le") in data
            or "password" in str(exc).lower() or "encrypt" in str(exc).lower()):
        return ("the workbook is password-protected: open it in Excel, remove the password "
                "(File > Info > Protect Workbook) and save it again")
    if not data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return f"not a workbook (no Excel or OpenDocument content: {first})"
    return f"cannot be read as a workbook (truncated or damaged: {first})"


def _blank_rows_above(path: Path, sheet: str) -> int:
    """Rows above a .xlsx sheet's first cell with a value: the reader starts the sheet there,
    Excel numbers rows from 1 (a 1C report often leaves row 1 blank). Read from the sheet's
    XML up to that cell only; 0 when the parts are not where the format puts them."""
    import zipfile
    from xml.etree import ElementTree

    def local(tag: str) -> str:
        return tag.rpartition("}")[2]

    try:
        with zipfile.ZipFile(path) as archive:
            book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rid = next(v for el in book.iter() if local(el.tag) == "sheet"
                       and el.get("name") == sheet
                       for k, v in el.attrib.items() if local(k) == "id")
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
            target = next(el.get("Target", "") for el in rels if el.get("Id") == rid)
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            row = 0
            with archive.open(part) as xml:
                for event, el in ElementTree.iterparse(xml, events=("start", "end")):
                    if event == "start" and local(el.tag) == "row":
                        row = int(el.get("r") or row + 1)
                    elif event == "end" and local(el.tag) == "c":
                        if any(local(child.tag) in ("v", "is") for child in el):
                            return row - 1
                    elif event == "end" and local(el.tag) == "row":
                        el.clear()
    except (KeyError, StopIteration, ValueError, ElementTree.ParseError, zipfile.BadZipFile):
        return 0
    return 0


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds for a broken file; all mean the same
        with path.open("rb") as handle:
            magic = handle.read(4)
        why = "not a Parquet file" if magic != b"PAR1" else "truncated or damaged"
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"{path}: cannot be read as Parquet ({why}: {first})") from None


def _written_in_cyrillic(text: str) -> bool:
    """True when the words holding non-ASCII letters are Cyrillic words: no word mixes Latin
    and Cyrillic letters (``café`` read as cp1251 is ``cafй``) and most such letters are
    Cyrillic. A Russian-locale export (1C, Excel) passes; a Latin-1 file does not."""
    words = re.findall(r"\w*[^\x00-\x7f]\w*", text)
    mixed = sum(1 for w in words if re.search(r"[A-Za-z]", w) and re.search(r"[\u0400-\u04ff]", w))
    # Only words of two letters or more are evidence: a lone Cyrillic letter beside digits is
    # what a Latin-1 currency sign becomes (UCI Online Retail's ``Gift Voucher £40.00`` read as
    # cp1251 is ``Ј40.00``), and a file whose only non-ASCII is such signs is not Russian.
    words = [w for w in words if len(re.sub(r"[\d_]", "", w)) >= 2]
    if not words:
        return False
    letters = "".join(words)
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in letters)
    non_ascii = sum(ord(c) > 127 for c in letters)
    return mixed <= len(words) // 100 and cyrillic >= 0.8 * non_ascii


def decode_text(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """``(text, encoding)``: strict UTF-8 (a BOM is fine), else ``encoding`` when given, else
    the one fallback encoding whose letters the text is written in (cp1251: Cyrillic), else
    one error. Never lossy."""
    if encoding is not None:
        import codecs

        try:
            named = codecs.lookup(encoding).name
        except LookupError:
            raise DataError(f"{source}: unknown encoding {encoding!r} (--encoding)") from None
        if named not in ("utf-8", "utf-8-sig"):
            # --encoding is the encoding of a file that is not UTF-8: a UTF-8 file (another
            # table of the same command, a re-saved export) read as latin-1 or cp1251 would be
            # silent mojibake, never an error.
            try:
                return data.decode("utf-8-sig"), "utf-8"
            except UnicodeDecodeError:
                pass
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise DataError(f"{source}: not valid {encoding} at byte {exc.start}; check "
                            "--encoding") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    for candidate in _FALLBACK_ENCODINGS:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        if _written_in_cyrillic(text):
            return text, candidate
    raise DataError(
        f"{source}: not UTF-8 (first bad byte at {utf8_error.start}) and not recognisably "
        "cp1251; pass the file's encoding, e.g. --encoding cp1251 (Russian) or --encoding "
        "latin-1 (Western European), or save it as UTF-8"
    )


def _separator(head: str) -> str | None:
    """The separator the header line uses; None when it has none (whitespace-separated)."""
    counts = {sep: head.count(sep) for sep in (",", ";", "\t", "|")}
    separator = max(counts, key=counts.__getitem__)
    return separator if counts[separator] else None


def _read_utf8_csv(path: Path, options: ReadOptions, info: ReadInfo) -> pl.DataFrame | None:
    """A plain UTF-8 CSV read by polars straight from the file (memory-mapped, in parallel),
    or None when the file needs the careful path below (another encoding, whitespace
    separation, old Mac line ends, a broken header or body: that path names the problem).
    Decoding a file to Python text and back costs ~15 s and 6x its size on 20M lines."""
    if options.encoding is not None and options.encoding.lower().replace("_", "-") not in (
            "utf-8", "utf8", "utf-8-sig"):
        return None
    if path.suffix.lower() == ".gz":
        return None
    import mmap

    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data[:65536]
        end = start.find(b"\n")
        if start.startswith(b"PAR1") or b"\x00" in start or end < 0:
            return None
        try:
            head = start[:end].decode("utf-8-sig").rstrip("\r")
        except UnicodeDecodeError:
            return None
        separator = _separator(head)
        names = [c.strip().strip('"') for c in head.split(separator)] if separator else []
        # polars ends lines at \n and drops a \r before it; a \r alone ends a line only for
        # the careful path. Any line after the header must hold something.
        if (separator is None or len(set(names)) < len(names)
                or (b"\r" in start and re.search(rb"\r(?!\n)", data))
                or not re.compile(rb"\S").search(data, end + 1)):
            return None
    try:
        frame = pl.read_csv(path, separator=separator, infer_schema=False,
                            truncate_ragged_lines=False)
    except Exception:  # noqa: BLE001 - invalid UTF-8, ragged lines, ...: the careful path explains
        return None
    info.encoding, info.separator = "utf-8", {"\t": "tab"}.get(separator, separator)
    return frame.rename({c: c.strip().lstrip("\ufeff") for c in frame.columns})


_MOST_TITLE_LINES = 20


def _title_lines(text: str, most: int = _MOST_TITLE_LINES) -> int:
    """How many lines above the header a report saved as CSV has (its title, period and
    organisation: ``Отчет о продажах за период ...;;``), 0 when the first line is the header.
    The header is the first line whose fields are all named and which the next lines match
    field for field; the lines above it must name at most half as many fields."""
    # The head only: splitting the whole text would copy it (gigabytes on a big export).
    head = text[:1 << 16]
    lines = head.split("\n")[: -1 if len(text) > len(head) else None][: most + 6]
    for sep in (";", ",", "\t", "|"):
        at = _header_row([line.split(sep) for line in lines], most)
        if at is not None:
            return at
    return 0


def _header_row(rows: list[list[str]], most: int = _MOST_TITLE_LINES) -> int | None:
    """:func:`_title_lines` on rows already split into fields (one separator's split of a
    CSV's lines, or a sheet's cells): the header's index, or None when no row is a header."""
    counts = [len(row) - 1 for row in rows]
    for at in range(1, min(most, len(rows) - 1) + 1):
        names = [f.strip().strip('"') for f in rows[at]]
        # A line that is more than blank: fields, even empty ones (";;"), or any text.
        after = [c for row, c in zip(rows[at + 1:at + 6], counts[at + 1:at + 6], strict=True)
                 if len(row) > 1 or row[0].strip()]
        if (counts[at] and all(names) and after and all(c == counts[at] for c in after)
                # A title names one or two fields; a header with an unnamed first
                # column (pandas' index: ",customer_id,ts") names all the others.
                and all(sum(bool(f.strip()) for f in row) <= len(names) // 2
                        for row in rows[:at])):
            return at
    if rows and counts[0] and all(f.strip() for f in rows[0]):
        return 0  # the first line is a header of this separator
    return None


def _read_csv(path: Path, options: ReadOptions, info: ReadInfo) -> pl.DataFrame:
    fast = _read_utf8_csv(path, options, info)
    if fast is not None:
        return fast
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    if data.startswith(b"PAR1"):
        raise DataError(f"{path}: this is a Parquet file; name it .parquet")
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):  # .xlsx (a ZIP), .xls (OLE)
        raise DataError(f"{path}: an Excel workbook saved under a CSV name: name it .xlsx "
                        "(or .xls) and pass that")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and options.encoding is None:
        # Excel's "Unicode text" (Текст Юникод): UTF-16 with its byte order mark, tabs.
        try:
            text, info.encoding = data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: begins as UTF-16 but is not valid UTF-16 at byte "
                            f"{exc.start}; check --encoding") from None
    elif b"\x00" in data[:65536]:
        raise DataError(f"{path}: a binary file, not text CSV (NUL bytes)")
    else:
        text, info.encoding = decode_text(data, str(path), options.encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = _title_lines(text)
    if title:
        lines = text.split("\n", title)
        info.title_lines, info.title = title, lines[0].strip().strip(";,\t|").strip()[:60]
        text = lines[-1]
    lines = text.split("\n", 2)
    head = lines[0].lstrip("\ufeff")
    if not head.strip():
        raise DataError(f"{path}: the file is empty (no header line)")
    counts = {sep: head.count(sep) for sep in (",", ";", "\t", "|")}
    separator = max(counts, key=counts.__getitem__)
    if counts[separator] == 0 and len(head.split()) > 1:
        # Whitespace-separated (CDNOW_master.txt: padded columns): one tab between fields.
        text = re.sub(r"(?m)^[ \t]+|[ \t]+$", "", text)
        text = re.sub(r"[ \t]+", "\t", text)
        separator, info.separator = "\t", "whitespace"
        head = text.split("\n", 1)[0]
    else:
        info.separator = {"\t": "tab"}.get(separator, separator)
    names = [c.strip().strip('"').lstrip("\ufeff") for c in head.split(separator)]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more "
                        "than once in the header; rename one of them")
    if len(text.split("\n", 1)) < 2 or not text.split("\n", 1)[1].strip():
        raise DataError(f"{path}: no rows (only a header line)")
    try:
        frame = pl.read_csv(
            text.encode("utf-8"),
            separator=separator,
            infer_schema=False,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.NoDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except pl.exceptions.ComputeError as exc:
        first = str(exc).splitlines()[0]
        hint = ""
        if "field" in first.lower():
            # The first line with more separators than the header (quotes aside: a hint).
            extra = next((number for number, line in enumerate(text.split("\n"), start=1)
                          if line.count(separator) > len(names) - 1), None)
            where = f" first at line {extra}" if extra else ""
            hint = (f"; rows have more fields than the header's {len(names)}{where} "
                    f"(separator {separator!r})")
        raise DataError(f"{path}: cannot be read as CSV ({first}){hint}") from None
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


def _headerless(names: Sequence[str]) -> bool:
    """True when the "header" is a data line: no name holds a letter (CDNOW_sample.txt starts
    ``00004 0001 19970101 2 29.33``). Names 0, 1, 2, ... (pandas' for unnamed columns) are a
    header that a --map can address."""
    if len(names) < 2 or any(ch.isalpha() for name in names for ch in name):
        return False
    numbers = sorted(int(n) for n in names if n.isdigit() and len(n) < 4)
    return not (len(numbers) == len(names) and numbers[0] in (0, 1)
                and numbers == list(range(numbers[0], numbers[0] + len(numbers))))


def _apply_map(frame: pl.DataFrame, column_map: Mapping[str, str], source: str) -> pl.DataFrame:
    # Before the map: mapping names to a data line's values would read on, and drop that
    # customer's other lines as repeated headers. The values are the shop's data: not shown.
    if _headerless([c for c in frame.columns if c != _ROW]):
        raise DataError(
            f"{source}: the first line looks like data, not a header (no column name has a "
            "letter); add a header line naming the columns (customer_id, ts, amount, ...; "
            "--map maps other names)"
        )
    missing = [src for src in column_map.values() if src not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: mapped column(s) {', '.join(map(repr, missing))} not found "
            f"(columns: {', '.join(c for c in frame.columns if c != _ROW)})"
        )
    renames = {src: target for target, src in column_map.items() if src != target}
    clashing = [t for t in renames.values() if t in frame.columns and t not in renames]
    return frame.drop(clashing).rename(renames)


def _require(frame: pl.DataFrame, required: Sequence[str], source: str,
             table: str | None = None) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(c for c in frame.columns if c != _ROW)
        prefix = f"{table}." if table else ""
        hint = " ".join(f"--map {prefix}{c}=YOUR_COLUMN" for c in missing)
        if len(frame.columns) - (_ROW in frame.columns) == 1:
            raise DataError(
                f"{source}: one column only ({found!r}): the separator was not recognised; "
                "use comma, semicolon, tab, pipe or whitespace between columns"
            )
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (found: {found}). "
            f"If they have other names, map them: {hint}"
        )
    # Only the columns retain reads: a nested column it ignores is no reason to refuse a file.
    read = {*required, *TRANSACTION_OPTIONAL}
    nested = [c for c in frame.columns if c in read
              and isinstance(frame.schema[c], (pl.List, pl.Array, pl.Struct, pl.Object))]
    if nested:
        raise DataError(
            f"{source}: column(s) {', '.join(map(repr, nested))} hold lists or records, not "
            "single values: flatten them (one value per row) before passing the file"
        )


def _blank(column: str) -> pl.Expr:
    """Missing or empty text (``fill_null("") == ""`` would copy every string)."""
    return pl.col(column).is_null() | (pl.col(column) == "")


def _text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars()


def _datetime_formats(frame: pl.DataFrame, column: str) -> list[str]:
    """The naive formats to try; slash dates month first unless a first field > 12."""
    formats = list(_DATETIME_FORMATS)
    if frame.select(pl.col(column).cast(pl.String).str.contains("/").any()).item():
        first = frame.select(pl.col(column).cast(pl.String).str.strip_chars()
                             .str.extract(r"^(\d{1,2})/\d{1,2}/\d{2}").cast(pl.Int32, strict=False)
                             .max()).item()
        slash = _DAY_FIRST if first is not None and first > 12 else _MONTH_FIRST
        # Before YYYY/MM/DD, which would read 12/1/10 as the year 12 AD.
        at = formats.index("%Y/%m/%d")
        formats[at:at] = slash
    return formats


def _datetime(frame: pl.DataFrame, column: str, date_format: str | None = None) -> pl.Expr:
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
    if date_format:
        return text.str.strptime(pl.Datetime("us"), date_format, strict=False)
    formats = _datetime_formats(frame, column)
    naive = [text.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats]
    aware = [
        text.str.strptime(pl.Datetime("us", "UTC"), f, strict=False)
        .dt.replace_time_zone(None)
        for f in _AWARE_FORMATS
    ]
    return pl.coalesce(*aware, *naive)


def parse_datetimes(frame: pl.DataFrame, column: str, date_format: str | None = None) -> pl.Series:
    """``_datetime`` on a whole column, fast: the formats that read a sample of the values are
    tried first, on the text as it is (stripping every value costs ~0.7 s per 20M), then on
    the stripped text, and every format only when some value is still unread (a mixed file).
    Trying every format on every value costs ~9 s per million rows."""
    if date_format or frame.schema[column] != pl.String:
        return frame.select(_datetime(frame, column, date_format)).to_series()
    sample = frame.select(pl.col(column).drop_nulls().head(2000))
    formats = [f for f in _datetime_formats(frame, column)
               if sample.select(pl.col(column).str.strip_chars()
                                .str.strptime(pl.Datetime("us"), f, strict=False)
                                .is_not_null().any()).item()]
    aware = [f for f in _AWARE_FORMATS
             if sample.select(pl.col(column).str.strip_chars()
                              .str.strptime(pl.Datetime("us", "UTC"), f, strict=False)
                              .is_not_null().any()).item()]
    if not formats and not aware:
        return frame.select(_datetime(frame, column)).to_series()

    def quick(text: pl.Expr) -> pl.Expr:
        return pl.coalesce(
            *[text.str.strptime(pl.Datetime("us", "UTC"), f, strict=False)
              .dt.replace_time_zone(None) for f in aware],
            *[text.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats],
        )

    given = frame[column].is_not_null()
    # A format matches a whole value: text read as it is reads the same once stripped.
    values = frame.select(quick(pl.col(column)).alias(column)).to_series()
    if (values.is_null() & given).any():
        values = frame.select(quick(pl.col(column).str.strip_chars()).alias(column)).to_series()
        unread = values.is_null() & given
        # Blank values stay null (the checks name them); anything else tries every format.
        if unread.any() and frame.filter(unread)[column].str.strip_chars().ne("").any():
            return frame.select(_datetime(frame, column)).to_series()
    return values


_FLOAT_ID = r"^(-?\d+)\.0+$"


def normalize_customer_id(value: object) -> str:
    """A customer id as text: surrounding spaces stripped, and a float a spreadsheet wrote
    (``17850.0``) read as the integer it is (``17850``). Same rule as ``customer_id_expr``."""
    text = str(value).strip()
    match = re.match(_FLOAT_ID, text)
    return match.group(1) if match else text


def customer_id_expr(column: str = "customer_id") -> pl.Expr:
    """``normalize_customer_id`` as a polars expression (batch loading, side tables)."""
    return _text(column).str.replace(_FLOAT_ID, "${1}")


# A currency sign or name before or after the number (spaces are gone by then): rubles,
# tenge, som, sum, dollars, euros, and their ISO codes.
_CURRENCY = ("(?i)^(?:₽|\\$|€|₸|руб\\.?|р\\.|тг\\.?|сом|сум|сўм|rub|kzt|kgs|uzs|usd|eur)"
             "|(?:₽|\\$|€|₸|руб\\.?|р\\.|тг\\.?|сом|сум|сўм|rub|kzt|kgs|uzs|usd|eur)$")


def _number(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Numbers, or text like '1 234,50' / '1234.5' -> Float64; anything else -> null."""
    plain = pl.col(column).cast(pl.String).cast(pl.Float64, strict=False)
    if frame.schema[column].is_numeric():
        value = pl.col(column).cast(pl.Float64)
    elif not frame.select((plain.is_null() & pl.col(column).is_not_null()).any()).item():
        # Every value reads as a plain number: the clean-up below (two regular expressions,
        # ~3 s per 20M lines) would change none of them.
        value = plain
    else:
        text = pl.col(column).cast(pl.String).str.replace_all(r"[\s\u00a0\u202f']", "")
        # As Excel writes a currency cell to CSV: "1 200,50 ₽", "800 руб.", "−150,00" (a
        # Unicode minus), "(150,00)" (an accounting negative).
        text = (text.str.replace(_CURRENCY, "").str.replace("^\u2212", "-")
                .str.replace(r"^\((\d[\d.,]*)\)$", "-${1}"))
        text = pl.when(text.str.contains(r"^-?\d+,\d+$")).then(text.str.replace(",", ".")).otherwise(text)
        value = text.cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def channel_name(text: str) -> str:
    """A contact channel's one name: ``" E-mail "`` -> ``email``, ``СМС`` -> ``sms``; a name
    retain does not know stays as written, in lower case."""
    lower = text.strip().lower()
    return _CHANNEL_ALIASES.get(re.sub(_CHANNEL_SEPARATORS, "", lower), lower)


def status_key(text: str) -> str:
    """A status as the lists hold it: ``" Отменён "`` -> ``отменен`` (lower case, no
    whitespace, ё as е)."""
    return re.sub(r"\s+", "", text).lower().replace("ё", "е")


def status_kind(text: str | None, options: ReadOptions | None = None) -> StatusKind:
    """THE status rule (the batch and the API both apply it through :func:`apply_status`):
    ``cancelled``, ``returned`` or ``sale``. The user's values (``options``) come before the
    defaults, so a shop may call a default's spelling the other kind."""
    if text is None:
        return "sale"
    key = status_key(text)
    options = options or ReadOptions()
    if key in {status_key(v) for v in options.cancelled_statuses}:
        return "cancelled"
    if key in {status_key(v) for v in options.returned_statuses}:
        return "returned"
    if key in CANCELLED_STATUSES:
        return "cancelled"
    return "returned" if key in RETURNED_STATUSES else "sale"


def status_lines(frame: pl.DataFrame, options: ReadOptions | None = None,
                 status: str = "status") -> tuple[pl.Series | None, pl.Series | None]:
    """``(cancelled, returned)``: which lines :func:`status_kind` calls so, each None when no
    line is. The rule is worked out once per distinct spelling; each mask once (~50 ms per
    2M lines), and only for a kind the file holds."""
    spellings = frame.get_column(status).cast(pl.String).drop_nulls().unique().to_list()
    kinds = {text: status_kind(text, options) for text in spellings}

    def lines_of(kind: str) -> pl.Series | None:
        values = [text for text, k in kinds.items() if k == kind]
        if not values:
            return None
        mask = frame.select(pl.col(status).cast(pl.String).is_in(values).fill_null(False))
        return mask.to_series() if mask.to_series().any() else None

    return lines_of("cancelled"), lines_of("returned")


def refunded(value: pl.Expr, returned: pl.Series) -> pl.Expr:
    """``value`` (an amount or a quantity) negative on the ``returned`` lines whatever sign it
    had (a Wildberries return is positive in the file): from then on a returned line is a
    negative line, which ``features.orders`` nets within its order as any refund. A null
    stays null (the contract's checks name it)."""
    return pl.when(pl.lit(returned)).then(-value.abs()).otherwise(value)


def apply_status(frame: pl.DataFrame, options: ReadOptions | None = None, *,
                 status: str = "status", amount: str = "amount",
                 quantity: str = "quantity") -> tuple[pl.DataFrame, int, int]:
    """``(frame, cancelled, returned)``: the status rule on contract-typed lines (the API's,
    the MLflow model's input), as ``load_transactions`` applies it to a file's: ``frame``
    without its cancelled lines (a cancelled order never happened) and with its returned
    lines' ``amount`` and ``quantity`` :func:`refunded`; the counts are of lines."""
    cancelled, returned = status_lines(frame, options, status)
    if returned is not None:
        frame = frame.with_columns(refunded(pl.col(c), returned).alias(c)
                                   for c in (amount, quantity))
    if cancelled is not None:
        frame = frame.filter(~cancelled)
    return (frame, 0 if cancelled is None else int(cancelled.sum()),
            0 if returned is None else int(returned.sum()))


def _channel_names(raw: pl.DataFrame, column: str = "channel") -> pl.Expr:
    """``channel_name`` of each line's channel, worked out once per distinct spelling."""
    spellings = raw.get_column(column).cast(pl.String).drop_nulls().unique().to_list()
    return _text(column).replace({text.strip(): channel_name(text) for text in spellings})


def _consent_columns(raw: pl.DataFrame, source: str) -> pl.DataFrame:
    """``Consent_E-mail`` -> ``consent_email``: consent columns by their channel's one name."""
    renames = {c: "consent_" + channel_name(c[len("consent_"):]) for c in raw.columns
               if c.lower().startswith("consent_")}
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return raw
    names = [renames.get(c, c) for c in raw.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        same = [c for c in raw.columns if renames.get(c, c) in twice]
        raise DataError(f"{source}: columns {', '.join(map(repr, same))} are consents to the "
                        f"same channel ({', '.join(twice)}); keep one of them")
    return raw.rename(renames)


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
    # One boolean pass finds the bad rows; the reasons (a string per row) are worked out for
    # those rows only: on a clean file of 20M lines that is nothing instead of ~1.5 s.
    # Each check is evaluated on the whole frame (a duplicate is a duplicate of any row).
    flags = [f"__bad{i}" for i in range(len(checks))]
    work = work.with_columns(c.bad.fill_null(False).alias(f) for c, f in zip(checks, flags, strict=True))
    bad = work.select(pl.any_horizontal(flags)).to_series()
    rejected = work.filter(bad) if bad.any() else work.clear()
    reason = pl.lit(None, dtype=pl.String)
    for check, flag in zip(reversed(checks), reversed(flags), strict=True):
        # The first failing check gives the reason.
        reason = pl.when(pl.col(flag)).then(pl.lit(f"{check.column}: {check.reason}")).otherwise(reason)
    rejected = rejected.with_columns(reason.alias(_REASON)).drop(flags)
    report = LoadReport(source=source, rows_read=raw.height, rows_kept=raw.height - rejected.height)
    if rejected.height:
        counts = rejected.group_by(_REASON, maintain_order=True).len()
        report.rejected = dict(zip(counts[_REASON].to_list(), counts["len"].to_list(), strict=True))
        if on_bad_rows == "fail":
            raise DataError(_describe(rejected, source, line_offset))
        if rejects_path is not None:
            parsed_columns = {f"__{k}" for k in parsed}
            _write_rejects(rejected, [c for c in raw.columns if c not in parsed_columns],
                           rejects_path, line_offset, _row_unit(source, line_offset))
            report.rejects_path = rejects_path
    kept = work.filter(~bad) if rejected.height else work
    clean = kept.select(
        pl.col(_ROW), *[pl.col(f"__{k}").alias(k) for k in parsed]
    )
    return Loaded(frame=clean, report=report)


def _describe(rejected: pl.DataFrame, source: str, line_offset: int) -> str:
    unit = _row_unit(source, line_offset)
    lines = [f"{source}: {rejected.height} bad row(s); nothing was loaded."]
    for (why,), group in rejected.group_by(_REASON, maintain_order=True):
        column = str(why).split(":", 1)[0]
        shown = group.head(_SHOWN_ROWS)
        where = ", ".join(str(r + line_offset) for r in shown[_ROW].to_list())
        values = ""
        given = shown[column].cast(pl.String) if column in group.columns else None
        # A missing value needs no example: "(values: None, None, ...)" said nothing.
        if given is not None and (given.str.strip_chars() != "").any():
            values = f" (values: {', '.join(repr(v) for v in given.to_list())})"
        more = f" and {group.height - shown.height} more" if group.height > shown.height else ""
        label = column if column == _ALL_COLUMNS else f"column '{column}'"
        lines.append(f"  {label}: {why.split(': ', 1)[1]} at {unit}s {where}{more}{values}")
    if (rejected[_REASON] == f"customer_id: {MISSING_CUSTOMER}").any():
        lines.append(f"  {GUEST_HINT}")
    lines.append("Fix the rows, or pass --on-bad-rows=skip to write them to a side file and go on.")
    return "\n".join(lines)


def _write_rejects(
    rejected: pl.DataFrame, columns: list[str], path: Path, line_offset: int, unit: str = ""
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    unit = unit.replace(" ", "_") or ("line" if line_offset == 2 else "row")
    out = rejected.select(
        (pl.col(_ROW) + line_offset).alias(unit),
        pl.col(_REASON).alias("reason"),
        *[pl.col(c).cast(pl.String) for c in columns if c != _ROW and c != _PARSED_TS],
    )
    out.write_csv(path)


def _line_offset(source: str) -> int:
    """Report CSV rows as file lines (header is line 1) and a sheet's as Excel numbers its
    rows (the header's row, after any title, is 1 in a plain sheet), other sources as 1-based
    rows."""
    name = Path(source).name.lower()
    text = any(f".{kind}" in name for kind in ("csv", "txt", "tsv"))
    return 2 if not is_database_url(source) and (text or _is_workbook(source)) else 1


def _row_unit(source: str, line_offset: int) -> str:
    """What errors call a row: a file's "line", a sheet's "sheet row", else "row"."""
    if line_offset == 2:
        return "sheet row" if _is_workbook(source) else "line"
    return "row"


def load_transactions(
    source: str | Path | _InMemory,
    *,
    as_of: date | None = None,
    column_map: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "fail",
    rejects_path: Path | None = None,
    query: str | None = None,
    window_end: date | None = None,
    options: ReadOptions | None = None,
    allow_until: date | None = None,
) -> Loaded:
    """Read and validate transactions.

    Lines dated on or after ``window_end`` (default ``as_of``; a later one when the horizon
    after ``as_of`` is wanted, for labels) are outside the window: never rejected, left out of
    the frame and counted in the report (``after_as_of`` and their dates). ``allow_until`` is
    the old name of ``window_end``.
    Returns a frame ``_row, customer_id, order_id, ts, amount, product_id, quantity, channel``
    where ``order_id`` is filled with a per-row key when missing and ``quantity`` with 1.
    """
    options = options or ReadOptions()
    window_end = window_end or allow_until or as_of
    if window_end == date.max:
        window_end = None
    name = str(source) if not is_database_url(str(source)) else _safe_url(str(source))
    info = ReadInfo()
    raw = _apply_map(read_table(source, query, options, info), table_map(column_map), name)
    from_price = "amount" not in raw.columns and "price" in raw.columns
    _require(raw, [c for c in TRANSACTION_REQUIRED if not (from_price and c == "amount")], name)
    has = set(raw.columns)
    rows_read = raw.height
    # A header repeated as a data line (files concatenated, or a header converted with the
    # data) is not a bad row: its customer id is the column's own name.
    header_lines = 0
    if raw.schema["customer_id"] == pl.String:
        names = {"customer_id", (column_map or {}).get("customer_id", "customer_id").lower()}
        header_rows = _header_rows(raw, names)
        header_lines = header_rows.len()
        if header_lines:
            raw = raw.filter(~pl.col(_ROW).is_in(header_rows.implode()))
    ts = pl.col(_PARSED_TS)
    # Over the whole file, as a user sees it: the lines later dropped as outside the window too.
    finding = _repeated_rows_meanwhile(raw, [c for c in raw.columns if c != _ROW],
                                       needed_now=options.drop_duplicates)
    # Parsed once, here: the window split and the checks below both read it.
    raw = raw.with_columns(parse_datetimes(raw, "ts", options.date_format).alias(_PARSED_TS))
    duplicates_dropped = 0
    if options.drop_duplicates and (repeated := finding.result()).len():
        raw = raw.filter(~pl.col(_ROW).is_in(repeated.implode()))
        duplicates_dropped = repeated.len()
    after: dict[str, object] = {"after_as_of": 0}
    if window_end is not None:
        outside = raw.select(ts.fill_null(datetime.min) >= midnight(window_end)).to_series()
        if outside.any():
            dates = raw.filter(outside).select(ts.min().alias("a"), ts.max().alias("b")).row(0)
            after = {"after_as_of": int(outside.sum()), "after_as_of_first": dates[0].date(),
                     "after_as_of_last": dates[1].date()}
            raw = raw.filter(~outside)
    cancelled = returned = 0
    refunds: pl.Series | None = None
    if "status" in has:
        # Cancelled lines go before anything is parsed or checked: such a line never
        # happened, whatever it holds (and leaving it here, on the file's few columns, costs
        # a third of leaving it once the parsed ones are added).
        dropped, refunds = status_lines(raw, options)
        if dropped is not None:
            cancelled = int(dropped.sum())
            raw = raw.filter(~dropped)
            refunds = None if refunds is None else refunds.filter(~dropped)
        returned = 0 if refunds is None else int(refunds.sum())
    quantity_number = _number(raw, "quantity") if "quantity" in has else pl.lit(None, pl.Float64)
    quantity = quantity_number.fill_null(1.0)
    amount = _number(raw, "price") * quantity if from_price else _number(raw, "amount")
    if refunds is not None:
        amount, quantity = refunded(amount, refunds), refunded(quantity, refunds)
    amount_column = "price" if from_price else "amount"
    # Every column is parsed once, in one parallel pass; the id rules below then look at the
    # parsed (stripped) text instead of stripping it again (each strip is ~0.7 s per 20M rows).
    texts = ["customer_id", *(c for c in ("order_id", "product_id", "channel") if c in has)]
    raw = raw.with_columns(
        *_stripped(raw, texts),
        *(pl.lit(None, pl.String).alias(f"__{c}") for c in ("order_id", "product_id", "channel")
          if c not in has),
        amount.alias("__amount"),
        quantity.alias("__quantity"),
    )
    raw, float_ids = _rewrite_float_ids(raw, "__customer_id")
    raw = raw.with_columns(_order_id(raw, "__order_id").alias("__order_id"))
    parsed: dict[str, pl.Expr] = {
        name: pl.col(f"__{name}") for name in
        ("customer_id", "order_id", "ts", "amount", "product_id", "quantity", "channel")
    }
    parsed["ts"] = pl.col(_PARSED_TS)
    checks = [
        _Check("customer_id", MISSING_CUSTOMER, _blank("__customer_id")),
        _Check("ts", "unparseable date" + (f" (--date-format {options.date_format})"
                                          if options.date_format else ""),
               pl.col("__ts").is_null()),
        _Check(amount_column, "not a number", pl.col("__amount").is_null()),
        _Check(amount_column, f"amount beyond +-{MAX_ABS_AMOUNT:.0e}",
               pl.col("__amount").abs() > MAX_ABS_AMOUNT),
    ]
    # An integer quantity always reads as a (finite) number: its check cannot fail and is not
    # run (~7 ms per 2M lines of typed Parquet).
    if "quantity" in has and not raw.schema["quantity"].is_integer():
        quantity_given = pl.col("quantity").is_not_null()
        if not raw.schema["quantity"].is_numeric():  # numbers as text would cost 2 s per 20M
            quantity_given = quantity_given & (_text("quantity") != "")
        checks.append(_Check("quantity", "not a number", quantity_given & quantity_number.is_null()))
    loaded = _validate(
        raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
        rejects_path=rejects_path, line_offset=_line_offset(name),
    )
    offset = _line_offset(name)
    report = loaded.report
    report.rows_read = rows_read
    report.encoding, report.separator = info.encoding, info.separator
    report.read_notes.extend(info.notes(name))
    report.amount_from_price = from_price
    repeated = finding.result()
    report.duplicates = repeated.len()
    report.duplicate_lines = [r + offset for r in repeated.head(_SHOWN_DUPLICATES).to_list()]
    report.duplicates_dropped = duplicates_dropped
    report.float_ids_rewritten = int(float_ids)
    report.empty_rows, report.totals_rows = info.empty_rows, info.totals_count
    report.header_lines = int(header_lines)
    report.cancelled_lines, report.returned_lines = cancelled, returned
    report.as_of, report.window_end = as_of, window_end
    for key, value in after.items():
        setattr(report, key, value)
    if loaded.frame.height == 0:
        if report.after_as_of and not report.rows_rejected:
            raise DataError(f"{name}: every line is dated on or after {window_end}; choose a "
                            "later --as-of")
        if cancelled and not report.rows_rejected:
            raise DataError(f"{name}: no valid rows left: every line in the window is "
                            "cancelled (status column)")
        raise DataError(f"{name}: no valid rows left after rejecting bad rows")
    return loaded


@dataclass(frozen=True)
class _InMemory:
    """Rows already in memory, read by the loaders as if from the file ``name`` (its name is in
    the messages; a Parquet name gives 1-based row numbers)."""

    frame: pl.DataFrame
    name: str

    def __str__(self) -> str:
        return self.name

    def rows(self) -> pl.DataFrame:
        if self.frame.height == 0:
            raise DataError(f"{self.name}: no rows (only a header or an empty result)")
        return self.frame.with_row_index(_ROW)


def validate_transactions(
    frame: pl.DataFrame | pa.Table,
    source: str = "transactions",
    **options: Any,
) -> Loaded:
    """:func:`load_transactions` on rows already in memory (a polars frame or an Arrow table,
    e.g. one Spark partition): the same checks, normalisation, report and one-line errors,
    with ``source`` as the file name in them and rows counted 1-based from the frame's first
    row. ``options``: ``load_transactions``' keywords (``as_of``, ``window_end``,
    ``column_map``, ``on_bad_rows``, ``rejects_path``, ``options``)."""
    if not isinstance(frame, pl.DataFrame):
        converted = pl.from_arrow(frame)
        assert isinstance(converted, pl.DataFrame)
        frame = converted
    # Loaded under a neutral name, then renamed: a source named like a CSV would otherwise
    # count rows as file lines (header = line 1).
    try:
        loaded = load_transactions(_InMemory(frame, _IN_MEMORY), **options)
    except DataError as exc:
        raise DataError(str(exc).replace(_IN_MEMORY, source)) from None
    loaded.report.source = source
    return loaded


_IN_MEMORY = "<rows in memory>"


def _stripped(raw: pl.DataFrame, columns: list[str]) -> list[pl.Series]:
    """``__<column>``: each column as text, spaces around stripped. Where stripping changed
    nothing (lengths equal) the column itself is kept and the copy freed at once: on 20M lines
    four copies held together would add ~1.3 GB to the peak. Two columns at a time keep both
    cores busy (polars lets go of the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(column: str) -> pl.Series:
        original = raw[column].cast(pl.String)
        if _few_distinct(original):
            # Products, channels: stripping changes a line only if it changes a distinct
            # value, and finding those costs a third of stripping every line (20M lines).
            distinct = original.unique()
            if (distinct.str.strip_chars() == distinct).all():
                return original.alias(f"__{column}")
        stripped = original.str.strip_chars()
        same = (stripped.str.len_bytes() == original.str.len_bytes()).all()
        return (original if same else stripped).alias(f"__{column}")

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, columns))


def _few_distinct(values: pl.Series, sample: int = 10_000, most: int = 1_000) -> bool:
    """A column of few distinct values, judged on rows spread over it (not its first rows:
    a customer-sorted file starts with few customers)."""
    if len(values) < 10 * sample:
        return False
    return values.gather_every(len(values) // sample).n_unique() <= most


def _order_id(raw: pl.DataFrame, column: str) -> pl.Expr:
    """The order id (``column``: already stripped text), or a per-row key where it is missing
    (one order per row)."""
    per_row = pl.lit("#row") + pl.col(_ROW).cast(pl.String)
    order_id = pl.col(column)
    # Comparing stripped text with "" reads lengths only: no string is touched.
    complete = raw.select((order_id.is_null() | (order_id == "")).any()).item() is False
    # Building a fallback key for every row costs a string per row: only when one is missing.
    return order_id if complete else pl.coalesce(order_id.replace("", None), per_row)


def _rewrite_float_ids(raw: pl.DataFrame, column: str) -> tuple[pl.DataFrame, int]:
    """``column`` (stripped customer ids) with floats a spreadsheet wrote (``17850.0``) read as
    integers, and how many there were. A float id ends in 0 and holds a dot: the regular
    expression runs on those lines only (it costs ~3 s per 20M lines on every line)."""
    text = pl.col(column)
    ends = raw.select(text).filter(text.str.ends_with("0"))
    count = ends.select(text.str.contains(_FLOAT_ID).sum()).item() or 0
    if count:
        maybe = text.str.ends_with("0") & text.str.contains(".", literal=True)
        raw = raw.with_columns(pl.when(maybe).then(text.str.replace(_FLOAT_ID, "${1}"))
                               .otherwise(text).alias(column))
    return raw, int(count)


def _header_rows(raw: pl.DataFrame, names: set[str]) -> pl.Series:
    """Row indexes of lines whose customer id is the column's own name (any case, spaces
    around). A case-insensitive match picks the few candidates in one cheap pass; the exact
    rule (stripped, lower case, one of ``names``) decides among them."""
    exact = pl.col("customer_id").str.strip_chars().str.to_lowercase().is_in(list(names))
    # Punctuation as \x{..} escapes: the engine's escapes are not Python's (re.escape).
    alternatives = ("".join(c if c.isalnum() or c == "_" else f"\\x{{{ord(c):x}}}" for c in n)
                    for n in sorted(names))
    pattern = "(?i)^\\s*(?:" + "|".join(alternatives) + ")\\s*$"
    # A match holds at least one character, so one byte, per letter of the shortest name (a
    # case-insensitive match maps a letter to one letter): ids shorter than that, as most are
    # (C0000123 beside customer_id), skip the regular expression (~6 ms CPU per 2M lines) on
    # lengths alone, which the strings store.
    shortest = min(len(n) for n in names)
    ids = raw.select(_ROW, "customer_id")
    long_enough = ids["customer_id"].str.len_bytes() >= shortest
    if not long_enough.all():
        ids = ids.filter(long_enough)
    candidates = ids.filter(pl.col("customer_id").str.contains(pattern))
    return candidates.filter(exact)[_ROW]


def _read_side(source: str | Path | _InMemory, table: str, required: Sequence[str],
               column_map: Mapping[str, str] | None, query: str | None,
               options: ReadOptions | None) -> tuple[pl.DataFrame, ReadInfo]:
    """A side table (``customers``, ``contacts``) read, mapped and checked for its required
    columns, with what the reading found (a CRM's cp1251 file is said, as the transactions'
    is). Only the encoding applies (--encoding: a file that is not UTF-8); dates are the
    contract's."""
    name, info = str(source), ReadInfo()
    read = ReadOptions(encoding=options.encoding) if options else None
    raw = _apply_map(read_table(source, query or f"SELECT * FROM {table}", read, info),
                     column_map or {}, name)
    _require(raw, required, name, table)
    return raw, info


def _with_read_info(loaded: Loaded, info: ReadInfo, name: str) -> Loaded:
    loaded.report.encoding, loaded.report.separator = info.encoding, info.separator
    loaded.report.read_notes.extend(info.notes(name))
    return loaded


def load_customers(
    source: str | Path,
    *,
    column_map: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "fail",
    rejects_path: Path | None = None,
    query: str | None = None,
    options: ReadOptions | None = None,
) -> Loaded:
    """Read the optional customers table: ``customer_id``, ``signup_ts``, ``acquisition_channel``
    and any ``consent_<channel>`` flags (true/false/1/0/yes/no/да/нет; missing = no consent)."""
    name = str(source)
    raw, info = _read_side(source, "customers", CUSTOMER_REQUIRED, column_map, query, options)
    raw = _consent_columns(raw, name)
    consents = [c for c in raw.columns if c.startswith("consent_")]
    parsed: dict[str, pl.Expr] = {"customer_id": customer_id_expr()}
    checks = [_Check("customer_id", "missing customer id", _blank("__customer_id"))]
    if "signup_ts" in raw.columns:
        parsed["signup_ts"] = _datetime(raw, "signup_ts")
        given = pl.col("signup_ts").is_not_null() & (_text("signup_ts") != "")
        checks.append(_Check("signup_ts", "unparseable date", given & pl.col("__signup_ts").is_null()))
    if "acquisition_channel" in raw.columns:
        parsed["acquisition_channel"] = _text("acquisition_channel")
    for consent in consents:
        parsed[consent] = _boolean(raw, consent)
        checks.append(_Check(consent, "not true/false", pl.col(f"__{consent}").is_null()))
    # A CRM lists a customer twice (merged records, two exports joined): when what retain reads
    # is the same in both, the repeat is left out and said; when it differs (a consent given
    # in one and not the other), which one holds is the shop's to say: a bad row.
    values = raw.select(pl.col(_ROW), **{k: v for k, v in parsed.items()})
    repeats = values.filter(~pl.col("customer_id").is_null() & (pl.col("customer_id") != "")
                            & ~pl.struct(list(parsed)).is_first_distinct())[_ROW]
    notes = []
    if repeats.len():
        raw = raw.filter(~pl.col(_ROW).is_in(repeats.implode()))
        notes.append(f"{name}: {repeats.len():,} customers listed again with the same "
                     "values; the repeats are left out")
    checks.append(
        _Check("customer_id", "duplicated customer id with other values",
               pl.col("__customer_id").is_duplicated()
               & ~pl.col("__customer_id").is_first_distinct())
    )
    loaded = _validate(
        raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
        rejects_path=rejects_path, line_offset=_line_offset(name),
    )
    loaded.report.read_notes.extend(notes)
    return _with_read_info(loaded, info, name)


def load_contacts(
    source: str | Path,
    *,
    column_map: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "fail",
    rejects_path: Path | None = None,
    query: str | None = None,
    options: ReadOptions | None = None,
) -> Loaded:
    """Read the optional contacts log: ``customer_id, ts, channel, campaign, cost, control``
    and, when the log has it, ``offer`` (blank reads as ``none``)."""
    name = str(source)
    raw, info = _read_side(source, "contacts", CONTACT_REQUIRED, column_map, query, options)
    has = set(raw.columns)
    parsed: dict[str, pl.Expr] = {
        "customer_id": customer_id_expr(),
        "ts": _datetime(raw, "ts"),
        "channel": _channel_names(raw),
        "campaign": _text("campaign") if "campaign" in has else pl.lit(None, pl.String),
        # A blank cost is 0 (said in a note); a cost that is not a number is rejected below.
        "cost": _number(raw, "cost").fill_null(0.0) if "cost" in has else pl.lit(0.0),
        "control": _boolean(raw, "control") if "control" in has else pl.lit(False),
    }
    if "offer" in has:  # optional: what came with the message ("none" or e.g. "discount_10")
        parsed["offer"] = _text("offer").str.to_lowercase().replace("", "none").fill_null("none")
    checks = [
        _Check("customer_id", "missing customer id", _blank("__customer_id")),
        _Check("ts", "unparseable date", pl.col("__ts").is_null()),
        _Check("channel", "missing channel", _blank("__channel")),
    ]
    if "control" in has:
        checks.append(_Check("control", "not true/false", pl.col("__control").is_null()))
    notes = []
    if "cost" in has:
        blank_cost = _text("cost").is_null() | (_text("cost") == "")
        checks.append(_Check("cost", "not a number",
                             ~blank_cost & _number(raw, "cost").is_null()))
        blanks = raw.select(blank_cost.sum()).item()
        if blanks:
            notes.append(f"{name}: {blanks:,} rows with a blank cost, read as 0")
    else:
        notes.append(f"{name} has no cost column: every message is read as free, so ROMI "
                     "and return per cost cannot be computed")
    loaded = _validate(
        raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
        rejects_path=rejects_path, line_offset=_line_offset(name),
    )
    loaded.report.read_notes.extend(notes)
    return _with_read_info(loaded, info, name)


def _repeated_rows_meanwhile(raw: pl.DataFrame, columns: list[str],
                             needed_now: bool) -> Future[pl.Series]:
    """:func:`_repeated_rows`, found on a worker thread while the checks go on (polars and
    numpy let the GIL go: the hashing and sorting, ~0.1 s per 2M lines, use the second
    core); at once when ``needed_now`` (the lines are dropped before the checks)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    if needed_now:
        done: Future[pl.Series] = Future()
        done.set_result(_repeated_rows(raw, columns))
        return done
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(_repeated_rows, raw, columns)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _repeated_rows(raw: pl.DataFrame, columns: list[str]) -> pl.Series:
    """Row indexes of lines identical to an earlier line. Row hashes find the candidates in one
    cheap pass; only those are compared exactly (a hash collision is never a duplicate)."""
    import numpy as np

    # A sort of the 64-bit hashes finds repeated ones 4x faster than polars' is_duplicated
    # (a hash table of every row); only the rows holding a repeated hash are compared.
    hashes = raw.select(columns).hash_rows(seed=0)
    ordered = np.sort(hashes.to_numpy())
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return pl.Series(_ROW, [], dtype=raw.schema[_ROW])
    candidates = hashes.is_in(pl.Series(np.unique(repeated)))
    subset = raw.filter(candidates).select(_ROW, *columns)
    return subset.filter(~pl.struct(columns).is_first_distinct())[_ROW]
