"""Watching a model in use: ``retain drift`` and ``retain calibration``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retain.commands.common import (
    CancelledStatusOpt,
    DateFormatOpt,
    DropDuplicatesOpt,
    EncodingOpt,
    MapOpt,
    OnBadRowsOpt,
    QueryOpt,
    RejectsHereOpt,
    ReturnedStatusOpt,
    TransactionsOpt,
    example,
    fail,
    load,
    transaction_settings,
)
from retain.commands.decisions import RunAsOfOpt, StoreUrlOpt, _open_store, _run_for
from retain.progress import console

app = typer.Typer()


@app.command(epilog=example("retain drift", "retain drift --as-of 2026-07-01 --out drift.csv"))
def drift(
    as_of: RunAsOfOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the table (.csv or .parquet).")] = None,
    store_url: StoreUrlOpt = None,
) -> None:
    """Show a stored run's drift against the run before it.

    PSI per feature, score and decision (< 0.1 stable, 0.1-0.25 moderate, > 0.25 shifted),
    as `retain score` measured and kept it, the most shifted first."""
    from rich.table import Table

    from retain.commands.common import write_frame

    with _open_store(store_url) as store:
        run = _run_for(store, as_of)
        table = store.drift(run["run_id"])
    if table.height == 0:
        raise fail(f"run {run['run_id']} (as of {run['as_of']}) has no drift rows: it was "
                   "scored before retain kept drift; the next `retain score` measures it")
    reference = table["reference_run_id"].drop_nulls()
    against = (f"against run {reference[0]}" if reference.len()
               else "(the first run: the reference for the next)")
    shown = Table(title=f"Drift of run {run['run_id']} (as of {run['as_of']}) {against}")
    for column in ("kind", "name", "PSI", "level", "customers", "before"):
        shown.add_column(column, justify="right" if column in ("PSI", "customers", "before")
                         else "left")
    for row in table.iter_rows(named=True):
        psi = "-" if row["psi"] is None else f"{row['psi']:.3f}"
        before = "-" if row["reference_customers"] is None else f"{row['reference_customers']:,}"
        shown.add_row(row["kind"], row["name"], psi, row["level"], f"{row['customers']:,}",
                      before)
    console.print(shown)
    if out is not None:
        write_frame(table.drop("profile"), out)
        console.print(f"{table.height} rows written to {out}")


@app.command(epilog=example(
    "retain calibration --transactions data/shop/transactions.parquet \\",
    "    --out calibration.csv"))
def calibration(
    transactions: TransactionsOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write every row, per run and decile (.csv or .parquet).")] = None,
    store_url: StoreUrlOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsHereOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
) -> None:
    """Compare past score runs with what then happened.

    Every stored run whose horizon the transactions now cover: predicted against observed
    churn (overall and by decile of predicted churn) with the Brier score, predicted against
    actual revenue and orders with the error per customer. Kept in the store (table
    `calibration`) and printed, oldest run first."""
    from rich.table import Table

    from retain.analytics.calibration import calibration_over_time, summary
    from retain.commands.common import write_frame
    from retain.progress import step

    config = transaction_settings(transactions, None, None, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    tx, _, _ = load(config, rejects or Path("rejected.csv"))
    with _open_store(store_url, must_exist=False) as store:
        with step("Comparing past runs with what then happened"):
            try:
                rows, skipped = calibration_over_time(store, tx)
            except ValueError as exc:
                raise fail(str(exc)) from None
        if rows.height:
            store.write_calibration(rows)
    for run in skipped:
        console.print(f"[yellow]note:[/] run {run['run_id']} (as of {run['as_of']}) skipped: "
                      f"{run['reason']}", soft_wrap=True, highlight=False)
    if rows.height == 0:
        # Not an error: a weekly job runs this long before the first horizon has passed.
        console.print("nothing to judge yet: no stored run's horizon is covered by these "
                      "transactions (the runs above say when each ends)" if skipped else
                      "nothing to judge yet: the score store has no complete scoring run (`retain "
                      "score` stores one; its horizon must then pass)", soft_wrap=True)
        return
    runs = summary(rows)
    shown = Table(title="Predictions against what then happened, per score run")
    for column in ("as of", "model", "customers", "churn pred.", "churn obs.", "Brier",
                   "revenue pred.", "revenue actual", "actual/pred.", "MAE / customer"):
        shown.add_column(column, justify="left" if column in ("as of", "model") else "right")
    for row in runs.iter_rows(named=True):
        shown.add_row(str(row["as_of"]), row["model_version"], f"{row['customers']:,}",
                      f"{row['predicted_churn']:.1%}", f"{row['observed_churn']:.1%}",
                      f"{row['brier']:.4f}", f"{row['predicted_revenue']:,.0f}",
                      f"{row['actual_revenue']:,.0f}", _ratio(row["revenue_ratio"]),
                      f"{row['revenue_mae']:,.1f}")
    console.print(shown)
    if out is not None:
        write_frame(rows, out)
    console.print(f"{runs.height} run(s) judged, {rows.height} rows kept in the store"
                  + (f" and written to {out}" if out is not None else ""))


def _ratio(value: float | None) -> str:
    import math

    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"
