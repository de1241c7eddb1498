"""Exports of stored scores for marketers: CSV that opens in Excel, or Parquet, in constant memory.

Rows stream from the score store chunk by chunk (:meth:`ScoreStore.iter_scores`); the column
order is the store's, which only grows at the end as migrations add columns. CSV is UTF-8,
with a byte-order mark on request (Excel then shows Cyrillic intact) and ``,`` or ``;`` as the
separator (``;`` is what Excel expects where the decimal mark is a comma); text cells that a
spreadsheet would run as formulas are neutralised (:func:`formula_safe`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow.parquet as pq

from decisions.segments import BEHAVIOUR_TYPES, LIFECYCLE_STAGES, VALUE_TIERS
from serving.store import ScoreStore

Separator = Literal[",", ";"]
SEGMENT_NAMES = frozenset(
    "-".join(parts) for parts in product(LIFECYCLE_STAGES, VALUE_TIERS, BEHAVIOUR_TYPES))
BOM = "\ufeff".encode()
CHUNK_ROWS = 20_000


# OWASP's advice on CSV injection: a text cell that Excel or LibreOffice would read as a formula
# (or whose leading tab / CR they strip before doing so) gets a leading apostrophe, which they
# show as text. Numbers are typed columns and stay as they are.
FORMULA_START = r"^[=+\-@\t\r]"


def formula_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula neutralised."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START)).then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name)).alias(name) for name in text)


def csv_chunks(frames: Iterator[pl.DataFrame], columns: list[str], *, separator: Separator = ",",
               bom: bool = False) -> Iterator[bytes]:
    """CSV bytes: the header (also when there are no rows), then each frame's rows."""
    header = io.BytesIO()
    pl.DataFrame(schema=dict.fromkeys(columns, pl.String)).write_csv(header, separator=separator)
    yield (BOM if bom else b"") + header.getvalue()
    for frame in frames:
        buffer = io.BytesIO()
        formula_safe(frame.select(columns)).write_csv(buffer, separator=separator,
                                                      include_header=False)
        yield buffer.getvalue()


def export_scores(store: ScoreStore, path: Path, *, fmt: Literal["csv", "parquet"],
                  run_id: str | None = None, filters: dict[str, str | None] | None = None,
                  separator: Separator = ",", bom: bool = False) -> int:
    """Write a run's rows (filtered) to ``path``; returns the number of rows written."""
    frames = store.iter_scores(run_id, chunk_size=CHUNK_ROWS, filters=filters)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0

    def counted() -> Iterator[pl.DataFrame]:
        nonlocal rows
        for frame in frames:
            rows += frame.height
            yield frame

    if fmt == "csv":
        with path.open("wb") as out:
            for chunk in csv_chunks(counted(), store.columns, separator=separator, bom=bom):
                out.write(chunk)
        return rows
    schema = store.empty_frame().to_arrow().schema
    with pq.ParquetWriter(path, schema) as writer:
        for frame in counted():
            writer.write_table(frame.select(store.columns).to_arrow().cast(schema))
    return rows
