"""Decision commands: ``retain segments``, ``retain export`` and ``retain rules``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retain.commands.common import example, fail, language_or_fail, parse_date
from retain.progress import console, step

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer()

StoreUrlOpt = Annotated[
    str | None,
    typer.Option("--store-url", metavar="<url>", help="Score store database URL. Env: RETAIN_STORE_URL; "
                 "default sqlite:///retain.db in the working directory."),
]
RunAsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", metavar="<date>", help="Use the latest stored run for this as-of date (YYYY-MM-DD). "
                 "Default: the latest run.", show_default=False),
]


def _open_store(store_url: str | None, *, must_exist: bool = True):
    """The score store. For the commands that only read it (``must_exist``), a SQLite file
    that is not there is an error, not a new empty store (a mistyped --store-url left one
    behind)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from retain.config import settings
    from retain.serving.store import ScoreStore

    try:
        url = settings(store_url=store_url).store_url
        parsed = make_url(url)
    except (ValueError, ArgumentError) as exc:
        raise fail(f"score store: {exc}") from None
    if (must_exist and parsed.get_backend_name() == "sqlite" and parsed.database
            and parsed.database != ":memory:" and not Path(parsed.database).exists()):
        raise fail(f"no score store at {parsed.database}: run `retain score ...` first, or "
                   "point --store-url (RETAIN_STORE_URL) at the store it wrote")
    try:
        return ScoreStore(url).open()
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise fail(f"score store: {exc}") from None


def _run_for(store, as_of: str | None) -> dict:
    day = parse_date(as_of, "--as-of")
    run = store.latest_run(day)
    if run is None:
        when = f" for as-of {day}" if day else ""
        hint = f" --as-of {day}" if day else ""
        raise fail(f"no complete score run{when} in {store.url}: run `retain score{hint} ...` "
                   "first")
    return run


def matrix_table(matrix, title: str, limit: int = 40) -> Table:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("segment", no_wrap=True)  # a name cut in two reads as two names
    for column in ("goal", "channel"):
        table.add_column(column, overflow="fold")
    # A number too wide for a narrow terminal folds onto a second line: "1,788…" hid it.
    for column in ("customers", "revenue in horizon", "extra revenue", "cost"):
        table.add_column(column, justify="right", overflow="fold")
    for row in matrix.head(limit).iter_rows(named=True):
        table.add_row(row["segment"] or "-", row["goal"] or "-", row["channel"] or "-",
                      f"{row['customers']:,}", f"{row['predicted_revenue']:,.0f}",
                      f"{row['expected_incremental_revenue']:,.0f}", f"{row['contact_cost']:,.0f}")
    if matrix.height > limit:
        table.caption = f"the {limit} largest of {matrix.height:,} cells; all are in the file"
    return table


@app.command(epilog=example("retain segments --as-of 2026-07-01"))
def segments(
    as_of: RunAsOfOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where to save the matrix (.csv or .parquet). Default: "
        "segments-<as-of>.csv.")] = None,
    store_url: StoreUrlOpt = None,
) -> None:
    """Print and save the segment x goal x channel matrix.

    Of a stored score run: customers, predicted revenue, expected incremental revenue and cost per cell."""
    from retain.commands.common import write_frame

    with _open_store(store_url) as store:
        run = _run_for(store, as_of)
        matrix = store.segment_matrix(run["run_id"])
    path = out or Path(f"segments-{run['as_of']}.csv")
    write_frame(matrix, path)
    console.print(matrix_table(matrix, f"Segments x goal x channel, as of {run['as_of']} "
                                       f"(model version {run['model_version']})"))
    console.print(f"{matrix['customers'].sum():,} customers in {matrix.height:,} cells; "
                  f"saved to {path}")


