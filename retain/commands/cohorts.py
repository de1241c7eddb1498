"""Cohorts and the report: ``retain cohorts`` and ``retain report``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retain.commands.common import (
    AsOfOpt,
    CancelledStatusOpt,
    ContactsOpt,
    DateFormatOpt,
    DropDuplicatesOpt,
    EncodingOpt,
    MapOpt,
    OnBadRowsOpt,
    QueryOpt,
    RejectsOpt,
    ReturnedStatusOpt,
    RulesOpt,
    TransactionsOpt,
    example,
    fail,
    language_or_fail,
    load,
    load_side_table,
    rules_or_fail,
    transaction_settings,
    write_frame,
)
from retain.progress import console, print_note, step

if TYPE_CHECKING:  # imported where the commands run: help stays instant
    import polars as pl
    from rich.table import Table

    from retain.analytics.cohorts import Cohorts
    from retain.commands.common import TransactionSettings
    from retain.serving.store import ScoreStore

app = typer.Typer()

CostsOpt = Annotated[
    str | None,
    typer.Option("--costs", metavar="<source>", help="Acquisition costs (CSV, Excel, "
                 "Parquet or database URL): acquisition_channel, month, spend. Adds CAC and LTV/CAC.",
                 show_default=False),
]
CustomersOpt = Annotated[
    str | None,
    typer.Option("--customers", metavar="<source>", help="Customers table (CSV, Excel, "
                 "Parquet or database URL); its acquisition_channel gives the channel cohorts.",
                 show_default=False),
]
StoreUrlOpt = Annotated[
    str | None,
    typer.Option("--store-url", metavar="<url>", help="Score store database URL (the "
                 "predicted CLV of its latest run as of the date). Env: RETAIN_STORE_URL; "
                 "default sqlite:///retain.db."),
]


def open_store_if_any(store_url: str | None) -> ScoreStore | None:
    """The score store, or None when the default SQLite file is not there (cohorts and the
    report work without predictions); a store given and unusable is one error."""
    from retain.config import settings
    from retain.serving.store import ScoreStore

    url = settings(store_url=store_url).store_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        return ScoreStore(url).open()
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise fail(f"score store: {exc}") from None


def stored_clv(store: ScoreStore | None, as_of: date) -> tuple[pl.DataFrame | None, dict | None]:
    """``customer_id, clv_12m`` of the latest complete run as of ``as_of`` and that run."""
    import polars as pl

    run = store.latest_run_through(as_of) if store is not None else None
    if store is None or run is None:
        return None, None
    chunks = [chunk.select("customer_id", "clv_12m")
              for chunk in store.iter_scores(run["run_id"], chunk_size=200_000)]
    return (pl.concat(chunks) if chunks else None), run


def load_costs_or_fail(source: str | None, config: TransactionSettings,
                       rejects: Path) -> pl.DataFrame | None:
    from retain.analytics.cohorts import load_costs
    from retain.commands.common import report_rejects
    from retain.features.contract import DataError, ReadOptions, table_map

    if not source:
        return None
    try:
        with step("Reading and validating the costs"):
            loaded = load_costs(source, on_bad_rows=config.on_bad_rows,
                                column_map=table_map(config.column_map, "costs"),
                                options=ReadOptions(encoding=config.encoding),
                                rejects_path=rejects.with_name(f"{rejects.stem}.costs.csv"))
    except DataError as exc:
        raise fail(str(exc)) from None
    report_rejects(loaded.report)
    for note in loaded.report.notes():
        print_note(note)
    return loaded.frame.drop("_row")


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def summary_table(result: Cohorts, limit: int = 36) -> Table:
    from rich.table import Table

    what = "first-purchase month" if result.by == "month" else "acquisition channel"
    table = Table(title=f"Cohorts by {what}, as of {result.as_of}")
    table.add_column("cohort", no_wrap=True)
    costs = result.summary["cac"].is_not_null().any()
    clv = result.summary["predicted_clv_12m"].is_not_null().any()
    headings = ["customers", "repeat", "AOV", "revenue/cust."]
    headings += ["CLV 12m"] if clv else []
    headings += ["CAC", "LTV/CAC"] if costs else []
    for heading in headings:
        table.add_column(heading, justify="right", overflow="fold")
    for row in result.summary.head(limit).iter_rows(named=True):
        cells = [f"{row['customers']:,}", f"{row['repeat_rate']:.1%}", _money(row["aov"]),
                 _money(row["revenue_per_customer"])]
        cells += [_money(row["predicted_clv_12m"])] if clv else []
        cells += ([_money(row["cac"]), "-" if row["ltv_cac"] is None else f"{row['ltv_cac']:.2f}"]
                  if costs else [])
        table.add_row(row["cohort"], *cells)
    if result.summary.height > limit:
        table.caption = f"{limit} of {result.summary.height} cohorts shown; all are in the file"
    return table


@app.command(epilog=example(
    "retain cohorts --transactions shop/transactions.parquet \\",
    "    --as-of 2026-07-01 --by channel --customers shop/customers.parquet \\",
    "    --costs costs.csv --out cohorts.csv"))
def cohorts(
    transactions: TransactionsOpt = None,
    as_of: AsOfOpt = None,
    by: Annotated[str, typer.Option(
        "--by", metavar="<month|channel>", help="month: the month of the first purchase; "
        "channel: the acquisition channel (the customers table's acquisition_channel, else "
        "the first purchase's channel).")] = "month",
    customers: CustomersOpt = None,
    costs: CostsOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="One row per cohort (.csv or .parquet); the curves by month since the "
        "first purchase go beside it, <name>.curves.<ext>. Default: "
        "cohorts-<by>-<as-of>.csv.")] = None,
    store_url: StoreUrlOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
) -> None:
    """Cohorts by first-purchase month or channel, with LTV/CAC.

    Size, repeat rate, AOV and revenue per customer by month since the first purchase of
    customers grouped by the month of their first purchase or by their acquisition channel,
    from transactions strictly before --as-of; the predicted 12-month CLV comes from the
    score store's latest run as of that date, when there is one."""
    from retain.analytics.cohorts import COHORT_BY
    from retain.analytics.cohorts import cohorts as build

    if by not in COHORT_BY:
        raise fail(f"--by: expected month or channel, got {by!r}")
    config = transaction_settings(transactions, as_of, None, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    day = config.as_of
    target = out or Path(f"cohorts-{by}-{day or 'latest'}.csv")
    rejects = rejects or target.with_name(target.stem + ".rejected.csv")
    tx, day, _ = load(config, rejects)
    table = load_side_table("customers", customers, config, rejects)
    spend = load_costs_or_fail(costs, config, rejects)
    store = open_store_if_any(store_url)
    try:
        scores, run = stored_clv(store, day)
    finally:
        if store is not None:
            store.close()
    with step("Building the cohorts"):
        result = build(tx, day, by=by, customers=table, costs=spend,  # type: ignore[arg-type]
                       scores=scores)
    if out is None:
        target = Path(f"cohorts-{by}-{day}.csv")
    curves_path = target.with_name(f"{target.stem}.curves{target.suffix}")
    write_frame(result.summary, target)
    write_frame(result.curves, curves_path)
    console.print(summary_table(result))
    from retain.analytics.cohorts import costs_notes

    for note in costs_notes(result.unmatched_costs):
        print_note(note)
    if result.channel_source:
        console.print(f"acquisition channel: {result.channel_source}")
    console.print(f"predicted CLV: scoring run of {run['as_of']} (model version "
                  f"{run['model_version']})" if run else
                  "predicted CLV: no scoring run as of this date in the score store "
                  "(`retain score` adds it)", soft_wrap=True)
    people, groups = int(result.summary["customers"].sum()), result.summary.height
    console.print(f"{people:,} customer{'' if people == 1 else 's'} in {groups:,} "
                  f"cohort{'' if groups == 1 else 's'}; saved to {target} and {curves_path}")


def _read_effect(path: Path) -> pl.DataFrame:
    """An effect table written by ``retain effect --out`` (CSV, JSON or Parquet)."""
    import json

    import polars as pl

    if not path.exists():
        raise fail(f"--effect {path}: file not found")
    suffix = path.suffix.lower()
    needed = ("period", "split", "metric", "difference", "ci_low", "ci_high")

    def check(columns: list[str]) -> None:
        missing = [c for c in needed if c not in columns]
        if missing:
            raise fail(f"--effect {path}: missing column(s) {', '.join(missing)}; pass the file "
                       "`retain effect --split channel --out` writes")

    try:
        # The header first: another file (a costs file, say) is named as such, not as a
        # parse error of its values.
        if suffix == ".csv":
            check(pl.read_csv(path, n_rows=0).columns)
        elif suffix in (".parquet", ".pq"):
            check(list(pl.read_parquet_schema(path)))
    except (OSError, ValueError, pl.exceptions.PolarsError):
        pass  # the full read below says why it cannot be read
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=None)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif suffix == ".json":
            payload = json.loads(path.read_text(encoding="utf-8"))
            rows = payload.get("rows", payload) if isinstance(payload, dict) else payload
            frame = pl.DataFrame(rows, infer_schema_length=None)
        else:
            raise fail(f"--effect {path}: use the .csv, .json or .parquet `retain effect` wrote")
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise fail(f"--effect {path}: cannot be read ({type(exc).__name__})") from None
    check(frame.columns)
    return frame


