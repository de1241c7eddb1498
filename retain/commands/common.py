"""What the commands share: the transaction options, loading with clear errors, writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from retain.progress import console, print_note, step

# polars, pydantic and the contract are imported where a command runs: `retain --help` and every
# command's help import none of them and answer at once (tests/retain/test_help.py).
if TYPE_CHECKING:
    import io

    import polars as pl

    from retain.decisions.rules import Rules
    from retain.features.contract import LoadReport, ReadOptions
    from retain.serving.labels import Language

TransactionsOpt = Annotated[
    str | None,
    typer.Option(
        "--transactions", metavar="<source>",
        help="Transactions: a .csv, .xlsx (its first sheet; FILE.xlsx#SHEET reads another) or "
        ".parquet file, or a database URL (sqlite:///shop.db, postgresql+psycopg://...) with "
        "--query. Env: RETAIN_TRANSACTIONS.",
        show_default=False,
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", metavar="<date>",
        help="Use transactions strictly before this date (YYYY-MM-DD). Default: the day after "
        "the last transaction. Env: RETAIN_AS_OF.",
        show_default=False,
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map", metavar="<column=yours>",
        help="Map a contract column to yours, e.g. --map customer_id=client_code (repeatable); "
        "a side table's with its name first: --map customers.customer_id=client_code "
        "(customers., contacts., costs.). Env: RETAIN_COLUMN_MAP as JSON.",
        show_default=False,
    ),
]
OnBadRowsOpt = Annotated[
    Literal["fail", "skip"] | None,
    typer.Option(
        "--on-bad-rows",
        help="fail (default): stop at the first bad input with a message naming the rows; "
        "skip: write rejected rows with their reason to a side file and go on. "
        "Env: RETAIN_ON_BAD_ROWS.",
        show_default=False,
    ),
]
QueryOpt = Annotated[
    str | None,
    typer.Option("--query", metavar="<sql>", help="SQL for a database URL. Default: SELECT * FROM transactions"),
]


def _rejects_option(default: str) -> object:
    """``--rejects`` with each command's real default in its help: not every command has an
    --out to put the file beside."""
    return Annotated[Path | None, typer.Option(
        "--rejects", help=f"Where --on-bad-rows=skip writes rejected rows (CSV). Default: {default}")]


RejectsOpt = _rejects_option("beside --out, <name>.rejected.csv.")
# inspect, train, evaluate and calibration: no --out of their own (or a JSON report).
RejectsHereOpt = _rejects_option("rejected.csv in the working directory.")
EffectRejectsOpt = _rejects_option("effect.rejected.csv in the working directory.")
ChannelsRejectsOpt = _rejects_option("channels.rejected.csv in the working directory.")

EncodingOpt = Annotated[
    str | None,
    typer.Option("--encoding", metavar="<name>", help="The file's encoding when it is not UTF-8 (cp1251 is "
                 "detected). Env: RETAIN_ENCODING.", show_default=False),
]
DateFormatOpt = Annotated[
    str | None,
    typer.Option("--date-format", metavar="<format>", help="strftime format of the date column, e.g. "
                 "'%d/%m/%Y %H:%M' (default: ISO, 20240131, 31.01.2024, 1/31/2024 ...). "
                 "Env: RETAIN_DATE_FORMAT.", show_default=False),
]
DropDuplicatesOpt = Annotated[
    bool | None,
    typer.Option("--drop-duplicates/--keep-duplicates", help="Drop lines identical to an "
                 "earlier one (default: keep and report them). Env: RETAIN_DROP_DUPLICATES.",
                 show_default=False),
]
CancelledStatusOpt = Annotated[
    list[str] | None,
    typer.Option("--cancelled-status", metavar="<value>", help="A status column's value that "
                 "marks a cancelled line, left out (repeatable), beside the defaults: "
                 "Отменён, Отменен, Отмена, Аннулирован, cancelled, canceled, ... "
                 "Env: RETAIN_CANCELLED_STATUSES as JSON.", show_default=False),
]
ReturnedStatusOpt = Annotated[
    list[str] | None,
    typer.Option("--returned-status", metavar="<value>", help="A status column's value that "
                 "marks a returned line, read as a refund whatever its sign (repeatable), "
                 "beside the defaults: Возврат, Возвращён, returned, refunded, ... "
                 "Env: RETAIN_RETURNED_STATUSES as JSON.", show_default=False),
]

CustomersOpt = Annotated[
    str | None,
    typer.Option("--customers", metavar="<source>", help="Customers table with consent_<channel> flags (CSV, "
                 "Excel, Parquet or database URL). Without it no channel has consent.",
                 show_default=False),
]
ContactsOpt = Annotated[
    str | None,
    typer.Option("--contacts", metavar="<source>", help="Contacts log (CSV, Excel, Parquet or database URL): measures "
                 "each channel and keeps the frequency cap.", show_default=False),
]
# `retain effect` and `retain channels` read the log to measure, not to cap messages.
MeasuredContactsOpt = Annotated[
    str | None,
    typer.Option("--contacts", metavar="<source>", help="Contacts log (CSV, Excel, Parquet or "
                 "database URL): the messages sent and the control group's rows (customer_id, ts, "
                 "channel, campaign, cost, control).", show_default=False),
]
RulesOpt = Annotated[
    str | None,
    typer.Option("--rules", metavar="<file>", help="Decision rules YAML over the built-in defaults "
                 "(`retain rules --out rules.yaml` writes them). Env: RETAIN_RULES.",
                 show_default=False),
]
LangOpt = Annotated[
    Literal["en", "ru"] | None,
    typer.Option("--lang", help="Language of the reasons. Default en. Env: RETAIN_LANG.",
                 show_default=False),
]


def language_or_fail(lang: str) -> Language:
    """``lang`` when retain speaks it (``serving.labels.LANGUAGES``), else one error line."""
    from retain.serving.labels import LANGUAGES

    if lang not in LANGUAGES:
        raise fail(f"--lang: expected {' or '.join(LANGUAGES)}, got {lang!r}")
    return lang  # type: ignore[return-value]


def fail(message: str) -> typer.Exit:
    """Print one ``error:`` line (credentials masked, the text never read as markup) and return
    the exit-1 exception for the caller to raise."""
    from rich.markup import escape

    from retain.features.redaction import mask_credentials

    console.print(f"[red]error:[/] {escape(mask_credentials(' '.join(message.split())))}",
                  soft_wrap=True)
    return typer.Exit(code=1)


def parse_date(value: str | date | None, flag: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{flag}: expected a date like 2026-07-01, got {value!r}") from None


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON (dates and the like as text); a full disk or a
    read-only place is one error."""
    import json

    from retain.errors import write_failure

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=True))
    except OSError as exc:
        raise fail(write_failure(path, exc)) from None


