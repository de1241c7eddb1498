"""Measured effects kept in the score store's database, for ``GET /v1/effect``.

``retain effect`` writes each measurement it makes (all its rows at once, under a new
``effect_id``) to the table ``effect_rows``, created on first use beside the scores as the page's
sessions are (serving/sessions.py); the API serves the latest measurement, optionally the latest
of one split. A measurement holds :data:`retain.analytics.effect.EFFECT_COLUMNS` plus what it
was asked: ``effect_id, measured_at, date_from, date_to, by, split_by`` (``none`` for no split).
The rows read back also hold ``period_start, period_end`` and ``raw_difference``, derived (not
stored: tables kept before they existed read the same).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import polars as pl
import sqlalchemy as sa

from retain.analytics.effect import (
    EFFECT_COLUMNS,
    EFFECT_SCHEMA,
    RAW_DIFFERENCE,
    period_bounds,
    with_raw_difference,
)
from retain.serving.store import ScoreStore

TABLE = "effect_rows"
NO_SPLIT = "none"
_metadata = sa.MetaData()
_SQL_TYPES = {pl.String: sa.Text, pl.Int64: sa.BigInteger, pl.Float64: sa.Double}
_rows = sa.Table(
    TABLE, _metadata,
    sa.Column("effect_id", sa.String(32), nullable=False, index=True),
    sa.Column("row_number", sa.Integer, nullable=False),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("date_from", sa.Date, nullable=False),
    sa.Column("date_to", sa.Date, nullable=False),
    sa.Column("by", sa.String(16), nullable=False),
    sa.Column("split_by", sa.String(16), nullable=False),
    *[sa.Column(name, _SQL_TYPES[dtype]()) for name, dtype in EFFECT_SCHEMA.items()],
    sa.PrimaryKeyConstraint("effect_id", "row_number", name="pk_effect_rows"),
)


def write_effect(store: ScoreStore, rows: pl.DataFrame, *, date_from: date, date_to: date,
                 by: str, split: str | None) -> str:
    """Store one measurement (``rows`` as :func:`measure_effect` gives them); returns its id.
    ``store`` must be open."""
    effect_id = uuid.uuid4().hex
    measured_at = datetime.now(UTC)
    values = [
        {"effect_id": effect_id, "row_number": number, "measured_at": measured_at,
         "date_from": date_from, "date_to": date_to, "by": by, "split_by": split or NO_SPLIT,
         **row}
        for number, row in enumerate(rows.select(EFFECT_COLUMNS).fill_nan(None).to_dicts())
    ]
    with store.write_connection() as conn, conn.begin():
        _metadata.create_all(conn, checkfirst=True)
        if values:
            conn.execute(sa.insert(_rows), values)
    return effect_id


def latest_effect(store: ScoreStore, split: str | None = None, *, date_from: date | None = None,
                  date_to: date | None = None,
                  period: str | None = None) -> tuple[dict | None, list[dict]]:
    """The latest stored measurement (of ``split``: ``none``, ``goal``, ``channel`` or
    ``segment``, when given; measured from ``date_from`` and/or to ``date_to`` exactly, when
    given): ``({effect_id, measured_at, date_from, date_to, by, split_by}, rows)``, its rows
    only those of ``period`` (a label, ``2026-Q1``) when given; ``(None, [])`` when there is
    none."""
    with store.engine.connect() as conn:
        if not sa.inspect(conn).has_table(TABLE):
            return None, []
        latest = sa.select(_rows.c.effect_id, _rows.c.measured_at, _rows.c.date_from,
                           _rows.c.date_to, _rows.c.by, _rows.c.split_by)
        if split is not None:
            latest = latest.where(_rows.c.split_by == split)
        if date_from is not None:
            latest = latest.where(_rows.c.date_from == date_from)
        if date_to is not None:
            latest = latest.where(_rows.c.date_to == date_to)
        head = conn.execute(latest.order_by(_rows.c.measured_at.desc(),
                                            _rows.c.effect_id.desc()).limit(1)).first()
        if head is None:
            return None, []
        chosen = sa.select(*[_rows.c[name] for name in EFFECT_COLUMNS]).where(
            _rows.c.effect_id == head.effect_id)
        if period is not None:
            chosen = chosen.where(_rows.c.period == period)
        found = conn.execute(chosen.order_by(_rows.c.row_number))
        rows = [dict(row._mapping) for row in found]
    about = dict(head._mapping)
    if about["measured_at"].tzinfo is None:  # SQLite gives naive UTC back
        about["measured_at"] = about["measured_at"].replace(tzinfo=UTC)
    # The days each row covers follow from what was asked (not stored: tables kept before
    # these columns existed read the same).
    days = {label: (first, after - timedelta(days=1)) for label, first, after in
            period_bounds(about["date_from"], about["date_to"], about["by"])}
    for row in rows:
        row["period_start"], row["period_end"] = days.get(row["period"], (None, None))
    if rows:  # the plain difference, from the stored means (analytics.effect's one rule)
        measured = with_raw_difference(pl.DataFrame(rows, orient="row", infer_schema_length=None)
                                       .cast({"treated_mean": pl.Float64,
                                              "control_mean": pl.Float64}))[RAW_DIFFERENCE]
        for row, value in zip(rows, measured.to_list(), strict=True):
            row[RAW_DIFFERENCE] = value
    return about, rows
