"""The score store: every batch scoring run kept in a database, read back by the API.

``retain score`` writes one row per customer under a new run; the API reads the latest stored
scores of one customer; an export streams a whole run. A SQLite file by default
(``sqlite:///retain.db`` in the working directory), PostgreSQL by URL
(``postgresql+psycopg://user:password@host/db``) through the same SQLAlchemy Core code::

    with ScoreStore(url).open() as store:
        run_id = store.write_run(scores, model_version="3", as_of=date(2026, 7, 1))
        store.latest("C042")        # {"run_id": ..., "customer_id": "C042", "p_alive": ...}
        for chunk in store.iter_scores():   # polars frames, constant memory
            ...

Tables:

- ``schema_version``: one row per applied migration (``version, name, applied_at``).
- ``score_runs``: every run (``run_id, as_of, model_version, started_at, finished_at, status,
  rows``); ``status`` is ``running``, ``complete`` or ``failed``.
- ``scores``: keyed by ``(run_id, customer_id)``, indexed on ``customer_id``; the columns of
  :data:`models.pipeline.SCORE_COLUMNS` plus ``model_version`` (migration 1) and the decision
  columns of :data:`decisions.decide.DECISION_SCHEMA` (migration 2) and the customer's order
  history :data:`decisions.decide.ORDER_HISTORY_SCHEMA` (migration 3).
- ``drift`` (migration 4): one row per run x watched column (``analytics/drift.py``): ``run_id,
  name, kind, psi, level, customers, reference_run_id, reference_customers, profile`` (the
  column's bins and shares in that run, JSON: the next run's reference).
- ``calibration`` (migration 4): a past run's predictions against what then happened, one row
  per run x churn decile (``decile`` 0: every customer of the run); see
  :data:`CALIBRATION_SCHEMA`. Measured again, a run's rows are replaced.

**Atomic runs.** The run's row is committed first with status ``running``; then ONE transaction
inserts every score row (COPY on PostgreSQL, large ``executemany`` chunks on SQLite in WAL mode)
and flips the status to ``complete``. Readers only ever look at complete runs, so a new run
becomes visible all at once; a run that raises is rolled back and marked ``failed``; a process
killed midway leaves its run ``running`` with no rows (its transaction never committed), which
:meth:`ScoreStore.prune` removes later.

**Migrations.** The schema is built by :data:`MIGRATIONS`, applied in order on
:meth:`ScoreStore.open` inside one transaction that holds a lock (``BEGIN IMMEDIATE`` on SQLite,
an advisory lock on PostgreSQL), so two processes opening at once apply each step once. Adding
score columns is one entry::

    Migration(4, "offer value", add_score_columns=(("offer_value", pl.Float64),)),

Supported column dtypes: String, Float64, Int32, Int64, Date, Datetime("us", "UTC"), Boolean.

Nothing here logs customer ids or amounts; URLs in messages have their password masked.
"""

from __future__ import annotations

import io
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Self

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from retain.decisions.decide import DECISION_SCHEMA, ORDER_HISTORY_SCHEMA

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///retain.db"
RUNNING, COMPLETE, FAILED = "running", "complete", "failed"

ColumnSpec = tuple[str, Any]  # (name, polars dtype)

# The scores table as the first migration creates it (run_id comes first, not listed here).
BASE_SCORE_COLUMNS: tuple[ColumnSpec, ...] = (
    ("customer_id", pl.String),
    ("as_of", pl.Date),
    ("horizon_days", pl.Int32),
    ("model_version", pl.String),
    ("p_alive", pl.Float64),
    ("churn_probability", pl.Float64),
    ("expected_orders", pl.Float64),
    ("predicted_revenue", pl.Float64),
    ("clv_12m", pl.Float64),
    ("next_order_date", pl.Date),
    ("next_order_p10", pl.Date),
    ("next_order_p90", pl.Date),
    ("overdue_days", pl.Float64),
    ("due_product_id", pl.String),
    ("due_product_date", pl.Date),
    ("score_source", pl.String),
)

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"  # SQLAlchemy's own SQLite DATETIME storage format


def _checked_filters(filters: dict[str, str | None] | None) -> dict[str, str | None]:
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(FILTER_COLUMNS))
    if unknown:
        raise ValueError(f"cannot filter scores on {', '.join(unknown)}; use "
                         f"{', '.join(FILTER_COLUMNS)}")
    return filters


class RunNotFound(LookupError):
    """No complete run with that id."""


class StoreUnavailable(ConnectionError):
    """The score store cannot be reached or written (down, read-only, disk full); the message
    names the store by its masked URL and what to do."""


_READ_ONLY = ("the store is read-only: give the process write access or use another "
              "--store-url / RETAIN_STORE_URL")
