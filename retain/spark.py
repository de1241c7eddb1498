"""The Spark engine of ``retain features``, ``retain score`` and ``retain train`` (``--engine spark``).

The same per-customer functions as the local engine, run on partitions of whole customers:

1. read Parquet (a file or a directory of parts) or a catalog table (``table:NAME``);
2. give every line a bucket, a hash of its normalized customer id (the contract's rule:
   spaces stripped, ``17850.0`` is ``17850``), so a customer's lines, and any exact duplicate
   line, meet in one bucket; guest lines (no customer id) are spread over the buckets;
3. validate each bucket's Arrow batch with the contract's own checks
   (``features.contract.validate_transactions``, the loader on rows in memory) in
   ``groupBy(bucket).applyInArrow``: the same rules, rejects, notes and as-of window as a
   local run; the driver sums the per-bucket reports into one and gives the one error;
4. run ``features.customers.customer_features`` / ``features.products.customer_product_features``
   (features) or ``decisions.decide.score_and_decide`` with the registered pipeline (score) on
   each bucket, again with ``applyInArrow``, and write Parquet (a directory of parts);
5. or, for training (:func:`training_sample`), compute each customer's stratum and hash per
   bucket, keep ``training.sample``'s stratified sample with a window over the strata, and
   bring only the sampled customers' lines to the driver, where training runs as locally;
   what describes the whole shop comes from every customer, per bucket, merged on the driver:
   the RFM summary (:func:`training_rfm`), the data report's counts (:func:`history_counts`)
   and the shop-wide figures of segments (:func:`shop_reference`).

The pipeline is sent once per executor: its pickled bytes are broadcast and unpickled lazily
into a module-level cache keyed by model version. Shop-wide inputs are computed once on the
driver before the per-bucket pass: the default as-of date (the day after the last line) and the
order channels seen (the ``channel_share_*`` columns), as the local engine computes them.

Nothing here is imported by ``retain --help`` or the local engine; PySpark is the optional
``spark`` extra and Java comes from ``scripts/java.sh``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from retain.features.contract import DataError, LoadReport, ReadOptions

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from retain.decisions.rules import Rules

DEFAULT_MASTER = "local[*]"
TABLE_PREFIX = "table:"
BUCKET = "_bucket"
_FILE, _POS = "_src_file", "_src_row"
_REPORT = "_report"
_SHOWN_ROWS = 5
# The contract's columns after loading (``load_transactions`` less its ``_row``), as Arrow types.
TRANSACTION_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("order_id", pa.string()), ("ts", pa.timestamp("us")),
    ("amount", pa.float64()), ("product_id", pa.string()), ("quantity", pa.float64()),
    ("channel", pa.string()),
])
# Customers table after ``load_customers``: these plus ``consent_<channel>`` booleans.
_CUSTOMER_TYPES = {"customer_id": pa.string(), "signup_ts": pa.timestamp("us"),
                   "acquisition_channel": pa.string()}


# Contacts log after ``load_contacts``.
CONTACT_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("ts", pa.timestamp("us")), ("channel", pa.string()),
    ("campaign", pa.string()), ("cost", pa.float64()), ("control", pa.bool_()),
])
_SIDE = "_side"


class SparkUnavailable(RuntimeError):
    """PySpark or Java is missing: what to install, in one line."""


# --- the session ---------------------------------------------------------------------------------


def session(master: str | None = None, partitions: int | None = None) -> SparkSession:
    """The active session (spark-submit'ed, or a notebook's), else a new one on ``master``
    (default: env SPARK_MASTER, else ``local[*]``). Executors run this Python, so they import the
    same retain (on a cluster, install retain with the ``spark`` extra on every node)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("--engine spark needs PySpark: pip install 'retain[spark]'") from None
    import warnings

    # retain's Arrow functions do not go through pandas; PySpark's warning about pandas 3 is
    # about its pandas UDFs, which retain does not use.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if not os.environ.get("JAVA_HOME") and not _on_path("java"):
        raise SparkUnavailable("--engine spark needs Java 17+: run scripts/java.sh (Debian's "
                               "openjdk-17-jre-headless) and export JAVA_HOME")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark logs every failed task with its Java stack trace: the user gets retain's one line
    # instead (spark_errors), so only fatal JVM messages reach the terminal.
    quiet = f"-Dlog4j2.configurationFile={_log_config()}"
    builder = (
        SparkSession.builder.master(master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER)
        .appName("retain")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Naive timestamps stay naive (the contract's UTC) whatever the machine's zone is.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(partitions or 8))
    )
    if not os.environ.get("SPARK_CONF_DIR"):  # a cluster's own logging is left alone
        builder = builder.config("spark.driver.extraJavaOptions", quiet)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")
    return spark


def _log_config() -> Path:
    path = Path(tempfile.gettempdir()) / "retain-spark-log4j2.properties"
    if not path.exists():
        path.write_text("rootLogger.level = fatal\nrootLogger.appenderRef.stderr.ref = console\n"
                        "appender.console.type = Console\nappender.console.name = console\n"
                        "appender.console.target = SYSTEM_ERR\n"
                        "appender.console.layout.type = PatternLayout\n"
                        "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n")
    return path


