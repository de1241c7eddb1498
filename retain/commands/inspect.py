"""``retain inspect``: a data report before training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retain.commands.common import (
    AsOfOpt,
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
    load,
    transaction_settings,
    write_json,
)
from retain.progress import console

app = typer.Typer()


@app.command(epilog=example(
    "retain inspect --transactions data/shop/transactions.parquet \\",
    "    --horizon-days 90 --json report.json"))
def inspect(
    transactions: TransactionsOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", help="The horizon you mean to train for. "
                                 "Default 90.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
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
    """Know your data first: what training will see and do.

    Rows, customers, dates, repeat buyers, refunds, guest lines, duplicates, float ids, the encoding, lines after --as-of, and what `retain train` will do
    with this shop (the full models or the probabilistic fallback, and why; a suggested
    horizon). Reads exactly as `retain train` does."""
    from rich.table import Table

    from retain.training.backtest import TrainConfig
    from retain.training.data_report import data_report, report_lines

    config = transaction_settings(transactions, as_of, horizon_days, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    tx, cutoff, loaded_report = load(config, rejects or Path("rejected.csv"))
    report = data_report(tx, loaded_report, cutoff, TrainConfig(horizon_days=config.horizon_days))
    table = Table(title=f"Data report as of {cutoff}", show_header=False)
    table.add_column("what", overflow="fold")
    table.add_column("value", overflow="fold")
    for label, value in report_lines(report):
        table.add_row(label, value)
    console.print(table)
    if json_out is not None:
        write_json(json_out, report.to_dict())
        console.print(f"Report written to {json_out}")
