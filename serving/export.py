"""Exports of stored scores for marketers: CSV, an Excel workbook, or Parquet, in constant memory.

Rows stream from the score store chunk by chunk (:meth:`ScoreStore.iter_scores`); the column
order is the store's, which only grows at the end as migrations add columns.

- Plain CSV is for scripts: UTF-8, ``,`` or ``;``, full precision, ``.`` as the decimal mark, codes
  as stored. A byte-order mark on request (Excel then shows Cyrillic intact).
- Excel CSV (``excel=True``) is for people in locales whose decimal mark is a comma: ``;``, a
  decimal comma, numbers rounded as people read them (probabilities 4 places, money 2, days 1),
  ISO dates and a byte-order mark.
- XLSX is a real workbook (xlsxwriter, constant-memory mode): typed numbers with formats, dates as
  dates, booleans as booleans, a frozen header with an autofilter; past Excel's row limit the
  rows continue on a second sheet.
- ``lang`` (en or ru) translates headers and category codes with :mod:`serving.labels`; without
  it, codes stay as scripts read them.

Text cells that a spreadsheet would run as formulas are neutralised: in CSV by a leading
apostrophe (:func:`formula_safe`); in XLSX they are string cells with Excel's own "quote prefix"
flag, so the id keeps its exact value and still never runs, even when the cell is edited.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import polars as pl
import pyarrow.parquet as pq

from retain.decisions.segments import BEHAVIOUR_TYPES, LIFECYCLE_STAGES, VALUE_TIERS
from retain.serving.labels import Language, column_label, labelled
from retain.serving.store import ScoreStore

if TYPE_CHECKING:
    from xlsxwriter.worksheet import Worksheet

Separator = Literal[",", ";"]
Format = Literal["csv", "xlsx", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx", "parquet")
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
SEGMENT_NAMES = frozenset(
    "-".join(parts) for parts in product(LIFECYCLE_STAGES, VALUE_TIERS, BEHAVIOUR_TYPES))
BOM = "\ufeff".encode()
CHUNK_ROWS = 20_000


# OWASP's advice on CSV injection: a text cell that Excel or LibreOffice would read as a formula
# (or whose leading tab / CR they strip before doing so) gets a leading apostrophe, which they
# show as text. Numbers are typed columns and stay as they are.
FORMULA_START = r"^[=+\-@\t\r]"
FORMULA_CHARS = "=+-@\t\r"


def formula_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula neutralised."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START)).then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name)).alias(name) for name in text)


# -- how people read the numbers -------------------------------------------------------------------

# Float columns by what they measure: the places an Excel CSV keeps and the XLSX number format.
# A float column not listed (a later migration's) keeps 4 places and Excel's general format.
PROBABILITIES = ("p_alive", "churn_probability")
MONEY = ("predicted_revenue", "clv_12m", "expected_incremental_revenue", "contact_cost",
         "offer_value")
DAYS = ("overdue_days",)
ORDERS = ("expected_orders",)
PLACES = {**dict.fromkeys(PROBABILITIES, 4), **dict.fromkeys(MONEY, 2),
          **dict.fromkeys(DAYS, 1), **dict.fromkeys(ORDERS, 2)}
DEFAULT_PLACES = 4


def rounded_for_people(frame: pl.DataFrame) -> pl.DataFrame:
    """Float columns rounded to the places people read (probabilities 4, money 2, days 1); NaN
    becomes an empty cell, since no spreadsheet reads ``NaN`` as a number."""
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    return frame.with_columns(
        pl.col(name).fill_nan(None).round(PLACES.get(name, DEFAULT_PLACES)) for name in floats)


def _headers(columns: list[str], lang: Language | None) -> list[str]:
    return columns if lang is None else [column_label(name, lang) for name in columns]


def _for_people(frame: pl.DataFrame, lang: Language | None) -> pl.DataFrame:
    return frame if lang is None else labelled(frame, lang)


# -- CSV -------------------------------------------------------------------------------------------

def csv_chunks(frames: Iterator[pl.DataFrame], columns: list[str], *, separator: Separator = ",",
               bom: bool = False, excel: bool = False,
               lang: Language | None = None) -> Iterator[bytes]:
    """CSV bytes: the header (also when there are no rows), then each frame's rows.

    ``excel`` writes for a spreadsheet in a decimal-comma locale: ``;``, a decimal comma,
    rounded numbers and a byte-order mark (``separator`` and ``bom`` are then ignored)."""
    if excel:
        separator, bom = ";", True
    header = io.BytesIO()
    pl.DataFrame(schema=dict.fromkeys(_headers(columns, lang), pl.String)).write_csv(
        header, separator=separator)
    yield (BOM if bom else b"") + header.getvalue()
    for frame in frames:
        chunk = frame.select(columns)
        if excel:
            chunk = rounded_for_people(chunk)
        buffer = io.BytesIO()
        formula_safe(_for_people(chunk, lang)).write_csv(
            buffer, separator=separator, include_header=False, decimal_comma=excel,
            float_scientific=False if excel else None, date_format="%Y-%m-%d")
        yield buffer.getvalue()


# -- XLSX ------------------------------------------------------------------------------------------

SHEET_ROWS = 1_048_576 - 1  # Excel's row limit, less the header row
EXCEL_EPOCH = pl.date(1899, 12, 30)  # day 0 of Excel's 1900 date system (dates after 1900-03-01)
FORMATS_XLSX = {"date": "yyyy-mm-dd", "probability": "0.0%", "money": "0.00", "days": "0.0",
                "orders": "0.00", "integer": "0"}
# Column widths in characters, by kind, so no scan over the rows is needed; a header wider than
# this widens its column (to at most MAX_WIDTH).
WIDTHS = {"date": 11, "probability": 9, "money": 12, "days": 8, "orders": 9, "integer": 8,
          "float": 10, "boolean": 8, "text": 14}
TEXT_WIDTHS = {"reason": 60, "segment": 24, "model_version": 12, "customer_id": 14}
MAX_WIDTH = 40
AUTOFILTER_ARROW = 3  # the filter button covers the end of the header


def _kind(name: str, dtype: pl.DataType) -> str:
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return ("probability" if name in PROBABILITIES else "money" if name in MONEY
                else "days" if name in DAYS else "orders" if name in ORDERS else "float")
    return "text"


def sheet_name(name: str) -> str:
    """A valid worksheet name: no ``[]:*?/\\``, not quoted, at most 31 characters."""
    cleaned = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'")[:31]
    return cleaned or "scores"


def write_xlsx(frames: Iterator[pl.DataFrame], schema: dict[str, pl.DataType],
               target: str | Path | IO[bytes], *, sheet: str = "scores",
               lang: Language | None = None) -> int:
    """Write the frames' rows to a workbook at ``target`` (a path or a binary file); returns
    the number of rows written.

    xlsxwriter's constant-memory mode flushes each row as the next starts, so only one chunk of
    rows is held at a time. Rows past Excel's limit continue on ``<sheet> (2)``, and so on."""
    import xlsxwriter

    columns = list(schema)
    kinds = [_kind(name, schema[name]) for name in columns]
    headers = _headers(columns, lang)
    workbook = xlsxwriter.Workbook(target, {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False})
    header_format = workbook.add_format({"bold": True})
    formats = {kind: workbook.add_format({"num_format": code})
               for kind, code in FORMATS_XLSX.items()}
    # Excel's own "this is text" flag: what typing a leading ' in a cell sets.
    quoted = workbook.add_format({"quote_prefix": True})
    dates = [name for name, kind in zip(columns, kinds) if kind == "date"]
    floats = [name for name, kind in zip(columns, kinds)
              if kind not in ("date", "boolean", "integer", "text")]
    plan = [(i, kind, formats.get(kind)) for i, kind in enumerate(kinds)]
    base = sheet_name(sheet)
    sheets: list[Worksheet] = []

    def new_sheet() -> Worksheet:
        suffix = f" ({len(sheets) + 1})" if sheets else ""
        worksheet = workbook.add_worksheet(base[:31 - len(suffix)] + suffix)
        for i, (kind, header) in enumerate(zip(kinds, headers)):
            default = TEXT_WIDTHS.get(columns[i], WIDTHS[kind]) if kind == "text" else WIDTHS[kind]
            worksheet.set_column(i, i, max(default, min(len(header) + AUTOFILTER_ARROW,
                                                        MAX_WIDTH)))
            worksheet.write_string(0, i, header, header_format)
        worksheet.freeze_panes(1, 0)
        sheets.append(worksheet)
        return worksheet

    worksheet = new_sheet()
    row = 0  # the last row written on the current sheet
    total = 0
    try:
        for frame in frames:
            # Columnar preparation: dates become Excel day numbers, NaN an empty cell, codes
            # labels (with lang). What is left per cell is xlsxwriter's own write call.
            prepared = _for_people(frame.select(columns).with_columns(
                *((pl.col(name) - EXCEL_EPOCH).dt.total_days().alias(name) for name in dates),
                *(pl.col(name).fill_nan(None) for name in floats)), lang)
            for values in prepared.iter_rows():
                if row == SHEET_ROWS:
                    worksheet, row = new_sheet(), 0
                row += 1
                for i, kind, number_format in plan:
                    value = values[i]
                    if value is None:
                        continue
                    if kind == "text":
                        hostile = value != "" and value[0] in FORMULA_CHARS
                        worksheet.write_string(row, i, value, quoted if hostile else None)
                    elif kind == "boolean":
                        worksheet.write_boolean(row, i, value)
                    else:
                        worksheet.write_number(row, i, value, number_format)
            total += prepared.height
        for number, filled in enumerate(sheets):
            last = row if number == len(sheets) - 1 else SHEET_ROWS
            filled.autofilter(0, 0, last, len(columns) - 1)
    finally:
        workbook.close()
    return total