def _on_path(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


# --- errors: one line for the user, never a JVM stack trace --------------------------------------


@contextmanager
def spark_errors(source: str) -> Iterator[None]:
    """Turn what Spark raises into the ``DataError`` the local engine would give: a DataError
    raised in a Python worker comes back inside a Spark exception (its message is fished out);
    a file Spark cannot read is named with its first line of reason."""
    try:
        yield
    except DataError:
        raise
    except Exception as exc:
        text = str(exc)
        marker = "DataError: "
        if marker in text:
            message = text.split(marker, 1)[1]
            # The worker's traceback follows the message in Spark's text: keep the message.
            lines = []
            for line in message.splitlines():
                if line.startswith(("\tat ", "  File ", "JVM stacktrace", "Traceback")):
                    break
                lines.append(line)
            raise DataError("\n".join(lines).strip()) from None
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            first = next((line.strip() for line in text.splitlines() if line.strip()),
                         type(exc).__name__)
            raise DataError(f"{source}: Spark could not read it: {first[:300]}") from None
        raise


# --- reading -------------------------------------------------------------------------------------


def read_source(spark: SparkSession, source: str) -> DataFrame:
    """Parquet (a file or a directory of parts) or ``table:NAME`` (a catalog table), with the
    position of every line (file and 0-based row) for error messages."""
    from pyspark.sql import functions as F

    if source.startswith(TABLE_PREFIX):
        name = source[len(TABLE_PREFIX):]
        with spark_errors(source):
            frame = spark.table(name)
        return frame.withColumn(_FILE, F.lit(name)).withColumn(
            _POS, F.monotonically_increasing_id())
    path = Path(source)
    if not path.exists():
        raise DataError(f"{source}: file not found")
    if path.is_file() and not source.lower().endswith((".parquet", ".pq")):
        raise DataError(f"{source}: --engine spark reads Parquet (a file or a directory of "
                        f"parts) or {TABLE_PREFIX}NAME; convert the file first, or use the "
                        "local engine")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    with spark_errors(source):
        # Absolute: the JVM keeps the working directory it started in.
        frame = spark.read.parquet(str(path.resolve()))
        frame = frame.select("*", F.col("_metadata.file_name").alias(_FILE),
                             F.col("_metadata.row_index").alias(_POS))
    return frame


def customer_key(frame: DataFrame, column: str) -> Column:
    """The contract's customer id as text (``features.contract.normalize_customer_id``) as a
    Spark expression, for bucketing only: whitespace stripped, ``17850.0`` -> ``17850``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType, DoubleType, FloatType

    col = F.col(column)
    if isinstance(frame.schema[column].dataType, FloatType | DoubleType | DecimalType):
        # Spark writes 1.785E7 where polars writes 17850000.0: integral floats as integers.
        return F.when(col == F.floor(col), col.cast("long").cast("string")).otherwise(
            col.cast("string"))
    text = F.regexp_replace(col.cast("string"), r"^\s+|\s+$", "")
    return F.regexp_replace(text, r"^(-?\d+)\.0+$", "$1")


def with_buckets(frame: DataFrame, column: str, partitions: int) -> DataFrame:
    """``frame`` with ``_bucket``: a hash of the customer id modulo ``partitions``; lines without
    one (guest orders, rejected anyway) are spread by input partition rather than piled into
    one bucket."""
    from pyspark.sql import functions as F

    key = customer_key(frame, column)
    bucket = F.when(key.isNull() | (key == ""), F.pmod(F.spark_partition_id(), F.lit(partitions)))
    return frame.withColumn(
        BUCKET, bucket.otherwise(F.pmod(F.xxhash64(key), F.lit(partitions))).cast("int"))


# --- validation: the contract's loader on each bucket --------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """What the contract's loader needs, sent to every bucket."""

    kind: str  # "transactions" or "customers"
    source: str
    as_of: date | None = None
    window_end: date | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    options: ReadOptions = field(default_factory=ReadOptions)


def _load_bucket(table: pa.Table, spec: LoadSpec, schema: pa.Schema) -> pa.Table:
    """Validate one bucket with the contract's loader, on the Arrow batch as it comes
    (``features.contract.validate_transactions``; the customers and contacts loaders read the
    same in-memory source): the valid rows as ``schema``, plus one row whose ``_report`` holds
    the bucket's report and its rejected rows (JSON)."""
    from retain.features.contract import (
        _IN_MEMORY,
        _InMemory,
        load_contacts,
        load_customers,
        validate_transactions,
    )

    bucket = table.column(BUCKET)[0].as_py()
    table = table.sort_by([(_FILE, "ascending"), (_POS, "ascending")])  # the file's order
    positions = _Positions(table.column(_FILE), table.column(_POS))
    raw = pl.from_arrow(table.drop_columns([BUCKET, _FILE, _POS]))
    assert isinstance(raw, pl.DataFrame)
    report: dict[str, Any] = {"rows_read": raw.height}
    frame: pl.DataFrame | None = None
    with tempfile.TemporaryDirectory(prefix="retain-spark-") as tmp:
        rejects = Path(tmp) / "rejected.csv"
        try:
            if spec.kind == "transactions":
                loaded = validate_transactions(
                    raw, spec.source, as_of=spec.as_of, window_end=spec.window_end,
                    column_map=spec.column_map, on_bad_rows="skip", rejects_path=rejects,
                    options=spec.options)
            else:
                loader = load_customers if spec.kind == "customers" else load_contacts
                try:
                    loaded = loader(_InMemory(raw, _IN_MEMORY), column_map=spec.column_map,
                                    on_bad_rows="skip", rejects_path=rejects)
                except DataError as exc:
                    raise DataError(str(exc).replace(_IN_MEMORY, spec.source)) from None
            frame = loaded.frame
            report.update(_report_fields(loaded.report, positions))
        except DataError as exc:
            text = str(exc)
            if "no valid rows left" not in text and "every line is dated on or after" not in text:
                raise
            # Nothing valid in this bucket (all rejected, or all after the window): the
            # counts come from the side file; the lines outside the window are counted apart.
            if "every line is dated" in text:
                report["after_as_of"] = raw.height
        report["rejects"] = _rejected_rows(rejects, positions) if rejects.exists() else []
        report["rejected"] = _count_reasons(report["rejects"])
    columns = [pa.nulls(0, f.type) for f in schema if f.name not in (BUCKET, _REPORT)]
    data = pa.Table.from_arrays(columns, schema=pa.schema(
        [f for f in schema if f.name not in (BUCKET, _REPORT)]))
    if frame is not None and frame.height:
        data = frame.drop("_row").to_arrow().cast(data.schema)
    data = data.append_column(BUCKET, pa.array([bucket] * data.num_rows, pa.int32()))
    data = data.append_column(_REPORT, pa.nulls(data.num_rows, pa.string()))
    marker = {f.name: pa.nulls(1, f.type) for f in schema}
    marker[BUCKET] = pa.array([bucket], pa.int32())
    marker[_REPORT] = pa.array([json.dumps(report, default=str)], pa.string())
    return pa.concat_tables([data.select(schema.names),
                             pa.table(marker, schema=schema)])


class _Positions:
    """Each bucket row's place in the source (file, 0-based row), looked up only for the few
    rows a report names (rejected or duplicated): no Python object per line."""

    def __init__(self, files: pa.ChunkedArray, rows: pa.ChunkedArray) -> None:
        self.files, self.rows = files, rows

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.files[index].as_py(), self.rows[index].as_py()


def _report_fields(report: LoadReport, positions: _Positions) -> dict[str, Any]:
    # LoadReport's duplicate lines are 1-based rows of the bucket's file: back to the source's.
    return {
        "rows_read": report.rows_read, "rows_kept": report.rows_kept,
        "duplicates": getattr(report, "duplicates", 0),
        "duplicate_positions": [positions[line - 1] for line in
                                getattr(report, "duplicate_lines", [])],
        "duplicates_dropped": getattr(report, "duplicates_dropped", 0),
        "float_ids_rewritten": getattr(report, "float_ids_rewritten", 0),
        "header_lines": getattr(report, "header_lines", 0),
        "amount_from_price": getattr(report, "amount_from_price", False),
        "after_as_of": getattr(report, "after_as_of", 0),
        "cancelled_lines": getattr(report, "cancelled_lines", 0),
        "returned_lines": getattr(report, "returned_lines", 0),
        "after_as_of_first": getattr(report, "after_as_of_first", None),
        "after_as_of_last": getattr(report, "after_as_of_last", None),
    }


def _rejected_rows(path: Path, positions: _Positions) -> list[dict[str, Any]]:
    frame = pl.read_csv(path, infer_schema=False)
    unit = frame.columns[0]  # "row" (Parquet is read by row)
    rows = []
    for record in frame.iter_rows(named=True):
        file, pos = positions[int(record.pop(unit)) - 1]
        reason = record.pop("reason")
        rows.append({"file": file, "pos": pos, "reason": reason, "values": record})
    return rows


def _count_reasons(rejects: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rejects:
        counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    return counts


@dataclass
class SparkLoaded:
    """Validated lines (with ``_bucket``, persisted), the as-of date and the summed report."""

    frame: DataFrame
    as_of: date
    report: LoadReport
    channels: list[str]


def load_transactions(spark: SparkSession, source: str, *, partitions: int,
                      as_of: date | None = None, window_end: date | None = None,
                      column_map: Mapping[str, str] | None = None, on_bad_rows: str = "fail",
                      rejects_path: Path | None = None,
                      options: ReadOptions | None = None) -> SparkLoaded:
    """Read, bucket and validate transactions on Spark under the contract's rules (see module
    doc); ``DataError`` with the one message a local run gives for bad rows."""
    from pyspark.sql import functions as F

    column_map = dict(column_map or {})
    options = options or ReadOptions()
    raw = read_source(spark, source)
    customer_column = column_map.get("customer_id", "customer_id")
    if customer_column not in raw.columns:
        raise DataError(f"{source}: missing required column 'customer_id'"
                        + (f" (mapped from {customer_column!r})" if customer_column != "customer_id"
                           else "") + f"; found {', '.join(c for c in raw.columns if c not in (_FILE, _POS))}")
    _check_slash_dates(raw, column_map.get("ts", "ts"), options, partitions, customer_column)
    spec = LoadSpec("transactions", source, as_of=as_of, window_end=window_end or as_of,
                    column_map=column_map, options=options)
    schema = _with_meta(TRANSACTION_SCHEMA)
    bucketed = with_buckets(raw, customer_column, partitions)
    validated = bucketed.groupBy(BUCKET).applyInArrow(
        lambda table: _load_bucket(table, spec, schema), _spark_schema(schema))
    validated = validated.persist()
    with spark_errors(source):
        reports = [json.loads(row[0]) for row in
                   validated.filter(F.col(_REPORT).isNotNull()).select(_REPORT).collect()]
    report = _merge_reports(source, reports, as_of, window_end or as_of, rejects_path)
    if report.rows_rejected and on_bad_rows == "fail":
        validated.unpersist()
        raise DataError(describe_rejects(source, reports))
    if report.rows_rejected and rejects_path is not None:
        write_rejects(reports, rejects_path)
        report.rejects_path = rejects_path
    lines = validated.filter(F.col(_REPORT).isNull()).drop(_REPORT)
    with spark_errors(source):
        stats = lines.agg(F.count(F.lit(1)).alias("n"), F.max("ts").alias("last")).first()
        channels = sorted(r[0] for r in lines.select("channel").where(
            F.col("channel").isNotNull()).distinct().collect())
    if not stats["n"]:
        if report.after_as_of and not report.rows_rejected:
            raise DataError(f"{source}: every line is dated on or after {window_end or as_of}; "
                            "choose a later --as-of")
        raise DataError(f"{source}: no valid rows left after rejecting bad rows")
    cutoff = as_of or (stats["last"].date() + timedelta(days=1))
    report.as_of = report.as_of or cutoff
    return SparkLoaded(frame=lines, as_of=cutoff, report=report, channels=channels)


def _check_slash_dates(raw: DataFrame, ts: str, options: ReadOptions, partitions: int,
                       customer_column: str) -> None:
    """Slash dates are month first unless a first field above 12 shows the file is day first:
    decided per file locally, so on Spark every bucket must see the same evidence. When some
    bucket would decide otherwise, ask for the format rather than read dates two ways."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    if options.date_format or ts not in raw.columns or not isinstance(
            raw.schema[ts].dataType, StringType):
        return
    first = F.regexp_extract(F.trim(F.col(ts)), r"^(\d{1,2})/\d{1,2}/\d{2}", 1)
    per_bucket = (with_buckets(raw, customer_column, partitions)
                  .groupBy(BUCKET).agg(F.max(F.when(first != "", first.cast("int"))).alias("m"))
                  .collect())
    found = [row["m"] for row in per_bucket if row["m"] is not None]
    if found and max(found) > 12 and min(found) <= 12:
        raise DataError(f"column '{ts}': slash dates with a first field above 12 are day first "
                        "(31/01/2024), but some partitions hold only dates that read either "
                        "way; pass --date-format, e.g. '%d/%m/%Y %H:%M', so every partition "
                        "reads them alike")


def _merge_reports(source: str, reports: list[dict[str, Any]], as_of: date | None,
                   window_end: date | None, rejects_path: Path | None) -> LoadReport:
    """One LoadReport from the buckets' reports, as ``load_transactions`` gives for a file."""
    report = LoadReport(source=source, rows_read=0, rows_kept=0)
    rejected: dict[str, int] = {}
    duplicates: list[tuple[str, int]] = []
    firsts, lasts = [], []
    for part in reports:
        report.rows_read += part.get("rows_read", 0)
        report.rows_kept += part.get("rows_kept", 0)
        for reason, count in part.get("rejected", {}).items():
            rejected[reason] = rejected.get(reason, 0) + count
        report.duplicates += part.get("duplicates", 0)
        duplicates += [tuple(p) for p in part.get("duplicate_positions", [])]
        report.duplicates_dropped += part.get("duplicates_dropped", 0)
        report.float_ids_rewritten += part.get("float_ids_rewritten", 0)
        report.header_lines += part.get("header_lines", 0)
        report.amount_from_price |= bool(part.get("amount_from_price"))
        report.after_as_of += part.get("after_as_of", 0)
        report.cancelled_lines += part.get("cancelled_lines", 0)
        report.returned_lines += part.get("returned_lines", 0)
        if part.get("after_as_of_first"):
            firsts.append(date.fromisoformat(part["after_as_of_first"]))
            lasts.append(date.fromisoformat(part["after_as_of_last"]))
    report.rejected = rejected
    report.duplicate_lines = [_where(p, _one_file(reports)) for p in sorted(duplicates)[:5]]  # type: ignore[misc]
    report.as_of, report.window_end = as_of, window_end
    if firsts:
        report.after_as_of_first, report.after_as_of_last = min(firsts), max(lasts)
    return report


def _one_file(reports: list[dict[str, Any]]) -> bool:
    files = {r["file"] for part in reports for r in part.get("rejects", [])}
    files |= {p[0] for part in reports for p in part.get("duplicate_positions", [])}
    return len(files) <= 1


def _where(position: tuple[str, int], one_file: bool) -> int | str:
    """A 1-based row, as the local engine counts Parquet rows; ``part:row`` across parts."""
    file, pos = position
    return pos + 1 if one_file else f"{file}:{pos + 1}"


def describe_rejects(source: str, reports: list[dict[str, Any]]) -> str:
    """The local engine's bad-rows message: per reason the first rows and their values."""
    from retain.features.contract import GUEST_HINT, MISSING_CUSTOMER

    rows = sorted((r for part in reports for r in part.get("rejects", [])),
                  key=lambda r: (r["file"], r["pos"]))
    one_file = _one_file(reports)
    lines = [f"{source}: {len(rows)} bad row(s); nothing was loaded."]
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_reason.setdefault(row["reason"], []).append(row)
    for reason, group in by_reason.items():
        column, why = reason.split(": ", 1)
        shown = group[:_SHOWN_ROWS]
        where = ", ".join(str(_where((r["file"], r["pos"]), one_file)) for r in shown)
        more = f" and {len(group) - len(shown)} more" if len(group) > len(shown) else ""
        values = ""
        if all(column in r["values"] for r in shown):
            values = f" (values: {', '.join(repr(r['values'][column]) for r in shown)})"
        lines.append(f"  column '{column}': {why} at rows {where}{more}{values}")
    if f"customer_id: {MISSING_CUSTOMER}" in by_reason:
        lines.append(f"  {GUEST_HINT}")
    lines.append("Fix the rows, or pass --on-bad-rows=skip to write them to a side file and go on.")
    return "\n".join(lines)


def write_rejects(reports: list[dict[str, Any]], path: Path) -> None:
    """Every rejected row with its place and reason (CSV), as ``--on-bad-rows=skip`` writes."""
    rows = sorted((r for part in reports for r in part.get("rejects", [])),
                  key=lambda r: (r["file"], r["pos"]))
    one_file = _one_file(reports)
    frame = pl.DataFrame([{"row": str(_where((r["file"], r["pos"]), one_file)),
                           "reason": r["reason"], **r["values"]} for r in rows],
                         infer_schema_length=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)


# --- features ------------------------------------------------------------------------------------


def _with_meta(schema: pa.Schema) -> pa.Schema:
    return pa.schema([*schema, pa.field(BUCKET, pa.int32()), pa.field(_REPORT, pa.string())])


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(_plain_strings(schema))


def _plain_strings(schema: pa.Schema) -> pa.Schema:
    """polars writes large strings; Spark's Arrow exchange expects the plain ones."""
    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
                      for f in schema])