_STORE_HINTS = (
    ("readonly", _READ_ONLY),
    ("read-only", _READ_ONLY),
    ("unable to open database",
     "the database file cannot be opened: check that its directory exists and is writable"),
    ("disk is full", "the disk is full: free space or move the store"),
    ("no space left", "the disk is full: free space or move the store"),
    ("connection refused", "the database server does not answer: start it or check the URL"),
    ("could not translate host name", "the database host is unknown: check the URL"),
    ("name or service not known", "the database host is unknown: check the URL"),
    ("timeout", "the database server did not answer in time"),
    ("password authentication failed", "the database refused the credentials"),
)


def _store_error(url: sa.URL, doing: str, exc: BaseException) -> StoreUnavailable:
    """One masked sentence for a database failure: which store, what failed, the fix."""
    from retain.features.redaction import mask_credentials

    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    hint = next((h for sign, h in _STORE_HINTS if sign in first.lower()), "")
    text = f"cannot {doing} the score store at {mask_url(url)}: {first}"
    return StoreUnavailable(mask_credentials(f"{text} ({hint})" if hint else text))


@dataclass(frozen=True)
class Migration:
    """One step of the schema.

    ``add_score_columns`` declares the (nullable) columns this step adds to ``scores`` as
    ``(name, polars dtype)``; by default ``apply`` adds them with ``ALTER TABLE``. Give another
    ``apply(connection, migration)`` for anything else (it runs inside the migration
    transaction, through SQLAlchemy Core).
    """

    version: int
    name: str
    add_score_columns: tuple[ColumnSpec, ...] = ()
    apply: Callable[[Connection, Migration], None] | None = None

    def run(self, conn: Connection) -> None:
        (self.apply or _add_score_columns)(conn, self)


# ---------------------------------------------------------------------------------------------
# Tables


def _sql_type(dtype: Any) -> sa.types.TypeEngine:
    if dtype == pl.String:
        return sa.Text()
    if dtype == pl.Float64:
        return sa.Double()
    if dtype == pl.Int32:
        return sa.Integer()
    if dtype == pl.Int64:
        return sa.BigInteger()
    if dtype == pl.Date:
        return sa.Date()
    if dtype == pl.Datetime("us", "UTC"):
        return sa.DateTime(timezone=True)
    if dtype == pl.Boolean:
        return sa.Boolean()
    raise TypeError(f"the score store cannot hold a {dtype} column")


def _version_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "schema_version", metadata,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def _runs_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "score_runs", metadata,
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger),
    )


# Byte order on both backends (SQLite's BINARY; PostgreSQL's "C", also faster to index), so
# runs come out in the same order everywhere, and as polars sorts them.
_CUSTOMER_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _scores_table(metadata: sa.MetaData, columns: Sequence[ColumnSpec]) -> sa.Table:
    table = sa.Table(
        "scores", metadata,
        sa.Column("run_id", sa.String(32), nullable=False),
        *[sa.Column(name, _CUSTOMER_ID if name == "customer_id" else _sql_type(dtype),
                    nullable=name != "customer_id")
          for name, dtype in columns],
        sa.PrimaryKeyConstraint("run_id", "customer_id", name="pk_scores"),
    )
    sa.Index("ix_scores_customer_id", table.c.customer_id)
    return table


# A run's drift per watched column (analytics/drift.py); the profile is the next run's reference.
DRIFT_COLUMNS: tuple[ColumnSpec, ...] = (
    ("name", pl.String), ("kind", pl.String), ("psi", pl.Float64), ("level", pl.String),
    ("customers", pl.Int64), ("reference_run_id", pl.String),
    ("reference_customers", pl.Int64), ("profile", pl.String),
)
# A past run's predictions against the outcomes in its horizon (analytics/drift.py), one row
# per run x churn decile; decile 0 is every customer of the run.
CALIBRATION_COLUMNS: tuple[ColumnSpec, ...] = (
    ("as_of", pl.Date), ("horizon_days", pl.Int32), ("model_version", pl.String),
    ("decile", pl.Int32), ("customers", pl.Int64), ("predicted_churn", pl.Float64),
    ("observed_churn", pl.Float64), ("brier", pl.Float64), ("predicted_revenue", pl.Float64),
    ("actual_revenue", pl.Float64), ("revenue_mae", pl.Float64),
    ("predicted_orders", pl.Float64), ("actual_orders", pl.Float64),
    ("measured_at", pl.Datetime("us", "UTC")),
)
CALIBRATION_SCHEMA = {"run_id": pl.String, **dict(CALIBRATION_COLUMNS)}
DRIFT_SCHEMA = {"run_id": pl.String, **dict(DRIFT_COLUMNS)}


def _side_table(metadata: sa.MetaData, name: str, columns: Sequence[ColumnSpec],
                key: tuple[str, ...]) -> sa.Table:
    """A table kept per run beside the scores, keyed by ``run_id`` and ``key``."""
    return sa.Table(
        name, metadata,
        sa.Column("run_id", sa.String(32), nullable=False),
        *[sa.Column(column, _CUSTOMER_ID if column == "name" else _sql_type(dtype),
                    nullable=column not in key)
          for column, dtype in columns],
        sa.PrimaryKeyConstraint("run_id", *key, name=f"pk_{name}"),
    )


