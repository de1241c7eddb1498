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


@pytest.fixture(scope="session")
def shop():
    """A small simulated shop with its true future (4,000 customers: fast, yet enough signal)."""
    from features.simulate import simulate_shop

    return simulate_shop(4000, seed=5)


@pytest.fixture(scope="session")
def shop_history(shop):
    return shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))


@pytest.fixture(scope="session")
def shop_all(shop):
    """History and true future together, for judging predictions made at ``shop.as_of``."""
    return pl.concat([shop.transactions, shop.future_transactions]).with_columns(
        pl.col("quantity").cast(pl.Float64)
    )


@pytest.fixture(scope="session")
def training_frame(shop_history, shop):
    from features.customers import observed_channels
    from training.backtest import TrainConfig, stacked_frame, training_origins

    config = TrainConfig(n_origins=3)
    origins = training_origins(shop_history, shop.as_of, config)
    return stacked_frame(shop_history, origins, observed_channels(shop_history), config,
                         progress=lambda _: None)