def check_output_type(path: Path) -> None:
    """Refuse an output name retain cannot write, before any work is done."""
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise fail(f"{path}: unknown output type; use .csv or .parquet")


def encoded(frame: pl.DataFrame, path: Path) -> pl.DataFrame | io.BytesIO | Exception:
    """``frame`` encoded now as the Parquet bytes :func:`write_frames` writes to ``path``, by
    a thread with time to spare; the error encoding met, if any, for write_frames to report
    as it reports a write's. A CSV output keeps the frame (its text is several times it)."""
    import io

    import polars as pl

    if path.suffix.lower() == ".csv":
        return frame
    buffer = io.BytesIO()
    try:
        _write_parquet(frame, buffer)
    except (OSError, pl.exceptions.PolarsError) as exc:  # as _attempt catches a write's
        return exc
    return buffer


def _write_parquet(frame: pl.DataFrame, sink: Path | io.BytesIO) -> None:
    # zstd level 1: ~20% less CPU than the default level for ~3% larger files.
    frame.write_parquet(sink, compression="zstd", compression_level=1)


def _write(frame: pl.DataFrame | io.BytesIO | Exception, path: Path) -> None:
    if isinstance(frame, Exception):  # met while encoding (encoded): reported as the write's
        raise frame
    path.parent.mkdir(parents=True, exist_ok=True)
    if not hasattr(frame, "write_parquet"):  # bytes encoded beforehand
        path.write_bytes(frame.getbuffer())  # type: ignore[union-attr]
    elif path.suffix.lower() == ".csv":
        from retain.serving.export import formula_safe

        formula_safe(frame).write_csv(path)
    else:
        _write_parquet(frame, path)


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    """Write by extension: .csv or .parquet; a full disk or a read-only place is one error."""
    write_frames((frame, path))


