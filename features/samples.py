"""Sample data that ships with retain's dependencies: nothing is downloaded.

``cdnow_transactions()`` reads the full CDNOW log (69,659 rows, 23,570 customers, 1997-01-01 to
1998-06-30) from the data files inside the lifetimes package, located by path so that none of
lifetimes' code runs (its ``datasets`` module needs ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import polars as pl

# Fader, Hardie & Lee (2005): calibration 39 weeks from 1997-01-01, then 39 weeks of holdout.
CDNOW_CALIBRATION_END = date(1997, 10, 1)
CDNOW_HOLDOUT_END = date(1997, 12, 31)


def lifetimes_dataset_path(name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the lifetimes package is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / name


def cdnow_transactions() -> pl.DataFrame:
    """The full CDNOW log as contract transactions: ``customer_id, order_id, ts, amount,
    product_id, quantity, channel``. It has no order ids: each row is one order."""
    return _read_cdnow("CDNOW_master.txt", id_field=0, first_data_line=1)


def cdnow_sample_transactions() -> pl.DataFrame:
    """The 2,357-customer CDNOW sample used in Fader, Hardie & Lee (2005)."""
    return _read_cdnow("CDNOW_sample.txt", id_field=0, first_data_line=0)


def _read_cdnow(name: str, id_field: int, first_data_line: int) -> pl.DataFrame:
    """Whitespace-separated ``id [id2] YYYYMMDD cds dollars`` lines; the last three fields are
    read from the end so both files' layouts work."""
    lines = pl.read_csv(
        lifetimes_dataset_path(name), separator="\x1f", has_header=False, new_columns=["line"],
        infer_schema=False, skip_rows=first_data_line,
    )
    fields = lines.select(pl.col("line").str.extract_all(r"\S+").alias("f"))
    return fields.select(
        pl.col("f").list.get(id_field).alias("customer_id"),
        pl.int_range(pl.len()).cast(pl.String).alias("order_id"),
        pl.col("f").list.get(-3).str.strptime(pl.Datetime("us"), "%Y%m%d").alias("ts"),
        pl.col("f").list.get(-1).cast(pl.Float64).alias("amount"),
        pl.lit(None, pl.String).alias("product_id"),
        pl.col("f").list.get(-2).cast(pl.Float64).alias("quantity"),
        pl.lit(None, pl.String).alias("channel"),
    )
