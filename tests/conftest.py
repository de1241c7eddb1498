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


@pytest.fixture(autouse=True)
def _a_console_per_test(monkeypatch):
    """retain's console is made on first use and keeps the width COLUMNS had then: one command
    per process in life, but a test run would keep whichever width an earlier test set. Each
    test gets a console of its own, as each command run does."""
    from retain import progress

    monkeypatch.setattr(progress._LazyConsole, "_console", None)


@pytest.fixture
def tx_factory():
    return make_transactions


@pytest.fixture(scope="session")
def shop():
    """A small simulated shop with its true future (4,000 customers: fast, yet enough signal)."""
    from retain.simulate import simulate_shop

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
    from retain.features.customers import observed_channels
    from retain.training.backtest import TrainConfig, stacked_frame, training_origins

    config = TrainConfig(n_origins=3)
    origins = training_origins(shop_history, shop.as_of, config)
    return stacked_frame(shop_history, origins, observed_channels(shop_history), config,
                         progress=lambda _: None)


# --- store-db: the score store's backends (serving/store.py) -----------------------------------
# `store_url` (alias `store_db_url`, which a closer conftest cannot shadow) runs a test on SQLite
# (a file in tmp_path) and on PostgreSQL (RETAIN_TEST_POSTGRES_URL, e.g. from
# scripts/postgres.sh), each test in a fresh schema of its own. Without that variable the
# PostgreSQL half is skipped, except under CI, where it fails.


def _ci() -> bool:
    import os

    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def store_url(store_db_url):
    return store_db_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db_url(request, tmp_path):
    import os
    import uuid

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scores.db'}"
        return
    base = os.environ.get("RETAIN_TEST_POSTGRES_URL")
    if not base:
        reason = ("RETAIN_TEST_POSTGRES_URL is not set: run `export RETAIN_TEST_POSTGRES_URL="
                  "$(scripts/postgres.sh)` (or `make test`) to test the PostgreSQL store")
        if _ci():
            pytest.fail(reason + "; CI must run the PostgreSQL tests")
        pytest.skip(reason)
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    parsed = sa.make_url(base)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    schema = f"retain_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(parsed, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL at RETAIN_TEST_POSTGRES_URL is unreachable: {exc.orig}"
        if _ci():
            pytest.fail(message)
        pytest.skip(message)
    url = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


# --- browser: Debian's Chromium for the Playwright tests (scripts/chromium.sh) -----------------
# RETAIN_TEST_CHROMIUM (set by `make test`) or a chromium on PATH. Without one the browser tests
# are skipped, except under CI, where they fail.


@pytest.fixture(scope="session")
def chromium_path() -> str:
    import os
    import shutil

    given = os.environ.get("RETAIN_TEST_CHROMIUM", "").strip()
    found = given or shutil.which("chromium") or shutil.which("chromium-browser")
    if found and os.path.isfile(found) and os.access(found, os.X_OK):
        return found
    reason = (f"RETAIN_TEST_CHROMIUM={given!r} is not an executable" if given else
              "no Chromium found: run `export RETAIN_TEST_CHROMIUM=$(scripts/chromium.sh)` "
              "(or `make test`) to run the browser tests")
    if _ci():
        pytest.fail(reason + "; CI must run the browser tests")
    pytest.skip(reason)