def _drift_table(metadata: sa.MetaData) -> sa.Table:
    return _side_table(metadata, "drift", DRIFT_COLUMNS, ("name",))


def _calibration_table(metadata: sa.MetaData) -> sa.Table:
    return _side_table(metadata, "calibration", CALIBRATION_COLUMNS, ("decile",))


def _create_drift_tables(conn: Connection, migration: Migration) -> None:
    metadata = sa.MetaData()
    _drift_table(metadata)
    _calibration_table(metadata)
    metadata.create_all(conn)


def _create_tables(conn: Connection, migration: Migration) -> None:
    metadata = sa.MetaData()
    _runs_table(metadata)
    _scores_table(metadata, migration.add_score_columns)
    metadata.create_all(conn)


def _add_score_columns(conn: Connection, migration: Migration) -> None:
    quote = conn.dialect.identifier_preparer.quote
    for name, dtype in migration.add_score_columns:
        sql_type = _sql_type(dtype).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE scores ADD COLUMN {quote(name)} {sql_type}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "score runs and scores", add_score_columns=BASE_SCORE_COLUMNS,
              apply=_create_tables),
    Migration(2, "decision fields", add_score_columns=tuple(DECISION_SCHEMA.items())),
    # Runs stored before it read these as null.
    Migration(3, "order history", add_score_columns=tuple(ORDER_HISTORY_SCHEMA.items())),
    Migration(4, "drift and calibration", apply=_create_drift_tables),
)
# Columns an export or the segment matrix may filter on (equality).
FILTER_COLUMNS = ("segment", "goal", "channel", "lifecycle_stage", "value_tier",
                  "behaviour_type")