def _transactions(table: pa.Table) -> pl.DataFrame:
    """A bucket's validated lines as the local engine holds them (``load`` less ``_row``)."""
    frame = pl.from_arrow(table.select(TRANSACTION_SCHEMA.names))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _empty_transactions() -> pl.DataFrame:
    frame = pl.from_arrow(TRANSACTION_SCHEMA.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def customer_features_table(table: pa.Table, as_of: date, channels: list[str],
                            horizon_days: int | None, schema: pa.Schema) -> pa.Table:
    """One bucket: ``features.customers.customer_features`` (and, with a horizon, the labels
    joined as the local command joins them)."""
    from retain.features.customers import customer_features
    from retain.features.labels import labels

    tx = _transactions(table)
    frame = customer_features(tx, as_of, channels)
    if horizon_days is not None:
        frame = frame.join(labels(tx, as_of, horizon_days), on="customer_id", how="left")
    return frame.to_arrow().cast(schema)


def product_features_table(table: pa.Table, as_of: date, schema: pa.Schema) -> pa.Table:
    """One bucket: ``features.products.customer_product_features``."""
    from retain.features.products import customer_product_features

    return customer_product_features(_transactions(table), as_of).to_arrow().cast(schema)


def features(loaded: SparkLoaded, out: Path, products_out: Path | None,
             horizon_days: int | None = None) -> dict[str, int]:
    """Write customer features (and customer x product features) as Parquet directories;
    returns the row counts written."""
    from retain.features.customers import customer_features
    from retain.features.labels import labels
    from retain.features.products import customer_product_features

    as_of, channels = loaded.as_of, loaded.channels
    empty = _empty_transactions()
    sample = customer_features(empty, as_of, channels)
    if horizon_days is not None:
        sample = sample.join(labels(empty, as_of, horizon_days), on="customer_id", how="left")
    schema = _plain_strings(sample.to_arrow().schema)
    customers = loaded.frame.groupBy(BUCKET).applyInArrow(
        lambda table: customer_features_table(table, as_of, channels, horizon_days, schema),
        _spark_schema(schema))
    counts = {"customers": _write(customers, out)}
    if products_out is not None:
        product_schema = _plain_strings(customer_product_features(empty, as_of).to_arrow().schema)
        products = loaded.frame.groupBy(BUCKET).applyInArrow(
            lambda table: product_features_table(table, as_of, product_schema),
            _spark_schema(product_schema))
        counts["products"] = _write(products, products_out)
    return counts


def _write(frame: DataFrame, out: Path) -> int:
    with spark_errors(str(out)):
        frame.write.mode("overwrite").parquet(str(out.resolve()))
        return frame.sparkSession.read.parquet(str(out.resolve())).count()


def used_lines(loaded: SparkLoaded) -> tuple[int, datetime | None, datetime | None]:
    """Lines before the as-of date, and their first and last timestamps."""
    from pyspark.sql import functions as F

    used = loaded.frame.filter(F.col("ts") < F.lit(datetime.combine(loaded.as_of,
                                                                    datetime.min.time())))
    row = used.agg(F.count(F.lit(1)).alias("n"), F.min("ts").alias("a"),
                   F.max("ts").alias("b")).first()
    return row["n"], row["a"], row["b"]


def no_purchase_customers(loaded: SparkLoaded) -> int:
    """Customers with lines before the as-of date but no purchase (every order netting to
    zero or less: free lines, refunds, cancellations), counted on Spark: the customers the
    local engine's ``commands.common.no_purchase_candidates`` finds missing from its output
    (``features.segments``: a purchase is an order with a positive net amount), without
    collecting the log."""
    from pyspark.sql import functions as F

    cutoff = F.lit(datetime.combine(loaded.as_of, datetime.min.time()))
    # Only a customer with a line of zero or less can have no purchase: the others are not
    # grouped (few lines are such, as locally).
    candidates = (loaded.frame.filter((F.col("ts") < cutoff) & (F.col("amount") <= 0))
                  .select("customer_id").distinct())
    lines = loaded.frame.filter(F.col("ts") < cutoff).join(candidates, "customer_id", "left_semi")
    orders = lines.groupBy("customer_id", "order_id").agg(F.sum("amount").alias("net"))
    return (orders.groupBy("customer_id").agg(F.max("net").alias("best"))
            .filter(F.col("best") <= 0).count())


# --- score ---------------------------------------------------------------------------------------

# Unpickled pipelines per executor process, by model version: each is sent once (a broadcast)
# and read once however many buckets the executor scores.
_PIPELINES: dict[str, Any] = {}


def _pipeline(version: str, payload: Any) -> Any:
    pipeline = _PIPELINES.get(version)
    if pipeline is None:
        pipeline = _PIPELINES[version] = pickle.loads(payload.value)
    return pipeline


@dataclass(frozen=True)
class ScoreSpec:
    version: str
    as_of: date
    rules: Rules
    lang: str
    schema: pa.Schema
    consent_columns: list[str] | None = None  # the customers table's, when given
    channels: Any = None  # ChannelMeasurements from the contacts log, when given


def score_table(table: pa.Table, side: pa.Table | None, spec: ScoreSpec,
                payload: Any) -> pa.Table:
    """One bucket: the registered pipeline's scores and decisions, as ``retain score`` writes
    them locally (``decisions.decide.score_and_decide``, then model_version, then the order
    history). ``side``: the bucket's customers and contacts rows (``_side`` says which)."""
    import copy

    from retain.decisions.decide import ORDER_HISTORY_COLUMNS, score_and_decide

    pipeline = _pipeline(spec.version, payload)
    consents = contacts = None
    if side is not None:
        frame = pl.from_arrow(side)
        assert isinstance(frame, pl.DataFrame)
        if spec.consent_columns is not None:
            consents = frame.filter(pl.col(_SIDE) == "customers").select(spec.consent_columns)
        if spec.channels is not None:
            contacts = frame.filter(pl.col(_SIDE) == "contacts").select(CONTACT_SCHEMA.names)
    if spec.channels is not None:
        # Measured shop-wide on the driver (measure_channels above), as the local command
        # measures from the whole log: the bucket's contacts only keep the frequency cap.
        pipeline = copy.copy(pipeline)
        pipeline.channel_measurements = spec.channels
    scores = score_and_decide(pipeline, _transactions(table), spec.as_of, rules=spec.rules,
                              consents=consents, contacts=contacts, lang=spec.lang,
                              measure_channels_from_contacts=False)
    scores = scores.with_columns(pl.lit(spec.version).alias("model_version"))
    scores = scores.select(pl.exclude(ORDER_HISTORY_COLUMNS), *ORDER_HISTORY_COLUMNS)
    return scores.to_arrow().cast(spec.schema)


def load_side(spark: SparkSession, kind: str, source: str, partitions: int, on_bad_rows: str,
              rejects_path: Path | None, column_map: Mapping[str, str] | None = None
              ) -> DataFrame:
    """The customers table or the contacts log (``kind``), bucketed like the transactions and
    validated per bucket by the contract's ``load_customers`` / ``load_contacts`` (a customer's
    rows, duplicated ids among them, meet in one bucket). ``column_map``: the table's own
    (``features.contract.table_map``), applied before the bucketing, as the loaders do."""
    from pyspark.sql import functions as F

    from retain.features.contract import channel_name

    raw = read_source(spark, source)
    renames = {src: target for target, src in (column_map or {}).items() if src != target}
    missing = [src for src in renames if src not in raw.columns]
    if missing:
        raise DataError(f"{source}: mapped column(s) {', '.join(map(repr, missing))} not found "
                        f"(columns: {', '.join(raw.columns)})")
    if renames:
        raw = raw.drop(*[t for t in renames.values() if t in raw.columns and t not in renames])
        raw = raw.withColumnsRenamed(renames)
    if "customer_id" not in raw.columns:
        raise DataError(f"{source}: missing required column 'customer_id'")
    if kind == "customers":
        fields = [pa.field("customer_id", pa.string())]
        for name in raw.columns:
            if name in _CUSTOMER_TYPES and name != "customer_id":
                fields.append(pa.field(name, _CUSTOMER_TYPES[name]))
            elif name.lower().startswith("consent_"):
                # The loader names it by its channel's one name (Consent_E-mail: consent_email).
                fields.append(pa.field("consent_" + channel_name(name[len("consent_"):]),
                                       pa.bool_()))
        schema = _with_meta(pa.schema(fields))
    else:
        schema = _with_meta(CONTACT_SCHEMA)
    spec = LoadSpec(kind, source)
    validated = with_buckets(raw, "customer_id", partitions).groupBy(BUCKET).applyInArrow(
        lambda table: _load_bucket(table, spec, schema), _spark_schema(schema)).persist()
    with spark_errors(source):
        reports = [json.loads(row[0]) for row in
                   validated.filter(F.col(_REPORT).isNotNull()).select(_REPORT).collect()]
    if any(part.get("rejects") for part in reports):
        if on_bad_rows == "fail":
            raise DataError(describe_rejects(source, reports))
        if rejects_path is not None:
            write_rejects(reports, rejects_path)
    return validated.filter(F.col(_REPORT).isNull()).drop(_REPORT).withColumn(
        _SIDE, F.lit(kind))


def responses_table(lines: pa.Table, contacts: pa.Table, as_of: date, rules: Rules) -> pa.Table:
    """One bucket: ``decisions.channels.responses`` (which messages got an order)."""
    from retain.decisions.channels import responses

    if lines.num_rows == 0 or contacts.num_rows == 0:
        return _RESPONSES.empty_table()
    log = pl.from_arrow(contacts.select(CONTACT_SCHEMA.names))
    assert isinstance(log, pl.DataFrame)
    judged = responses(log, _transactions(lines), as_of, rules.channels.response_days,
                       REACHABLE_DAYS).select(_RESPONSES.names).collect()
    return judged.to_arrow().cast(_RESPONSES)


REACHABLE_DAYS = 180  # decisions.channels.measure_channels' default
_RESPONSES = pa.schema([("customer_id", pa.string()), ("ts", pa.timestamp("us")),
                        ("channel", pa.string()), ("cost", pa.float64()),
                        ("control", pa.bool_()), ("responded", pa.bool_())])


def measure_channels(loaded: SparkLoaded, contacts: DataFrame, rules: Rules) -> Any:
    """``decisions.channels.measure_channels`` on Spark: the responses per bucket, measured
    once on the driver (shop-wide control rates per period)."""
    from retain.decisions.channels import measure_responses

    as_of = loaded.as_of
    judged = loaded.frame.groupBy(BUCKET).cogroup(contacts.groupBy(BUCKET)).applyInArrow(
        lambda left, right: responses_table(left, right, as_of, rules),
        _spark_schema(_RESPONSES))
    with spark_errors("contacts"):
        frame = pl.from_arrow(judged.toArrow())
    assert isinstance(frame, pl.DataFrame)
    return measure_responses(frame, as_of, rules.channels)


def score(spark: SparkSession, loaded: SparkLoaded, pipeline: Any, version: str, out: Path, *,
          rules: Rules, lang: str, consents: DataFrame | None = None,
          contacts: DataFrame | None = None) -> int:
    """Score and decide every customer, bucket by bucket, into Parquet parts at ``out``;
    returns the rows written. ``consents`` and ``contacts``: from :func:`load_side`."""
    from retain.decisions.decide import ORDER_HISTORY_COLUMNS, score_and_decide

    if pipeline.reference is None:
        raise DataError("--engine spark scores with the shop-wide figures fitted at training; "
                        "this model has none: retrain it with `retain train`")
    # The output schema: the local code run on one made-up customer (an empty frame has no
    # decisions to type), typed as the local command writes it.
    probe = pl.DataFrame({
        "customer_id": ["probe"], "order_id": ["1"], "ts": [datetime.combine(
            loaded.as_of - timedelta(days=30), datetime.min.time())], "amount": [10.0],
        "product_id": ["p"], "quantity": [1.0], "channel": [None]},
        schema=pl.Schema(zip(TRANSACTION_SCHEMA.names,
                             [pl.String, pl.String, pl.Datetime("us"), pl.Float64, pl.String,
                              pl.Float64, pl.String], strict=True)))
    sample = score_and_decide(pipeline, probe, loaded.as_of, rules=rules, lang=lang)
    sample = sample.with_columns(pl.lit(version).alias("model_version"))
    sample = sample.select(pl.exclude(ORDER_HISTORY_COLUMNS), *ORDER_HISTORY_COLUMNS)
    schema = _plain_strings(sample.to_arrow().schema)
    measured = measure_channels(loaded, contacts, rules) if contacts is not None else None
    consent_columns = None
    if consents is not None:
        consent_columns = [c for c in consents.columns if c not in (BUCKET, _SIDE)]
    spec = ScoreSpec(version=version, as_of=loaded.as_of, rules=rules, lang=lang, schema=schema,
                     consent_columns=consent_columns, channels=measured)
    payload = spark.sparkContext.broadcast(pickle.dumps(pipeline))
    sides = [frame for frame in (consents, contacts) if frame is not None]
    if not sides:
        scored = loaded.frame.groupBy(BUCKET).applyInArrow(
            lambda table: score_table(table, None, spec, payload), _spark_schema(schema))
    else:
        side = sides[0]
        for other in sides[1:]:  # one frame: cogroup takes two sides, the lines and this
            side = side.unionByName(other, allowMissingColumns=True)

        def cogrouped(left: pa.Table, right: pa.Table) -> pa.Table:
            if left.num_rows == 0:  # customers without a line: nobody to score
                return _plain_strings(schema).empty_table()
            return score_table(left, right, spec, payload)

        scored = loaded.frame.groupBy(BUCKET).cogroup(side.groupBy(BUCKET)).applyInArrow(
            cogrouped, _spark_schema(schema))
    return _write(scored, out)


# --- training: the stratified sample of customers ---------------------------------------------

_STRATA_SCHEMA = pa.schema([("customer_id", pa.string()), ("orders_bucket", pa.int8()),
                            ("recency_bucket", pa.int8()), ("label", pa.bool_()),
                            ("_hash", pa.int64())])
_SIGN = 1 << 63


def strata_table(table: pa.Table, as_of: date, horizon_days: int) -> pa.Table:
    """One bucket: ``training.sample.customer_strata`` of its customers (a per-customer
    function) and each one's ``customer_hash``, flipped into a signed int64 that sorts as the
    unsigned hash does (Spark has no unsigned long)."""
    import numpy as np

    from retain.training.sample import customer_hash, customer_strata

    strata = customer_strata(_transactions(table), as_of, horizon_days)
    hashes = (customer_hash(strata["customer_id"]) ^ np.uint64(_SIGN)).view(np.int64)
    return strata.with_columns(pl.Series("_hash", hashes)).to_arrow().cast(_STRATA_SCHEMA)


def training_sample(loaded: SparkLoaded, horizon_days: int, sample_customers: int
                    ) -> tuple[Any, pl.DataFrame]:
    """``training.sample.draw_sample`` on Spark, and the lines training reads: the sample
    (a ``CustomerSample``, or None when the shop has no more customers than
    ``sample_customers``) and the validated lines of its customers only (of every customer
    without a sample), collected to the driver through Arrow.

    Each bucket computes its customers' strata and hashes; the per-stratum counts come to the
    driver (at most a few dozen strata), which sets each stratum's quota exactly as
    ``select_sample`` does (``ceil(size * N / customers)``); a window keeps, per stratum, the
    customers whose rank by hash is within the quota: the same customers as a local run."""
    import math

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from retain.training.sample import STRATA, CustomerSample

    as_of = loaded.as_of
    lines = loaded.frame.select(*TRANSACTION_SCHEMA.names)
    strata = loaded.frame.groupBy(BUCKET).applyInArrow(
        lambda table: strata_table(table, as_of, horizon_days),
        _spark_schema(_STRATA_SCHEMA)).persist()
    try:
        counts = pl.from_arrow(strata.groupBy(*STRATA).count().toArrow())
        assert isinstance(counts, pl.DataFrame)
        total = int(counts["count"].sum()) if counts.height else 0
        if total <= sample_customers:
            return None, _collect_lines(lines)
        rate = sample_customers / total
        quotas = counts.with_columns(
            (pl.col("count").cast(pl.Float64) * rate).ceil().cast(pl.Int64).alias("_quota"))
        quota_frame = strata.sparkSession.createDataFrame(
            quotas.select(*STRATA, "_quota").to_arrow().cast(pa.schema([
                ("orders_bucket", pa.int8()), ("recency_bucket", pa.int8()),
                ("label", pa.bool_()), ("_quota", pa.int64())])).to_pandas())
        # Ties of the 64-bit hash (different ids, same hash) are broken by the id.
        rank = F.row_number().over(Window.partitionBy(*STRATA).orderBy("_hash", "customer_id"))
        kept = (strata.join(F.broadcast(quota_frame), on=list(STRATA))
                .withColumn("_rank", rank).filter(F.col("_rank") <= F.col("_quota"))
                .select("customer_id", *STRATA).persist())
        sampled = pl.from_arrow(kept.groupBy(*STRATA).count().toArrow())
        assert isinstance(sampled, pl.DataFrame)
        table = (counts.rename({"count": "customers"})
                 .join(sampled.rename({"count": "sampled"}), on=list(STRATA), how="left")
                 .with_columns(pl.col("customers").cast(pl.UInt32),
                               pl.col("sampled").fill_null(0).cast(pl.UInt32))
                 .select(*STRATA, "customers", "sampled").sort(STRATA))
        ids = pl.from_arrow(kept.select("customer_id").toArrow())
        assert isinstance(ids, pl.DataFrame)
        chosen = _collect_lines(lines.join(kept.select("customer_id"), on="customer_id",
                                           how="left_semi"))
        kept.unpersist()
        assert math.isfinite(rate)
        return CustomerSample(ids["customer_id"].sort(), total, table), chosen
    finally:
        strata.unpersist()


def rfm_table(table: pa.Table, as_of: date, schema: pa.Schema) -> pa.Table:
    """One bucket: ``features.customers.rfm_summary`` of its customers at ``as_of``."""
    from retain.features.customers import rfm_summary

    return rfm_summary(_transactions(table), as_of).to_arrow().cast(schema)


def training_rfm(loaded: SparkLoaded) -> pl.DataFrame:
    """Every customer's RFM summary at the as-of date (``features.customers.rfm_summary``, a
    per-customer function run per bucket), collected to the driver, by customer id: what the
    probabilistic models fit (they group it, ``models.btyd.grouped_rfm``), one row per
    customer rather than every line."""
    from retain.features.customers import rfm_summary

    as_of = loaded.as_of
    schema = _plain_strings(rfm_summary(_empty_transactions(), as_of).to_arrow().schema)
    rfm = loaded.frame.groupBy(BUCKET).applyInArrow(
        lambda table: rfm_table(table, as_of, schema), _spark_schema(schema))
    with spark_errors("transactions"):
        table = rfm.toArrow()
    out = pl.from_arrow(table.cast(schema) if table.num_rows else schema.empty_table())
    assert isinstance(out, pl.DataFrame)
    return out.sort("customer_id")


# --- training: the shop-wide figures, from every customer ---------------------------------------
# Training fits on the sample's lines, but what describes the shop (the data report, the
# eligibility, the figures segments compare with) is computed from every customer: per bucket
# the same per-customer code as locally, then a few shop figures merged on the driver.

_COUNTS_SCHEMA = pa.schema([("counts", pa.string())])
_REFERENCE_SCHEMA = pa.schema([("clv_12m", pa.float64()), ("revenue", pa.float64()),
                               ("aov", pa.float64()), ("interval_median", pa.float64())])


def history_counts_table(table: pa.Table, as_of: date) -> pa.Table:
    """One bucket: ``training.data_report.HistoryCounts`` of its lines, as one JSON row."""
    from retain.training.data_report import HistoryCounts

    counts = HistoryCounts.of(_transactions(table), as_of)
    return pa.table({"counts": pa.array([counts.to_json()], pa.string())})


def history_counts(loaded: SparkLoaded) -> Any:
    """``training.data_report``'s counts over every customer's lines: each bucket's
    ``HistoryCounts`` (sums, extremes, histograms of orders per customer and of days between
    orders) merged on the driver, so ``data_report(..., counts=)`` equals the local report on
    the whole file (its medians are exact: the histograms hold whole numbers)."""
    from retain.training.data_report import HistoryCounts

    as_of = loaded.as_of
    parts = loaded.frame.groupBy(BUCKET).applyInArrow(
        lambda table: history_counts_table(table, as_of), _spark_schema(_COUNTS_SCHEMA))
    with spark_errors("transactions"):
        rows = parts.collect()
    return HistoryCounts.merge([HistoryCounts.from_json(row[0]) for row in rows])


def reference_inputs_table(table: pa.Table, as_of: date, key: str, payload: Any) -> pa.Table:
    """One bucket: what ``decisions.segments.ShopReference.fit`` reads of each customer, from
    the fitted pipeline's features and scores (``ScoringPipeline.features`` and
    ``score_features``, as ``training.train.fit_decision_inputs`` computes them)."""
    pipeline = _pipeline(key, payload)
    frame, products = pipeline.features(_transactions(table), as_of)
    scores = pipeline.score_features(frame, products, as_of)
    return pa.table({
        "clv_12m": scores["clv_12m"].cast(pl.Float64).to_arrow(),
        **{name: frame[name].cast(pl.Float64).to_arrow()
           for name in ("revenue", "aov", "interval_median")},
    }, schema=_REFERENCE_SCHEMA)


def shop_reference(loaded: SparkLoaded, pipeline: Any) -> Any:
    """``decisions.segments.ShopReference`` of every customer at the as-of date: per bucket the
    fitted pipeline's features and scores, then Spark's exact ``percentile`` aggregates (linear
    interpolation, as numpy's quantile) over all customers; only the 2 x 1001 quantiles and two
    medians reach the driver. The pipeline is sent once per executor (a broadcast)."""
    import uuid

    import numpy as np
    from pyspark.sql import functions as F

    from retain.decisions.segments import _LEVELS, ShopReference

    as_of = loaded.as_of
    key = f"train-{uuid.uuid4().hex}"  # an unregistered pipeline: cached under its own key
    payload = loaded.frame.sparkSession.sparkContext.broadcast(pickle.dumps(pipeline))
    inputs = loaded.frame.groupBy(BUCKET).applyInArrow(
        lambda table: reference_inputs_table(table, as_of, key, payload),
        _spark_schema(_REFERENCE_SCHEMA))
    levels = [float(level) for level in _LEVELS]

    def quantile_input(name: str) -> Column:
        # ShopReference.fit: missing values count as 0 and NaN is left out (np.nanquantile).
        value = F.coalesce(F.col(name), F.lit(0.0))
        return F.when(F.isnan(value), F.lit(None)).otherwise(value)

    with spark_errors("transactions"):
        row = inputs.agg(
            F.count(F.lit(1)).alias("n"),
            F.percentile(quantile_input("clv_12m"), levels).alias("clv"),
            F.percentile(quantile_input("revenue"), levels).alias("revenue"),
            # polars' median: nulls left out.
            F.percentile("aov", 0.5).alias("aov"),
            F.percentile("interval_median", 0.5).alias("interval")).first()
    payload.unpersist()
    if not row["n"]:
        raise ValueError("no customers to take shop-wide figures from")
    return ShopReference(
        clv_quantiles=np.array(row["clv"], dtype=np.float64),
        revenue_quantiles=np.array(row["revenue"], dtype=np.float64),
        median_aov=float(row["aov"] or 0.0),
        median_interval=float(row["interval"] or 30.0),
    )


def _collect_lines(frame: DataFrame) -> pl.DataFrame:
    """Validated lines to the driver, typed as the local loader gives them, in a fixed order
    (customer, time, order, product: Spark keeps no file order across buckets)."""
    with spark_errors("transactions"):
        table = frame.toArrow()
    out = pl.from_arrow(table.cast(TRANSACTION_SCHEMA) if table.num_rows else
                        TRANSACTION_SCHEMA.empty_table())
    assert isinstance(out, pl.DataFrame)
    return out.sort("customer_id", "ts", "order_id", "product_id", maintain_order=True)


def read_written(path: Path, batch_rows: int = 200_000) -> Iterator[pl.DataFrame]:
    """A written Parquet directory in frames of at most ``batch_rows`` rows (the driver never
    holds more than one)."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet")
    for batch in dataset.to_batches(batch_size=batch_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


__all__ = [
    "DEFAULT_MASTER",
    "TABLE_PREFIX",
    "SparkLoaded",
    "SparkUnavailable",
    "customer_key",
    "describe_rejects",
    "features",
    "history_counts",
    "load_side",
    "load_transactions",
    "measure_channels",
    "no_purchase_customers",
    "read_source",
    "read_written",
    "score",
    "session",
    "shop_reference",
    "spark_errors",
    "training_rfm",
    "training_sample",
    "used_lines",
    "with_buckets",
]
