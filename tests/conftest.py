"""Shared fixtures: small frames built by hand, so every expected value can be checked by eye."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest


def make_transactions(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (customer_id, order_id, ts 'YYYY-MM-DD[ HH:MM]', amount, product_id, quantity,
    channel) -> contract-typed transactions."""
    columns = ["customer_id", "order_id", "ts", "amount", "product_id", "quantity", "channel"]
    padded = [tuple(r) + (None,) * (len(columns) - len(r)) for r in rows]
    frame = pl.DataFrame(padded, schema=columns, orient="row")
    return frame.with_columns(
        pl.col("ts").map_elements(_ts, return_dtype=pl.Datetime("us")),
        pl.col("amount").cast(pl.Float64),
        pl.col("quantity").cast(pl.Float64).fill_null(1.0),
        pl.col("product_id", "channel", "order_id", "customer_id").cast(pl.String),
    )


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def tx_factory():
    return make_transactions