@app.command(epilog=example(
    "retain report --as-of 2026-07-01 --out report.html \\",
    "    --transactions shop/transactions.parquet \\",
    "    --customers shop/customers.parquet --contacts shop/contacts.parquet \\",
    "    --costs costs.csv"))
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"),
    as_of: AsOfOpt = None,
    transactions: TransactionsOpt = None,
    customers: CustomersOpt = None,
    costs: CostsOpt = None,
    contacts: ContactsOpt = None,
    effect: Annotated[Path | None, typer.Option(
        "--effect", help="The effect by channel as `retain effect --split channel --out` "
        "wrote it (instead of measuring it from --contacts).", show_default=False)] = None,
    lang: Annotated[str, typer.Option(
        "--lang", metavar="<en|ru>", help="The report's language.")] = "en",
    store_url: StoreUrlOpt = None,
    rules: RulesOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
) -> None:
    """Write the one-file HTML report for marketers.

    Cohort heat map, LTV curves and LTV/CAC by acquisition channel, gains and reliability,
    the effect by channel over time with its intervals, drift and the segment matrix, from
    transactions before --as-of and the score store. No CDN, no script: it opens anywhere."""
    from retain.errors import write_failure
    from retain.serving.report import build_report, registered_backtest, render_report

    language_or_fail(lang)
    if out.suffix.lower() not in (".html", ".htm"):
        raise fail(f"--out {out}: the report is HTML; name it .html")
    tx = table = spend = log = None
    day = None
    if transactions or _env_transactions():
        config = transaction_settings(transactions, as_of, None, on_bad_rows, column_map, query,
                                      encoding=encoding, date_format=date_format,
                                      drop_duplicates=drop_duplicates,
                                      cancelled_statuses=cancelled_status, returned_statuses=returned_status)
        rejects = rejects or out.with_name(out.stem + ".rejected.csv")
        tx, day, _ = load(config, rejects)
        table = load_side_table("customers", customers, config, rejects)
        log = load_side_table("contacts", contacts, config, rejects)
        spend = load_costs_or_fail(costs, config, rejects)
    else:
        from retain.commands.common import parse_date

        day = parse_date(as_of, "--as-of")
        if day is None:
            raise fail("--as-of is required without --transactions (the day the report is for)")
    measured = _read_effect(effect) if effect is not None else None
    from retain.config import settings

    # The rules `retain effect` reads: the report's ROMI uses the same margin.
    decision_rules = rules_or_fail(settings(rules=rules).rules)
    store = open_store_if_any(store_url)
    try:
        with step("Building the report"):
            parts = build_report(day, tx, customers=table, costs=spend, store=store, contacts=log,
                                 effect=measured, rules=decision_rules)
    finally:
        if store is not None:
            store.close()
    if parts.outcomes is None:
        with step("Looking for the registered model's backtest plots"):
            parts.model_version, parts.backtest_images, parts.backtest_points = \
                registered_backtest()
    html = render_report(parts, lang)  # type: ignore[arg-type]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise fail(write_failure(out, exc)) from None
    shown = [name for name, present in (
        ("cohorts", parts.month_cohorts is not None), ("scores", parts.run is not None),
        ("gains/reliability", parts.outcomes is not None or bool(parts.backtest_images)
                              or parts.backtest_points is not None),
        ("effect", parts.effect is not None), ("drift", parts.drift is not None)) if present]
    console.print(f"report as of {day} written to {out} ({len(html) / 1024:,.0f} KB; "
                  f"with {', '.join(shown) or 'no data'})", soft_wrap=True)


def _env_transactions() -> bool:
    import os

    return bool(os.environ.get("RETAIN_TRANSACTIONS"))
