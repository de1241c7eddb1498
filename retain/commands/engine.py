"""``--engine spark`` for ``retain features``, ``retain score`` and ``retain train``: the options and
the Spark side of the commands (``retain.spark`` does the work; this turns it into the commands' output)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from retain.commands.common import (
    fail,
    horizon_coverage,
    note_log_ends_early,
    read_options,
    report_rejects,
    say_no_purchase,
)
from retain.progress import console, print_note, step

if TYPE_CHECKING:
    from retain.commands.common import TransactionSettings
    from retain.decisions.rules import Rules
    from retain.spark import SparkLoaded

EngineOpt = Annotated[
    Literal["local", "spark"],
    typer.Option("--engine", help="local: this machine (polars and numpy). spark: the same "
                 "per-customer functions on each partition of customers, on --spark-master; "
                 "reads Parquet (a file or a directory of parts) or table:NAME, writes Parquet "
                 "directories."),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option("--spark-master", metavar="<url>", help="Spark master (local[*], "
                 "spark://host:7077, yarn, ...). Default: env SPARK_MASTER, else local[*]; a "
                 "spark-submit'ed session is used as it is.", show_default=False),
]
PartitionsOpt = Annotated[
    int,
    typer.Option("--partitions", min=1, help="Spark: partitions of customers (a hash of "
                 "customer_id). Aim for 0.5-2M lines each."),
]


def _spark(master: str | None, partitions: int):
    from retain.spark import SparkUnavailable, session

    try:
        with step("Starting Spark"):
            return session(master, partitions)
    except SparkUnavailable as exc:
        raise fail(str(exc)) from None


def _parquet_out(path: Path, flag: str) -> None:
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise fail(f"{flag} {path}: --engine spark writes Parquet (a directory of parts); "
                   "name it .parquet")


def spark_load(spark, config: TransactionSettings, rejects: Path, partitions: int,
               horizon_days: int | None = None) -> SparkLoaded:
    """``commands.common.load`` on Spark: the same notes, rejects and errors."""
    from datetime import timedelta

    from retain.features.contract import DataError
    from retain.spark import load_transactions

    window_end = (config.as_of + timedelta(days=horizon_days)
                  if horizon_days is not None and config.as_of is not None else None)
    if config.query:
        raise fail("--query reads a database; with --engine spark give Parquet or table:NAME")
    try:
        with step("Reading and validating transactions (Spark)"):
            loaded = load_transactions(
                spark, config.transactions or "", partitions=partitions, as_of=config.as_of,
                window_end=window_end, column_map=config.column_map,
                on_bad_rows=config.on_bad_rows, rejects_path=rejects,
                options=read_options(config))
    except DataError as exc:
        raise fail(str(exc)) from None
    report_rejects(loaded.report)
    for note in loaded.report.notes():
        print_note(note)
    return loaded


def spark_features(config: TransactionSettings,
                   out: Path, products_out: Path | None, rejects: Path, *,
                   with_labels: bool, master: str | None, partitions: int) -> None:
    from retain.features.contract import DataError
    from retain.spark import features, no_purchase_customers, spark_errors, used_lines

    _parquet_out(out, "--out")
    if products_out is not None:
        _parquet_out(products_out, "--products-out")
    spark = _spark(master, partitions)
    loaded = spark_load(spark, config, rejects, partitions,
                        config.horizon_days if with_labels else None)
    cutoff = loaded.as_of
    if with_labels:  # as the local engine: a horizon past the log's end is no outcome
        from pyspark.sql import functions as F

        last = loaded.frame.agg(F.max("ts")).first()[0]
        note = last is not None and horizon_coverage(
            last.date(), cutoff, config.horizon_days, later_lines=loaded.report.after_as_of > 0)
        if note:
            print_note(note)
    try:
        with step(f"Building customer features as of {cutoff} (Spark, {partitions} partitions)"), \
                spark_errors(str(out)):
            counts = features(loaded, out, products_out,
                              config.horizon_days if with_labels else None)
            n, first, last = used_lines(loaded)
            unbought = no_purchase_customers(loaded)
    except DataError as exc:
        raise fail(str(exc)) from None
    if counts["customers"] == 0:
        raise fail(f"no customer has a purchase before the as-of date {cutoff}")
    say_no_purchase(unbought, cutoff, "features")
    console.print(f"{counts['customers']:,} customers, {n:,} transaction rows from "
                  f"{first:%Y-%m-%d} to {last:%Y-%m-%d}, as of {cutoff}; written to {out}"
                  + (f" and {products_out}" if products_out is not None else ""))


def spark_score(config: TransactionSettings,
                out: Path, rejects: Path, registered, rules: Rules, lang: str,
                store, customers: str | None, contacts: str | None, *, master: str | None,
                partitions: int):
    """Score on Spark into Parquet parts at ``out``, then stream them into the score store.
    Returns the run id, the rows scored, a frame of the columns the command's summary reads,
    the as-of date and the customers with lines but no purchase (counted on Spark)."""
    import polars as pl

    from retain.features.contract import DataError, table_map
    from retain.spark import (
        load_side,
        no_purchase_customers,
        read_written,
        score,
        spark_errors,
        used_lines,
    )

    _parquet_out(out, "--out")
    spark = _spark(master, partitions)
    loaded = spark_load(spark, config, rejects, partitions)
    cutoff = loaded.as_of
    try:
        with spark_errors(config.transactions or ""):
            _, _, last = used_lines(loaded)
            unbought = no_purchase_customers(loaded)
    except DataError as exc:
        raise fail(str(exc)) from None
    note_log_ends_early(last, cutoff, registered.pipeline.horizon_days)
    sides = {}
    for kind, source in (("customers", customers), ("contacts", contacts)):
        if not source:
            continue
        try:
            with step(f"Reading and validating the {kind} (Spark)"):
                sides[kind] = load_side(spark, kind, source, partitions, config.on_bad_rows,
                                        rejects.with_name(f"{rejects.stem}.{kind}.csv"),
                                        table_map(config.column_map, kind))
        except DataError as exc:
            raise fail(str(exc)) from None
    if not customers:
        console.print("[yellow]note:[/] no --customers table: no consent is known, so no "
                      "customer gets a channel")
    try:
        with step(f"Scoring and deciding at {cutoff} with model version {registered.version} "
                  f"(Spark, {partitions} partitions)"), spark_errors(str(out)):
            rows = score(spark, loaded, registered.pipeline, str(registered.version), out,
                         rules=rules, lang=lang, consents=sides.get("customers"),
                         contacts=sides.get("contacts"))
    except DataError as exc:
        raise fail(str(exc)) from None
    # The store is written from the driver, streaming the written parts in chunks of 200k rows
    # (the driver never holds the whole run): one transaction makes the run visible all at
    # once, which writers per partition could not give, and the store (SQLite or one
    # PostgreSQL) takes one writer at a time anyway.
    try:
        with step(f"Writing the score store {store.url}"), store.open() as opened:
            run_id = opened.write_run(read_written(out), model_version=registered.version,
                                      as_of=cutoff)
    except (ValueError, OSError) as exc:
        raise fail(f"score store: {exc}") from None
    summary = pl.scan_parquet(f"{out}/*.parquet").select("goal", "score_source").collect()
    return run_id, rows, summary, cutoff, unbought


@dataclass
class SparkTrainingData:
    """``retain train``'s data from Spark: the lines trained on here (the sample's, or every
    line without a sample), the as-of date and load report; with a sample, what is computed
    from every customer on Spark: the RFM summary (probabilistic models, eligibility), the
    data report's counts and the shop-wide figures of segments (a function of the fitted
    pipeline)."""

    lines: Any
    as_of: Any
    report: Any
    sample: Any = None
    rfm: Any = None
    counts: Any = None
    shop_reference: Callable[[Any], Any] | None = None


def spark_training_data(config: TransactionSettings, rejects: Path, sample_customers: int, *,
                        master: str | None, partitions: int) -> SparkTrainingData:
    """``retain train``'s data on Spark: every line validated per partition, the stratified
    sample of customers drawn there (``retain.spark.training_sample``), and only the sampled
    customers' lines brought here, with what describes the whole shop computed there from
    every customer (see :class:`SparkTrainingData`)."""
    from retain.features.contract import DataError
    from retain.spark import (
        history_counts,
        shop_reference,
        spark_errors,
        training_rfm,
        training_sample,
    )

    spark = _spark(master, partitions)
    loaded = spark_load(spark, config, rejects, partitions)
    source = config.transactions or ""
    try:
        with step(f"Drawing the training sample (Spark, {partitions} partitions)"), \
                spark_errors(source):
            sample, lines = training_sample(loaded, config.horizon_days, sample_customers)
        data = SparkTrainingData(lines, loaded.as_of, loaded.report, sample)
        if sample is not None:
            with step("Every customer's RFM summary and the data report's counts (Spark)"), \
                    spark_errors(source):
                data.rfm = training_rfm(loaded)
                data.counts = history_counts(loaded)
    except DataError as exc:
        raise fail(str(exc)) from None
    if sample is not None:
        def reference(pipeline: Any) -> Any:
            try:
                with spark_errors(source):
                    return shop_reference(loaded, pipeline)
            except DataError as exc:
                raise ValueError(str(exc)) from None

        data.shop_reference = reference
        console.print(f"Spark drew {sample.line()}; only their {lines.height:,} lines are "
                      "trained on here; the probabilistic models, the data report, the "
                      "eligibility and the shop-wide figures of segments use all "
                      f"{data.rfm.height:,} customers", highlight=False)
    else:
        console.print(f"{lines.height:,} lines of every customer collected from Spark (no more "
                      f"customers than --sample-customers {sample_customers:,})", highlight=False)
    return data
