"""Data commands: ``retain simulate`` and ``retain features``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

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
    RejectsOpt,
    ReturnedStatusOpt,
    TransactionsOpt,
    check_output_type,
    encoded,
    example,
    fail,
    load,
    no_purchase_candidates,
    note_no_purchase,
    parse_date,
    transaction_settings,
    write_frames,
)
from retain.commands.engine import EngineOpt, PartitionsOpt, SparkMasterOpt, spark_features
from retain.progress import console, step, work_saved

if TYPE_CHECKING:  # imported where the commands run: help stays instant
    import io
    from collections.abc import Callable

    import polars as pl
    from rich.table import Table

app = typer.Typer()

@app.command(epilog=example("retain simulate --customers 10000 --seed 1 --out data/shop"))
def simulate(
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same shop.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the shop to.")] = Path(
        "data/shop"
    ),
    as_of: Annotated[str, typer.Option("--as-of", metavar="<date>", help="End of the history.")] = "2026-07-01",
    history_days: Annotated[int, typer.Option(min=30, help="Days of history before --as-of.")] = 730,
    future_days: Annotated[int, typer.Option(
        min=90, help="Days of true future after it (at least the truth's 90-day horizon).")
    ] = 365,
    file_format: Annotated[Literal["parquet", "csv"], typer.Option(
        "--format", help="File format of every table.")] = "parquet",
    offer_share: Annotated[float, typer.Option(
        "--offer-share", min=0.0, max=1.0,
        help="Share of the messages that carry a 10% discount, at random (0: no offer column). "
             "Customers respond to it differently: the truth says how.")] = 0.0,
) -> None:
    """Simulate a shop with known ground truth.

    Writes transactions, customers (with consents), a contacts log with a global control
    group, the true future and per-customer truth."""
    from retain.simulate import simulate_shop, write_shop

    if file_format not in ("parquet", "csv"):
        raise fail(f"--format: expected parquet or csv, got {file_format!r}")
    end = parse_date(as_of, "--as-of")
    assert end is not None
    with step(f"Simulating {customers:,} customers"):
        shop = simulate_shop(customers, seed=seed, as_of=end, history_days=history_days,
                             future_days=future_days, offer_share=offer_share)
    with step(f"Writing {out}"):
        paths = write_shop(shop, out, file_format)
    for name, path in paths.items():
        rows = getattr(shop, name).height
        console.print(f"  {name:<20} {rows:>12,} rows  {path}")


@app.command(epilog=example(
    "retain features --transactions data/shop/transactions.parquet \\",
    "    --as-of 2026-07-01 --out features.parquet"))
def features(
    out: Annotated[Path, typer.Option("--out", help="Customer features: .parquet or .csv.")],
    transactions: TransactionsOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", help="Label horizon (with --labels). Default 90.")
    ] = None,
    with_labels: Annotated[
        bool,
        typer.Option("--labels", help="Add the outcomes of the horizon after --as-of (needs the "
                     "transactions of that window; training data)."),
    ] = False,
    products_out: Annotated[
        Path | None,
        typer.Option("--products-out", help="Customer x product features. Default: "
                     "<out>.products.<ext>; 'none' to skip."),
    ] = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
    partitions: PartitionsOpt = 8,
) -> None:
    """Build one row of features per customer.

    From transactions strictly before --as-of (and, with --labels, what they did in the
    horizon after it)."""
    from concurrent.futures import ThreadPoolExecutor

    config = transaction_settings(transactions, as_of, horizon_days, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    write_products = products_out is None or str(products_out).lower() != "none"
    rejects = rejects or out.with_name(out.stem + ".rejected.csv")
    if engine == "spark":
        products = (products_out or out.with_name(f"{out.stem}.products{out.suffix}")
                    if write_products else None)
        spark_features(config, out, products, rejects, with_labels=with_labels,
                       master=spark_master, partitions=partitions)
        return
    products_path = products_out or out.with_name(f"{out.stem}.products{out.suffix}")
    for path in (out, products_path) if write_products else (out,):
        check_output_type(path)  # before minutes of work, not after
    import polars as pl

    import retain.features.contract  # noqa: F401 - before the loading thread needs it

    with ThreadPoolExecutor(1) as pool:
        # Reading and checking the lines is polars' work, the GIL let go: the feature modules
        # (numpy, ~0.15 s of imports) load meanwhile on this thread.
        loading = pool.submit(load, config, rejects,
                              config.horizon_days if with_labels else None)
        from retain.features.customers import customer_features, observed_channels
        from retain.features.labels import labels
        from retain.features.products import customer_product_features
        from retain.features.segments import lines_before

        tx, cutoff, _ = loading.result()
        # The future holds the lines too: without this, `del tx` below would free nothing
        # (+1.5 GB at the peak on 20M lines).
        del loading
    unbought = no_purchase_candidates(tx, cutoff)
    # Aggregates only: filtering a copy of every line before the cutoff costs ~1 s per 20M.
    before = pl.col("ts").filter(pl.col("ts") < pl.lit(cutoff).cast(pl.Datetime("us")))
    rows, first, last = tx.select(before.len().alias("n"), before.min().alias("first"),
                                  before.max().alias("last")).row(0)
    with step(f"Building customer features as of {cutoff}"):
        channels = observed_channels(tx)
        label_frame = labels(tx, cutoff, config.horizon_days) if with_labels else None
        # One sort for both feature frames; the lines are handed over (del tx), so their
        # columns are freed as they are read: ~1 GB less at the peak on 20M lines.
        lines = lines_before(tx, cutoff, own=True)
        del tx
        # Both cores: the two feature sets are mostly numpy (one core each, the GIL let go),
        # built side by side once the lines they share (products bought) are ready.
        with ThreadPoolExecutor(1) as pool:
            products = None
            if write_products:
                # Shared: computed once, before they split; reading the channels too frees
                # the last input columns before both sets hold their working arrays.
                lines.product_lines  # noqa: B018
                lines.order_channels  # noqa: B018
                # Its file is encoded on that thread too: the customer features take
                # longer, and the other core would wait for them (writing is ~10% of a run).
                products = pool.submit(_built_and_encoded, customer_product_features,
                                       products_path, lines, cutoff)
            customer_frame = customer_features(lines, cutoff, channels)
            product_frame = products.result() if products is not None else None
        del lines
    if customer_frame.height == 0:
        raise fail(f"no customer has a purchase before the as-of date {cutoff}")
    note_no_purchase(unbought, customer_frame["customer_id"], cutoff, "features")
    if label_frame is not None:
        customer_frame = customer_frame.join(label_frame, on="customer_id", how="left")
    with step(f"Writing {out}"):
        outputs = [(customer_frame, out)]
        if product_frame is not None:  # both files at once
            outputs.append((product_frame, products_path))
        write_frames(*outputs)
    console.print(
        f"{customer_frame.height:,} customers, {rows:,} transaction rows from "
        f"{first:%Y-%m-%d} to {last:%Y-%m-%d}, as of {cutoff}"
    )
    console.print(summary_table(customer_frame))
    work_saved()


def _built_and_encoded(build: Callable[..., pl.DataFrame], path: Path,
                       *args: object) -> pl.DataFrame | io.BytesIO | Exception:
    return encoded(build(*args), path)


def summary_table(customers: pl.DataFrame) -> Table:
    """A marketer's glance at the customer base the features describe."""
    import polars as pl
    from rich.table import Table

    shares = customers.select(
        (pl.col("orders") == 1).mean().alias("one order only"),
        (pl.col("orders_last_90d") > 0).mean().alias("ordered in the last 90 days"),
        (pl.col("overdue_ratio") > 1.5).mean().alias("repeat buyers overdue (> 1.5 x own interval)"),
        pl.col("intervals_lengthening").fill_null(False).mean().alias("intervals lengthening"),
    ).row(0, named=True)
    medians = customers.select(
        pl.col("orders").median().alias("median orders"),
        pl.col("aov").median().alias("median order value"),
        pl.col("interval_median").median().alias("median days between orders"),
    ).row(0, named=True)
    table = Table(title="Customers at a glance", show_header=False)
    for name, value in medians.items():
        table.add_row(name, "-" if value is None else f"{value:,.1f}")
    for name, value in shares.items():
        table.add_row(name, "-" if value is None else f"{value:.1%}")
    return table