def _check_migrations(migrations: Sequence[Migration]) -> tuple[ColumnSpec, ...]:
    """The scores columns the migrations build, after checking the list is well formed."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")
    columns = tuple(spec for m in migrations for spec in m.add_score_columns)
    names = [name for name, _ in columns]
    if len(set(names)) != len(names) or "run_id" in names:
        raise ValueError(f"score columns declared twice (or run_id): {names}")
    for _, dtype in columns:
        _sql_type(dtype)
    return columns


def mask_url(url: str | sa.URL) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparseable: say nothing of it
        return "<unparseable database URL>"


def _utc(value: Any) -> Any:
    """Datetimes as aware UTC (SQLite hands back naive UTC, PostgreSQL the session's zone)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# The store


def _switch_to_wal(cursor: Any) -> None:
    """Put a SQLite file in WAL mode (once per file; it persists).

    Changing the journal mode can fail with "database is locked" at once, without waiting on
    the busy timeout, while another connection opens the same new file: retry for a while.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class ScoreStore:
    """Score runs in SQLite or PostgreSQL. ``ScoreStore(url).open()``, or ``with``."""

    migrations: tuple[Migration, ...] = MIGRATIONS
    # A run still 'running' this long after it started belongs to a dead process: prune drops it.
    stale_running_after: timedelta = timedelta(hours=6)

    def __init__(self, url: str = DEFAULT_URL) -> None:
        parsed = sa.make_url(url)
        backend = parsed.get_backend_name()
        if backend in ("postgres", "postgresql"):
            if parsed.drivername in ("postgres", "postgresql"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            elif parsed.get_driver_name() != "psycopg":
                raise ValueError(
                    f"score store URL {mask_url(parsed)}: use the psycopg 3 driver "
                    "(postgresql+psycopg://...)")
        elif backend != "sqlite":
            raise ValueError(f"score store URL {mask_url(parsed)}: only sqlite and postgresql "
                             "are supported")
        self._url = parsed
        self._columns = _check_migrations(self.migrations)
        self._names = [name for name, _ in self._columns]
        self._dtypes = dict(self._columns)
        metadata = sa.MetaData()
        self._version = _version_table(metadata)
        self._runs = _runs_table(metadata)
        self._scores = _scores_table(metadata, self._columns)
        self._drift = _drift_table(metadata)
        self._calibration = _calibration_table(metadata)
        self._engine: Engine | None = None
        self._schema_version: int | None = None

    def __repr__(self) -> str:
        return f"ScoreStore({mask_url(self._url)!r})"

    @property
    def url(self) -> str:
        """The URL with its password masked."""
        return mask_url(self._url)

    @property
    def is_sqlite(self) -> bool:
        return self._url.get_backend_name() == "sqlite"

    @property
    def columns(self) -> list[str]:
        """The scores columns, in table order (without ``run_id``)."""
        return list(self._names)

    @property
    def schema_version(self) -> int:
        if self._schema_version is None:
            raise RuntimeError("the score store is not open")
        return self._schema_version

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> Self:
        """Connect, then create or migrate the schema. Returns self."""
        if self._engine is not None:
            return self
        engine = self._create_engine()
        try:
            self._schema_version = self._migrate(engine)
        except (sa.exc.OperationalError, OSError) as exc:
            engine.dispose()
            raise _store_error(self._url, "open", exc) from None
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._schema_version = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self._url, hide_parameters=True, pool_pre_ping=True)
        engine = sa.create_engine(self._url, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy, not the sqlite3 module, decides when transactions begin (below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 60000")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the write lock up front (no deadlock when upgrading a read lock);
            # readers begin a plain deferred transaction and never wait for a writer (WAL).
            write = conn.get_execution_options().get("retain_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _engine_or_raise(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the score store is not open: call open() or use `with`")
        return self._engine

    @property
    def engine(self) -> Engine:
        """The open engine, for tables kept beside the scores (serving/sessions.py)."""
        return self._engine_or_raise()

    def write_connection(self) -> Connection:
        """A connection whose transactions take the write lock up front on SQLite."""
        return self._write_connection(self._engine_or_raise())

    def _write_connection(self, engine: Engine) -> Connection:
        return engine.connect().execution_options(retain_write=True)

    def _migrate(self, engine: Engine) -> int:
        newest = self.migrations[-1].version
        with self._write_connection(engine) as conn, conn.begin():
            if not self.is_sqlite:
                # Serializes concurrent openers of this schema (released at commit).
                conn.execute(sa.text(
                    "SELECT pg_advisory_xact_lock(hashtext('retain.score_store'), "
                    "hashtext(coalesce(current_schema(), '')))"))
            if not sa.inspect(conn).has_table("schema_version"):
                self._version.create(conn)
            applied = set(conn.scalars(sa.select(self._version.c.version)))
            if applied and max(applied) > newest:
                raise RuntimeError(
                    f"the score store at {mask_url(self._url)} has schema version "
                    f"{max(applied)}, newer than this retain knows ({newest}): upgrade retain")
            for migration in self.migrations:
                if migration.version in applied:
                    continue
                migration.run(conn)
                conn.execute(sa.insert(self._version).values(
                    version=migration.version, name=migration.name, applied_at=_now()))
                log.info("score store: applied migration %d (%s)", migration.version,
                         migration.name)
        return newest

    # -- writing --------------------------------------------------------------------------------

    def _on_chunk(self, rows_written: int) -> None:
        """Called inside the write transaction after each chunk (a hook for tests)."""

    def write_run(self, scores: pl.DataFrame | Iterable[pl.DataFrame], *, model_version: str,
                  as_of: date, chunk_size: int = 50_000) -> str:
        """Store one row per customer under a new run; returns its ``run_id``.

        The rows become visible to readers all at once, when the run is complete. Columns of
        the schema missing from ``scores`` are stored as nulls; ``as_of`` and ``model_version``
        come from the arguments (a frame column of that name must agree with them). A column
        the schema does not know, a missing or duplicated customer_id, or a value that does not
        cast to its column's dtype raise ``ValueError`` before anything is written. NaN is
        stored as null.

        ``scores`` may also be an iterable of frames (``--engine spark`` streams its written
        parts): each is checked as it comes, inside the run's one transaction, so a bad one
        leaves the run failed and nothing visible; ids must not repeat across frames (the
        Spark engine's buckets hold disjoint customers).
        """
        engine = self._engine_or_raise()
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if isinstance(as_of, datetime):
            as_of = as_of.date()
        if not isinstance(as_of, date):
            raise TypeError(f"as_of must be a date, not {type(as_of).__name__}")
        model_version = str(model_version)
        if not model_version:
            raise ValueError("model_version must not be empty")
        if isinstance(scores, pl.DataFrame):
            checked: Iterable[pl.DataFrame] = [self._prepare(scores, model_version, as_of)]
        else:
            checked = (self._prepare(part, model_version, as_of) for part in scores)
        run_id = uuid.uuid4().hex
        started = time.perf_counter()
        try:
            with self._write_connection(engine) as conn, conn.begin():
                conn.execute(sa.insert(self._runs).values(
                    run_id=run_id, as_of=as_of, model_version=model_version, started_at=_now(),
                    status=RUNNING, rows=None))
        except sa.exc.OperationalError as exc:
            raise _store_error(self._url, "write to", exc) from None
        try:
            with self._write_connection(engine) as conn, conn.begin():
                rows = 0
                for frame in checked:
                    self._insert_rows(conn, self._encode(frame, run_id), chunk_size)
                    rows += frame.height
                conn.execute(sa.update(self._runs).where(self._runs.c.run_id == run_id)
                             .values(status=COMPLETE, finished_at=_now(), rows=rows))
        except BaseException as exc:
            self._mark_failed(engine, run_id, exc)
            if isinstance(exc, sa.exc.OperationalError):
                raise _store_error(self._url, "write to", exc) from None
            raise
        log.info("score run %s complete: %d rows in %.1fs (model %s, as of %s)", run_id,
                 rows, time.perf_counter() - started, model_version, as_of)
        return run_id

    def _mark_failed(self, engine: Engine, run_id: str, exc: BaseException) -> None:
        log.warning("score run %s failed (%s); the previous scores stay", run_id,
                    type(exc).__name__)
        try:
            with self._write_connection(engine) as conn, conn.begin():
                conn.execute(sa.delete(self._scores).where(self._scores.c.run_id == run_id))
                conn.execute(sa.update(self._runs).where(self._runs.c.run_id == run_id)
                             .values(status=FAILED, finished_at=_now()))
        except Exception as mark_exc:  # noqa: BLE001 - the original error matters more
            log.warning("score run %s: could not mark it failed (%s)", run_id,
                        type(mark_exc).__name__)

    def _prepare(self, scores: pl.DataFrame, model_version: str, as_of: date) -> pl.DataFrame:
        """Validate ``scores`` and return it with exactly the schema's columns and dtypes."""
        if not isinstance(scores, pl.DataFrame):
            raise TypeError(f"scores must be a polars DataFrame, not {type(scores).__name__}")
        unknown = [c for c in scores.columns if c not in self._dtypes]
        if unknown:
            raise ValueError(
                f"score column(s) {unknown} are not in the score store schema "
                f"(version {self.migrations[-1].version}); add a migration in "
                "serving/store.py or drop them before writing")
        if "customer_id" not in scores.columns:
            raise ValueError("scores have no customer_id column")
        ids = scores["customer_id"]
        if ids.null_count():
            raise ValueError(f"{ids.null_count()} score row(s) have no customer_id")
        if ids.n_unique() != scores.height:
            raise ValueError(f"customer_id is not unique: "
                             f"{scores.height - ids.n_unique()} duplicated row(s)")
        for name, expected in (("as_of", as_of), ("model_version", model_version)):
            if name in scores.columns:
                column = scores[name]
                try:
                    column = column.cast(self._dtypes[name])
                except pl.exceptions.PolarsError:
                    raise ValueError(f"column {name!r} cannot be read as "
                                     f"{self._dtypes[name]}") from None
                if scores.height and not (column == expected).fill_null(False).all():
                    raise ValueError(f"column {name!r} differs from the run's "
                                     f"{name}={expected}")
        exprs = []
        for name, dtype in self._columns:
            if name == "as_of":
                exprs.append(pl.lit(as_of, pl.Date).alias(name))
            elif name == "model_version":
                exprs.append(pl.lit(model_version, pl.String).alias(name))
            elif name not in scores.columns:
                exprs.append(pl.lit(None, dtype).alias(name))
            else:
                exprs.append(self._cast(scores.schema[name], name, dtype))
        try:
            frame = scores.select(exprs)
        except pl.exceptions.PolarsError:
            # Find the culprit without echoing any value.
            for name, dtype in self._columns:
                if name in scores.columns:
                    try:
                        scores.select(self._cast(scores.schema[name], name, dtype))
                    except pl.exceptions.PolarsError:
                        raise ValueError(f"column {name!r} ({scores.schema[name]}) cannot be "
                                         f"stored as {dtype}") from None
            raise ValueError("scores cannot be stored") from None
        for name, dtype in self._columns:
            if dtype == pl.String and frame[name].str.contains("\x00", literal=True).any():
                raise ValueError(f"column {name!r} holds NUL characters")
        return frame

    @staticmethod
    def _cast(source: Any, name: str, dtype: Any) -> pl.Expr:
        expr = pl.col(name)
        if dtype == pl.Datetime("us", "UTC") and isinstance(source, pl.Datetime):
            if source.time_zone is None:  # naive means UTC
                expr = expr.dt.replace_time_zone("UTC")
            return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        expr = expr.cast(dtype, strict=True)
        if dtype == pl.Float64:
            expr = expr.fill_nan(None)
        return expr

    def _encode(self, frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
        """``run_id`` and the columns as the driver takes them: SQLite gets ISO text for
        dates and times; PostgreSQL gets CSV for COPY, where polars writes dates as ISO."""
        exprs = [pl.lit(run_id, pl.String).alias("run_id")]
        for name, dtype in self._columns:
            if dtype == pl.Datetime("us", "UTC"):
                fmt = _SQLITE_DATETIME if self.is_sqlite else _SQLITE_DATETIME + "+00:00"
                exprs.append(pl.col(name).dt.replace_time_zone(None).dt.to_string(fmt))
            elif dtype == pl.Date and self.is_sqlite:
                exprs.append(pl.col(name).dt.to_string("%Y-%m-%d"))
            else:
                exprs.append(pl.col(name))
        return frame.select(exprs)

    def _insert_rows(self, conn: Connection, encoded: pl.DataFrame, chunk_size: int) -> None:
        quote = conn.dialect.identifier_preparer.quote
        names = encoded.columns
        column_list = ", ".join(quote(n) for n in names)
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        if self.is_sqlite:
            sql = (f"INSERT INTO scores ({column_list}) "
                   f"VALUES ({', '.join('?' for _ in names)})")
            cursor = dbapi.cursor()
            try:
                for offset in range(0, encoded.height, chunk_size):
                    chunk = encoded.slice(offset, chunk_size)
                    values = [chunk[name].to_list() for name in names]
                    cursor.executemany(sql, zip(*values, strict=True))
                    self._on_chunk(offset + chunk.height)
            finally:
                cursor.close()
            return
        with dbapi.cursor() as cursor, cursor.copy(
                f"COPY scores ({column_list}) FROM STDIN (FORMAT csv)") as copy:
            for offset in range(0, encoded.height, chunk_size):
                chunk = encoded.slice(offset, chunk_size)
                buffer = io.BytesIO()
                chunk.write_csv(buffer, include_header=False)
                copy.write(buffer.getvalue())
                self._on_chunk(offset + chunk.height)

    # -- reading --------------------------------------------------------------------------------

    def _read(self, statement: sa.Executable) -> list[dict]:
        with self._engine_or_raise().connect() as conn:
            return [{k: _utc(v) for k, v in row._mapping.items()}
                    for row in conn.execute(statement)]

    def _complete_runs(self) -> sa.Select:
        runs = self._runs
        return (sa.select(runs).where(runs.c.status == COMPLETE)
                .order_by(runs.c.finished_at.desc(), runs.c.run_id.desc()))

    def latest_run(self, as_of: date | None = None) -> dict | None:
        """The most recent complete run (``run_id, as_of, model_version, started_at,
        finished_at, status, rows``), or None; with ``as_of``, the most recent for that date."""
        statement = self._complete_runs()
        if as_of is not None:
            statement = statement.where(self._runs.c.as_of == as_of)
        rows = self._read(statement.limit(1))
        return rows[0] if rows else None

    def latest_run_through(self, as_of: date) -> dict | None:
        """The complete run with the latest as-of date on or before ``as_of`` (the newest run
        of that date), or None: the predictions known on that date (cohorts, the report)."""
        runs = self._runs
        statement = (sa.select(runs).where(runs.c.status == COMPLETE, runs.c.as_of <= as_of)
                     .order_by(runs.c.as_of.desc(), runs.c.finished_at.desc(),
                               runs.c.run_id.desc()).limit(1))
        rows = self._read(statement)
        return rows[0] if rows else None

    def complete_run(self, run_id: str) -> dict | None:
        """The complete run ``run_id`` (as :meth:`latest_run` gives it), or None."""
        rows = self._read(self._complete_runs().where(self._runs.c.run_id == run_id))
        return rows[0] if rows else None

    def runs(self, limit: int = 20) -> list[dict]:
        """The newest runs of any status, newest first."""
        runs = self._runs
        return self._read(sa.select(runs)
                          .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
                          .limit(limit))

    def latest(self, customer_id: str) -> dict | None:
        """The customer's row from the most recent complete run that has them, with its
        ``run_id``; None for a customer no complete run has."""
        scores, runs = self._scores, self._runs
        statement = (
            sa.select(scores)
            .join(runs, runs.c.run_id == scores.c.run_id)
            .where(scores.c.customer_id == customer_id, runs.c.status == COMPLETE)
            .order_by(runs.c.finished_at.desc(), runs.c.run_id.desc())
            .limit(1)
        )
        rows = self._read(statement)
        return rows[0] if rows else None

    def page(self, run_id: str, *, after: str | None = None, limit: int = 100,
             filters: dict[str, str | None] | None = None) -> list[dict]:
        """Up to ``limit`` rows of the complete run ``run_id`` with ``customer_id`` after
        ``after`` (keyset pagination), ordered by customer_id, each row with its ``run_id``.

        The primary key (run_id, customer_id) serves the seek and the order, so a page costs
        ``limit`` index steps wherever it starts, on SQLite and PostgreSQL alike; with
        ``filters`` (as :meth:`iter_scores`) it also steps over the rows they leave out.
        ``RunNotFound`` when the run is not (or no longer) a complete run.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        filters = _checked_filters(filters)
        self._resolve_run(run_id)
        scores = self._scores
        statement = sa.select(scores).where(scores.c.run_id == run_id)
        if after is not None:
            statement = statement.where(scores.c.customer_id > after)
        for name, value in sorted(filters.items()):
            column = scores.c[name]
            statement = statement.where(column.is_(None) if value is None else column == value)
        return self._read(statement.order_by(scores.c.customer_id).limit(limit))

    def _resolve_run(self, run_id: str | None) -> str | None:
        if run_id is None:
            run = self.latest_run()
            return run["run_id"] if run else None
        found = self._read(sa.select(self._runs.c.run_id).where(
            self._runs.c.run_id == run_id, self._runs.c.status == COMPLETE))
        if not found:
            raise RunNotFound(f"no complete score run {run_id!r}")
        return run_id

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=dict(self._columns))

    def scores(self, run_id: str | None = None,
               columns: Sequence[str] | None = None) -> pl.DataFrame:
        """Every row of a complete run (the latest by default), ordered by customer_id; an
        empty frame when there is no complete run yet. ``columns``: only these (a run's few
        predictions read in a fraction of the time of all its columns)."""
        chunks = list(self.iter_scores(run_id, chunk_size=200_000, columns=columns))
        if not chunks:
            return self.empty_frame().select(columns or self._names)
        return pl.concat(chunks, rechunk=True)

    def iter_scores(self, run_id: str | None = None, chunk_size: int = 50_000,
                    filters: dict[str, str | None] | None = None,
                    columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        """A complete run (the latest by default) as polars frames of at most ``chunk_size``
        rows, ordered by customer_id, read with a streaming cursor (constant memory).

        ``filters`` keeps rows whose columns (of :data:`FILTER_COLUMNS`) equal the values given
        (None matches a null, e.g. ``{"channel": None}`` for customers with no channel).
        The run is looked up now (``RunNotFound`` is raised by this call, before any chunk, so an
        export can answer 404 before it starts streaming); rows are read as they are consumed.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        filters = _checked_filters(filters)
        unknown = sorted(set(columns or ()) - set(self._names))
        if unknown:
            raise ValueError(f"no score column(s) {', '.join(unknown)}")
        engine = self._engine_or_raise()
        resolved = self._resolve_run(run_id)
        if resolved is None:
            return iter(())
        return self._stream(engine, resolved, chunk_size, filters, columns)

    def segment_matrix(self, run_id: str | None = None) -> pl.DataFrame:
        """The segment x goal x channel matrix of a complete run (the latest by default):
        ``segment, goal, channel, customers, predicted_revenue, expected_incremental_revenue,
        contact_cost``, largest cells first. Empty when there is no complete run."""
        scores = self._scores
        resolved = self._resolve_run(run_id)
        statement = (
            sa.select(
                scores.c.segment, scores.c.goal, scores.c.channel,
                sa.func.count().label("customers"),
                sa.func.coalesce(sa.func.sum(scores.c.predicted_revenue), 0.0)
                .label("predicted_revenue"),
                sa.func.coalesce(sa.func.sum(scores.c.expected_incremental_revenue), 0.0)
                .label("expected_incremental_revenue"),
                sa.func.coalesce(sa.func.sum(scores.c.contact_cost), 0.0).label("contact_cost"),
            )
            .where(scores.c.run_id == resolved)
            .group_by(scores.c.segment, scores.c.goal, scores.c.channel)
        )
        schema = {"segment": pl.String, "goal": pl.String, "channel": pl.String,
                  "customers": pl.Int64, "predicted_revenue": pl.Float64,
                  "expected_incremental_revenue": pl.Float64, "contact_cost": pl.Float64}
        rows = self._read(statement) if resolved is not None else []
        return pl.DataFrame(rows, schema=schema, orient="row").sort(
            ["customers", "segment", "goal", "channel"], descending=[True, False, False, False],
            nulls_last=True)

    def _stream(self, engine: Engine, run_id: str, chunk_size: int,
                filters: dict[str, str | None],
                columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        specs = ([(n, self._dtypes[n]) for n in columns] if columns
                 else list(self._columns))
        quote = engine.dialect.identifier_preparer.quote
        placeholder = "?" if self.is_sqlite else "%s"
        conditions = [f"run_id = {placeholder}"]
        parameters: list[str] = [run_id]
        for name, value in sorted(filters.items()):
            if value is None:
                conditions.append(f"{quote(name)} IS NULL")
            else:
                conditions.append(f"{quote(name)} = {placeholder}")
                parameters.append(value)
        sql = (f"SELECT {', '.join(quote(n) for n, _ in specs)} FROM scores "
               f"WHERE {' AND '.join(conditions)} ORDER BY customer_id")
        raw_schema = {name: self._raw_dtype(dtype) for name, dtype in specs}
        dbapi = engine.raw_connection()
        try:
            if self.is_sqlite:
                cursor = dbapi.cursor()  # one statement: one snapshot (WAL)
            else:
                cursor = dbapi.cursor(name=f"retain_scores_{uuid.uuid4().hex}", binary=True)
                cursor.itersize = chunk_size
            try:
                cursor.execute(sql, tuple(parameters))
                while rows := cursor.fetchmany(chunk_size):
                    yield self._decode(pl.DataFrame(rows, schema=raw_schema, orient="row"),
                                       specs)
            finally:
                cursor.close()
        finally:
            try:
                dbapi.rollback()
            finally:
                dbapi.close()

    def _raw_dtype(self, dtype: Any) -> Any:
        if self.is_sqlite and (dtype == pl.Date or dtype == pl.Datetime("us", "UTC")):
            return pl.String
        if self.is_sqlite and dtype == pl.Boolean:
            return pl.Int64
        return dtype

    def _decode(self, frame: pl.DataFrame,
                specs: Sequence[ColumnSpec] | None = None) -> pl.DataFrame:
        if not self.is_sqlite:
            return frame
        exprs = []
        for name, dtype in specs or self._columns:
            if dtype == pl.Date:
                exprs.append(pl.col(name).str.to_date("%Y-%m-%d"))
            elif dtype == pl.Datetime("us", "UTC"):
                exprs.append(pl.col(name).str.to_datetime(
                    "%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC"))
            elif dtype == pl.Boolean:
                exprs.append(pl.col(name).cast(pl.Boolean))
            else:
                exprs.append(pl.col(name))
        return frame.select(exprs)

    # -- housekeeping ---------------------------------------------------------------------------

    def prune(self, keep_runs: int = 10) -> int:
        """Keep the ``keep_runs`` newest complete runs; delete older runs and their scores.

        Failed runs and runs still marked running (a killed process) go too once they are
        older than the oldest kept run (running ones only after :attr:`stale_running_after`).
        Returns the number of runs deleted.
        """
        if keep_runs < 1:
            raise ValueError("keep_runs must be at least 1")
        engine = self._engine_or_raise()
        runs = self._runs
        with self._write_connection(engine) as conn, conn.begin():
            rows = conn.execute(sa.select(runs.c.run_id, runs.c.status, runs.c.started_at,
                                          runs.c.finished_at)).all()
            complete = sorted((r for r in rows if r.status == COMPLETE),
                              key=lambda r: (_utc(r.finished_at), r.run_id), reverse=True)
            kept = complete[:keep_runs]
            if not kept:
                return 0
            cutoff = min(_utc(r.started_at) for r in kept)
            stale = _now() - self.stale_running_after
            doomed = [r.run_id for r in complete[keep_runs:]]
            doomed += [r.run_id for r in rows
                       if (r.status == FAILED and _utc(r.started_at) < cutoff)
                       or (r.status == RUNNING and _utc(r.started_at) < min(cutoff, stale))]
            for start in range(0, len(doomed), 500):
                batch = doomed[start:start + 500]
                for table in (self._scores, self._drift, self._calibration):
                    conn.execute(sa.delete(table).where(table.c.run_id.in_(batch)))
                conn.execute(sa.delete(runs).where(runs.c.run_id.in_(batch)))
        if doomed:
            log.info("score store: pruned %d run(s), kept %d", len(doomed), len(kept))
        return len(doomed)

    # -- drift and calibration (analytics/drift.py) ---------------------------------------------

    def write_drift(self, run_id: str, table: pl.DataFrame, *,
                    reference_run_id: str | None = None) -> int:
        """Keep a run's drift rows (``name, kind, psi, level, customers, reference_customers,
        profile``; missing columns are null), replacing any it had. Returns the rows written."""
        return self._replace_rows(self._drift, DRIFT_COLUMNS, [run_id], table.with_columns(
            pl.lit(run_id, pl.String).alias("run_id"),
            pl.lit(reference_run_id, pl.String).alias("reference_run_id")))

    def drift(self, run_id: str | None = None) -> pl.DataFrame:
        """A complete run's drift rows (the latest run by default), the most shifted first
        (:data:`DRIFT_SCHEMA`); empty when the run has none (scored before drift was kept)."""
        resolved = self._resolve_run(run_id)
        if resolved is None:
            return pl.DataFrame(schema=DRIFT_SCHEMA)
        table = self._drift
        return self._frame(sa.select(table).where(table.c.run_id == resolved),
                           DRIFT_SCHEMA).sort(["psi", "name"], descending=[True, False],
                                              nulls_last=True)

    def write_calibration(self, frame: pl.DataFrame) -> int:
        """Keep calibration rows (:data:`CALIBRATION_SCHEMA`), replacing every row of the runs
        they are for. Returns the rows written."""
        runs = frame.get_column("run_id").unique().to_list() if frame.height else []
        return self._replace_rows(self._calibration, CALIBRATION_COLUMNS, runs, frame)

    def calibration(self) -> pl.DataFrame:
        """Every stored calibration row, by as-of date, run and decile."""
        table = self._calibration
        return self._frame(sa.select(table), CALIBRATION_SCHEMA).sort(
            ["as_of", "run_id", "decile"])

    def _replace_rows(self, table: sa.Table, columns: Sequence[ColumnSpec], run_ids: list[str],
                      frame: pl.DataFrame) -> int:
        names = ["run_id", *(name for name, _ in columns)]
        dtypes = {"run_id": pl.String, **dict(columns)}
        # NaN is stored as null, as in scores.
        full = frame.select([
            (pl.col(n).fill_nan(None) if dtypes[n] == pl.Float64 else pl.col(n))
            if n in frame.columns else pl.lit(None, dtypes[n]).alias(n) for n in names])
        rows = list(full.iter_rows(named=True))
        engine = self._engine_or_raise()
        try:
            with self._write_connection(engine) as conn, conn.begin():
                for start in range(0, len(run_ids), 500):
                    conn.execute(sa.delete(table).where(
                        table.c.run_id.in_(run_ids[start:start + 500])))
                if rows:
                    conn.execute(sa.insert(table), rows)
        except sa.exc.OperationalError as exc:
            raise _store_error(self._url, "write to", exc) from None
        return len(rows)

    def _frame(self, statement: sa.Select, schema: dict[str, Any]) -> pl.DataFrame:
        rows = self._read(statement)
        return pl.DataFrame([[row[name] for name in schema] for row in rows], schema=schema,
                            orient="row")