# -- files and streams -----------------------------------------------------------------------------

def write_parquet(frames: Iterator[pl.DataFrame], schema: dict[str, pl.DataType],
                  target: str | Path | IO[bytes], *, lang: Language | None = None) -> int:
    """Write the frames' rows as Parquet with the store's types; returns the rows written."""
    columns = list(schema)
    arrow_schema = _for_people(pl.DataFrame(schema=schema), lang).to_arrow().schema
    rows = 0
    with pq.ParquetWriter(target, arrow_schema) as writer:
        for frame in frames:
            writer.write_table(_for_people(frame.select(columns), lang).to_arrow()
                               .cast(arrow_schema))
            rows += frame.height
    return rows


def file_chunks(write: Callable[[IO[bytes]], object], chunk_bytes: int = 1 << 20
                ) -> Iterator[bytes]:
    """Run ``write`` into an anonymous temporary file, then yield the file in chunks (for a
    download of a format that is only complete once written, such as XLSX or Parquet)."""
    with tempfile.TemporaryFile() as spool:
        write(spool)
        spool.seek(0)
        while chunk := spool.read(chunk_bytes):
            yield chunk


def export_chunks(frames: Iterator[pl.DataFrame], schema: dict[str, pl.DataType], *, fmt: Format,
                  separator: Separator = ",", bom: bool = False, excel: bool = False,
                  lang: Language | None = None, sheet: str = "scores") -> Iterator[bytes]:
    """The bytes of an export in ``fmt``, for a streamed HTTP response."""
    if fmt == "csv":
        return csv_chunks(frames, list(schema), separator=separator, bom=bom, excel=excel,
                          lang=lang)
    if fmt == "xlsx":
        return file_chunks(lambda out: write_xlsx(frames, schema, out, sheet=sheet, lang=lang))
    return file_chunks(lambda out: write_parquet(frames, schema, out, lang=lang))


def export_scores(store: ScoreStore, path: Path, *, fmt: Format, run_id: str | None = None,
                  filters: dict[str, str | None] | None = None, separator: Separator = ",",
                  bom: bool = False, excel: bool = False, lang: Language | None = None) -> int:
    """Write a run's rows (filtered) to ``path``; returns the number of rows written."""
    frames = store.iter_scores(run_id, chunk_size=CHUNK_ROWS, filters=filters)
    schema = dict(store.empty_frame().schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        segment = (filters or {}).get("segment")
        return write_xlsx(frames, schema, path, sheet=segment or "scores", lang=lang)
    if fmt == "parquet":
        return write_parquet(frames, schema, path, lang=lang)
    rows = 0

    def counted() -> Iterator[pl.DataFrame]:
        nonlocal rows
        for frame in frames:
            rows += frame.height
            yield frame

    with path.open("wb") as out:
        for chunk in csv_chunks(counted(), list(schema), separator=separator, bom=bom,
                                excel=excel, lang=lang):
            out.write(chunk)
    return rows