def write_frames(*outputs: tuple[pl.DataFrame | io.BytesIO | Exception, Path]) -> None:
    """Write each ``(frame, path)`` at once, one thread each (encoding lets the GIL go); what
    fails is one error line, the first output's that failed (a read-only place fails them all).
    A frame may come :func:`encoded` already."""
    from retain.errors import write_failure

    for _, path in outputs:
        check_output_type(path)
    if len(outputs) == 1:
        failures = [_attempt(*outputs[0])]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(outputs)) as pool:
            failures = list(pool.map(lambda output: _attempt(*output), outputs))
    for (_, path), exc in zip(outputs, failures, strict=True):
        if exc is not None:
            raise fail(write_failure(path, exc)) from None


def _attempt(frame: pl.DataFrame | io.BytesIO | Exception, path: Path) -> Exception | None:
    """The write's failure, handed back so the caller names the first one once."""
    import polars as pl

    try:
        _write(frame, path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        # polars reports a full disk while writing Parquet as a ComputeError ("transport error").
        return exc
    return None


def report_rejects(report: LoadReport) -> None:
    from rich.markup import escape

    from retain.features.contract import GUEST_HINT

    if not report.rows_rejected:
        return
    console.print(
        f"[yellow]{report.rows_rejected} of {report.rows_read} rows rejected[/] "
        f"(written with reasons to {escape(str(report.rejects_path))}):"
    )
    for reason, count in report.rejected.items():
        console.print(f"  {count:>8}  {escape(reason)}")
    if any(reason.startswith("customer_id: missing") for reason in report.rejected):
        console.print(f"  {GUEST_HINT}", soft_wrap=True)


@dataclass(frozen=True)
class TransactionSettings:
    """The settings a command reading transactions uses: the fields of the same names in
    :class:`retain.config.Settings`, with its defaults (tests/retain/test_cli.py checks both)."""

    transactions: str | None = None
    query: str | None = None
    as_of: date | None = None
    horizon_days: int = 90
    on_bad_rows: Literal["fail", "skip"] = "fail"
    column_map: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    date_format: str | None = None
    drop_duplicates: bool = False
    cancelled_statuses: list[str] = field(default_factory=list)
    returned_statuses: list[str] = field(default_factory=list)


# Every field of retain.config.Settings: an environment variable naming one of them (its
# RETAIN_ name in any case, as pydantic-settings reads them) sends the settings through
# pydantic, which reads, checks and words its errors; tests/retain/test_cli.py keeps the list.
SETTINGS_FIELDS = (
    "transactions", "query", "as_of", "horizon_days", "on_bad_rows", "column_map", "encoding",
    "date_format", "drop_duplicates", "cancelled_statuses", "returned_statuses", "customers", "contacts", "costs", "rules", "lang",
    "api_keys", "allow_no_auth", "store_url", "model_alias", "reload_interval",
    "max_request_bytes", "load_retry_interval", "max_header_bytes",
)


def _texts(value: object) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


def _plain_settings(flags: dict[str, object]) -> TransactionSettings | None:
    """The settings straight from the flags when pydantic could only agree: no RETAIN_
    variable of a Settings field is set and every flag is a plain valid value. Importing
    pydantic-settings costs a command ~0.2 s of its start (it brings asyncio, ssl, ...)."""
    import os

    names = {f"retain_{name}" for name in SETTINGS_FIELDS}
    if any(key.lower() in names for key in os.environ):
        return None
    plain = {
        "transactions": lambda v: type(v) is str, "query": lambda v: type(v) is str,
        "encoding": lambda v: type(v) is str, "date_format": lambda v: type(v) is str,
        "as_of": lambda v: type(v) is date,
        "horizon_days": lambda v: type(v) is int and 1 <= v <= 3650,
        "on_bad_rows": lambda v: v in ("fail", "skip"),
        "column_map": lambda v: type(v) is dict and all(
            type(k) is str and type(x) is str for k, x in v.items()),
        "drop_duplicates": lambda v: type(v) is bool,
        "cancelled_statuses": _texts, "returned_statuses": _texts,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    if not all(name in plain and plain[name](value) for name, value in given.items()):
        return None
    if "column_map" in given:
        given["column_map"] = dict(given["column_map"])  # type: ignore[call-overload]
    for name in ("cancelled_statuses", "returned_statuses"):
        if name in given:
            given[name] = list(given[name])  # type: ignore[call-overload]
    return TransactionSettings(**given)  # type: ignore[arg-type]


def transaction_settings(transactions: str | None, as_of: str | None, horizon_days: int | None,
                         on_bad_rows: str | None, column_map: list[str] | None,
                         query: str | None, *, encoding: str | None = None,
                         date_format: str | None = None,
                         drop_duplicates: bool | None = None,
                         cancelled_statuses: list[str] | None = None,
                         returned_statuses: list[str] | None = None) -> TransactionSettings:
    """Flags over ``RETAIN_*`` environment variables, with the error a user can act on."""
    from retain.features.contract import DataError, parse_column_map

    try:
        flags = {"transactions": transactions, "as_of": parse_date(as_of, "--as-of"),
                 "horizon_days": horizon_days, "on_bad_rows": on_bad_rows,
                 "column_map": parse_column_map(column_map) or None, "query": query,
                 "encoding": encoding, "date_format": date_format,
                 "drop_duplicates": drop_duplicates,
                 # Not given is None (typer's default), not [] (which would hide the env's).
                 "cancelled_statuses": cancelled_statuses or None,
                 "returned_statuses": returned_statuses or None}
        config = _plain_settings(flags)
        if config is None:
            from retain.config import settings

            full = settings(**flags)
            config = TransactionSettings(**{name: getattr(full, name) for name in
                                            TransactionSettings.__dataclass_fields__})
    except (ValueError, DataError) as exc:
        raise fail(str(exc)) from None
    if config.transactions is None:
        raise fail("--transactions is required (or set RETAIN_TRANSACTIONS)")
    return config


def read_options(config: TransactionSettings) -> ReadOptions:
    from retain.features.contract import ReadOptions

    # An empty value (as MLproject passes an unset parameter) is not given.
    return ReadOptions(encoding=config.encoding or None, date_format=config.date_format or None,
                       drop_duplicates=config.drop_duplicates,
                       cancelled_statuses=tuple(config.cancelled_statuses),
                       returned_statuses=tuple(config.returned_statuses))


def load(config: TransactionSettings, rejects: Path, horizon_days: int | None = None, *,
         quiet: bool = False, with_report: bool = True,
         as_of_hint: str | None = None) -> tuple[pl.DataFrame, date, LoadReport]:
    """Validated transactions, the as-of date (default: the day after the last one) and the
    load report. One as-of rule for every command: lines on or after the as-of date (with
    ``horizon_days``: on or after the end of the horizon after it, for labels) are outside the
    window: never rejected, not in the frame, reported in one line. ``with_report`` is kept for
    callers of the old two-value form; the report is always returned. ``as_of_hint``: what
    to tell a command without --as-of (its as-of is another flag) when every line is later."""
    from retain.features.contract import DataError, load_transactions

    window_end = (config.as_of + timedelta(days=horizon_days)
                  if horizon_days is not None and config.as_of is not None else None)
    try:
        with step("Reading and validating transactions"):
            loaded = load_transactions(
                config.transactions or "", as_of=config.as_of, window_end=window_end,
                column_map=config.column_map, on_bad_rows=config.on_bad_rows,
                rejects_path=rejects, query=config.query, options=read_options(config),
            )
    except DataError as exc:
        message = str(exc)
        if as_of_hint is not None:
            message = message.replace("choose a later --as-of", as_of_hint)
        raise fail(message) from None
    report = loaded.report
    if not quiet:
        report_rejects(report)
        for note in report.notes():
            print_note(note)
    tx = loaded.frame.drop("_row")
    as_of = config.as_of or (tx["ts"].max().date() + timedelta(days=1))  # type: ignore[union-attr]
    if report.as_of is None:
        report.as_of = as_of
    if horizon_days is not None and tx.height:
        last = tx["ts"].max().date()  # type: ignore[union-attr]
        # Lines after the horizon show that the log goes on past it: a quiet end is then real.
        note = horizon_coverage(last, as_of, horizon_days, later_lines=report.after_as_of > 0)
        if note and not quiet:
            print_note(note)
    return tx, as_of, report


def no_purchase_candidates(tx: pl.DataFrame, cutoff: date) -> pl.Series:
    """The customers who may have lines before ``cutoff`` but no purchase (an order netting
    above zero): only a customer with a line of zero or less can have none. Few lines are,
    so this is cheap, and the caller keeps it after the lines are freed."""
    import polars as pl

    before = pl.col("ts") < pl.lit(cutoff).cast(pl.Datetime("us"))
    return tx.filter(before & (pl.col("amount") <= 0))["customer_id"].unique()


def note_no_purchase(candidates: pl.Series, kept: pl.Series, cutoff: date, what: str) -> int:
    """Say how many customers of the log get no row (``what``: "features", "scores") because
    they have no purchase before the as-of date, so that nobody goes missing silently (CDNOW:
    70 customers bought only zero-dollar lines). The API answers them with an error entry."""
    missing = int((~candidates.is_in(kept.implode())).sum()) if len(candidates) else 0
    say_no_purchase(missing, cutoff, what)
    return missing


def say_no_purchase(missing: int, cutoff: date, what: str) -> None:
    """:func:`note_no_purchase`'s words for a count found elsewhere (``--engine spark``
    counts on Spark: ``retain.spark.no_purchase_customers``)."""
    if missing:
        console.print(f"[yellow]note:[/] {missing:,} customers have no purchase before the as-of "
                      f"date {cutoff} (only orders netting to zero or less: free lines, refunds, "
                      f"cancellations): they get no {what}")


def note_log_ends_early(last: datetime | None, cutoff: date, horizon_days: int) -> None:
    """Say when the last line is more than a model's horizon before the as-of date: legitimate
    (scoring today a log exported last month) within a horizon; past it every customer reads
    as lapsed, which a mistyped --as-of or a truncated export also gives."""
    if last is not None and (cutoff - last.date()).days > horizon_days:
        console.print(f"[yellow]note:[/] the last transaction is dated {last:%Y-%m-%d}, "
                      f"{(cutoff - last.date()).days:,} days before the as-of date {cutoff}: "
                      "every customer is scored as if nothing was bought since (an export "
                      "that stops early, or a mistyped --as-of?)", soft_wrap=True)


def horizon_coverage(last: date, as_of: date, horizon_days: int, *,
                     later_lines: bool = False) -> str | None:
    """Whether the transactions cover the horizon ``[as_of, as_of + horizon)`` that labels and
    `retain evaluate` judge on: an exit-1 error when none of its days is in the log (every
    customer would read as churned and the metrics as NaN), a note when the log ends inside it
    (what customers did after the end is unknown and counts as no order), else None. The
    latest covered as-of is the one `retain train`'s own backtest uses: the day after the last
    line minus the horizon."""
    end = as_of + timedelta(days=horizon_days - 1)
    if later_lines or last >= end:
        return None
    covered = last + timedelta(days=1 - horizon_days)
    if last < as_of:
        raise fail(f"no transactions in the {horizon_days}-day horizon after the as-of date "
                   f"{as_of} (they end {last}): the outcomes are what customers did in it; "
                   f"choose --as-of {covered} or earlier, or a shorter --horizon-days")
    return (f"the transactions end {last}, {(end - last).days} days before the last day of "
            f"the {horizon_days}-day horizon after {as_of} ({end}): orders after {last} are "
            f"unknown and count as none; --as-of {covered} or earlier is fully covered")


def rules_or_fail(path: str | None) -> Rules:
    from retain.decisions.rules import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as exc:
        raise fail(str(exc)) from None


def load_side_table(kind: str, source: str | None, config: TransactionSettings,
                    rejects: Path) -> pl.DataFrame | None:
    """The customers table or contacts log (``kind``), validated; None when not given (an
    empty value, as MLproject passes, is not given either)."""
    from retain.features.contract import (
        DataError,
        ReadOptions,
        load_contacts,
        load_customers,
        table_map,
    )

    if not source:
        return None
    loader = load_customers if kind == "customers" else load_contacts
    try:
        with step(f"Reading and validating the {kind}"):
            loaded = loader(source, on_bad_rows=config.on_bad_rows,
                            column_map=table_map(config.column_map, kind),
                            options=ReadOptions(encoding=config.encoding),
                            rejects_path=rejects.with_name(f"{rejects.stem}.{kind}.csv"))
    except DataError as exc:
        raise fail(str(exc)) from None
    report_rejects(loaded.report)
    for note in loaded.report.notes():
        print_note(note)
    return loaded.frame.drop("_row", strict=False)


def example(*lines: str) -> str:
    """A command's help epilog: how it is called, kept as written (Click's ``\\b`` stops it
    from rewrapping the lines; each stays under 80 columns)."""
    return "Example:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)