@app.command(epilog=example("retain export --goal replenish --excel --out replenish.csv"))
def export(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    segment: Annotated[str | None, typer.Option(
        "--segment", metavar="<segment>", help="Micro-segment, e.g. at_risk-vip-stock_up.")] = None,
    goal: Annotated[str | None, typer.Option(
        "--goal", metavar="<goal>", help="onboard, cross_sell, replenish, reactivate, win_back, "
        "keep_vip, none or control.")] = None,
    channel: Annotated[str | None, typer.Option(
        "--channel", metavar="<channel>", help="A channel (email, sms, ...), or 'none' for customers without one.")
    ] = None,
    # Checked below rather than as Click choices: a wrong value is an `error:` line (exit 1),
    # as scripts already expect; the metavars list the values.
    fmt: Annotated[str, typer.Option(
        "--format", metavar="<csv|xlsx|parquet>",
        help="csv, xlsx (an Excel workbook: typed numbers and dates, frozen header, filters) "
        "or parquet.")] = "csv",
    separator: Annotated[str, typer.Option(
        "--sep", metavar="<,|;>",
        help="CSV separator: ',' or ';' (Excel in Russian locales expects ';').")] = ",",
    bom: Annotated[bool, typer.Option(
        "--bom/--no-bom", help="Start the CSV with a UTF-8 byte-order mark, so Excel shows "
        "Cyrillic intact.")] = False,
    excel: Annotated[bool, typer.Option(
        "--excel", help="CSV for Excel where the decimal mark is a comma: ';', decimal comma, "
        "numbers rounded for people, UTF-8 with a byte-order mark.")] = False,
    lang: Annotated[str | None, typer.Option(
        "--lang", metavar="<en|ru>", help="Headers and categories in people's words: en or ru (default: the "
        "codes scripts read).", show_default=False)] = None,
    as_of: RunAsOfOpt = None,
    store_url: StoreUrlOpt = None,
) -> None:
    """Export scored customers with their decisions.

    From the score store, filtered by segment, goal and/or channel, in a stable column order."""
    from retain.decisions.decide import GOALS
    from retain.serving.export import FORMATS, SEGMENT_NAMES, export_scores

    if fmt not in FORMATS:
        raise fail(f"--format: expected csv, xlsx or parquet, got {fmt!r}")
    if excel and fmt != "csv":
        raise fail(f"--excel shapes a CSV; --format {fmt} is already read by Excel as it is")
    if lang is not None:
        language_or_fail(lang)
    if excel:
        separator, bom = ";", True
    if separator not in (",", ";"):
        raise fail(f"--sep: expected ',' or ';', got {separator!r}")
    if segment is not None and segment not in SEGMENT_NAMES:
        raise fail(f"--segment: unknown segment {segment!r}; names look like "
                   "<lifecycle>-<value tier>-<behaviour>, e.g. at_risk-vip-stock_up "
                   "(`retain segments` lists them)")
    if goal is not None and goal not in GOALS:
        raise fail(f"--goal: unknown goal {goal!r}; use one of {', '.join(GOALS)}")
    filters: dict[str, str | None] = {}
    if segment is not None:
        filters["segment"] = segment
    if goal is not None:
        filters["goal"] = goal
    if channel is not None:
        filters["channel"] = None if channel == "none" else channel
    with _open_store(store_url) as store:
        run = _run_for(store, as_of)
        with step(f"Exporting to {out}"):
            rows = export_scores(store, out, fmt=fmt,  # type: ignore[arg-type]
                                 run_id=run["run_id"], filters=filters,
                                 separator=separator,  # type: ignore[arg-type]
                                 bom=bom, excel=excel, lang=lang)  # type: ignore[arg-type]
    console.print(f"{rows:,} customers (as of {run['as_of']}, model version "
                  f"{run['model_version']}) written to {out}")


@app.command(epilog=example("retain rules --out rules.yaml", "retain rules --check rules.yaml"))
def rules(
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the built-in rules here to edit them.")] = None,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Validate a rules file and say what it changes.")] = None,
) -> None:
    """Show, copy or check the decision rules.

    Thresholds for segments, goals, channels, offers and the control group."""
    from retain.commands.common import rules_or_fail
    from retain.decisions.rules import default_rules_text

    if check is not None:
        from retain.decisions.rules import changed_from_defaults

        changes = changed_from_defaults(rules_or_fail(str(check)))
        if not changes:
            console.print(f"{check}: valid; it changes nothing (the built-in rules)")
            return
        console.print(f"{check}: valid; it changes {len(changes)} value(s) of the built-in rules:")
        for change in changes:
            console.print(f"  {change}", markup=False)
        return
    if out is not None:
        if out.exists():
            raise fail(f"{out} exists: choose another --out or remove it first")
        out.write_text(default_rules_text(), encoding="utf-8")
        console.print(f"built-in rules written to {out}; pass it with --rules {out}")
        return
    typer.echo(default_rules_text())
