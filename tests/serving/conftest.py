"""What the serving tests share: ONE tiny pipeline trained into a temporary MLflow registry per
session (training is the slow part), keys, and helpers to build requests from a frame."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mlflow
import polars as pl
import pytest
from mlflow import MlflowClient

from retain.config import Settings
from retain.models.registry import MODEL_NAME
from retain.training.backtest import TrainConfig
from retain.training.train import TrainResult, train

SCORE_KEY, ADMIN_KEY, EXPORT_KEY, METRICS_KEY = ("score-key-0123456789", "admin-key-0123456789",
                                                 "export-key-0123456789", "metrics-key-0123456789")
KEYS = {SCORE_KEY: ["score"], ADMIN_KEY: ["score", "admin"], EXPORT_KEY: ["export"],
        METRICS_KEY: ["metrics"]}


@dataclass
class Registry:
    uri: str
    root: Path
    trained: TrainResult

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def point(self, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(MODEL_NAME, alias, version)

    def new_version(self) -> str:
        """Another registered version of the trained model (a retrain without its minute)."""
        source = self.client().get_model_version(MODEL_NAME, self.trained.version).source
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        return str(mlflow.register_model(source, MODEL_NAME).version)

    def broken_version(self) -> str:
        """A registered version whose artifacts are gone."""
        client = self.client()
        where = client.get_model_version_download_uri(MODEL_NAME, self.trained.version)
        copy = self.root / "vanishing-model"
        shutil.copytree(where, copy)
        version = str(client.create_model_version(MODEL_NAME, source=str(copy)).version)
        shutil.rmtree(copy)
        return version


@pytest.fixture(scope="session")
def registry(tmp_path_factory, shop, shop_history) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # Artifacts go under the working directory at experiment creation: keep them in root.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)
        trained = train(shop_history, shop.as_of,
                        TrainConfig(n_origins=2, n_estimators=40, learning_rate=0.2),
                        progress=lambda _: None, contacts=shop.contacts)
    assert trained.alias == "champion"
    return Registry(uri, root, trained)


@pytest.fixture
def tracking(registry, monkeypatch) -> Registry:
    """The session registry as the process's MLflow (the app reads MLFLOW_TRACKING_URI)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    return registry


@pytest.fixture
def store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'retain.db'}"


@pytest.fixture
def settings(store_url) -> Settings:
    return Settings(api_keys=json.dumps(KEYS), store_url=store_url, reload_interval=0)


def customers_of(history: pl.DataFrame, n: int, offset: int = 0) -> pl.DataFrame:
    ids = history["customer_id"].unique().sort().slice(offset, n)
    return history.filter(pl.col("customer_id").is_in(ids.implode()))


def score_body(transactions: pl.DataFrame, as_of: date,
               consents: pl.DataFrame | None = None) -> dict:
    """A ``POST /v1/score`` body holding these transactions, customer by customer, with each
    customer's ``consent_<channel>`` flags from ``consents`` (a customers table) if given."""
    customers: dict[str, list[dict]] = {}
    for row in transactions.iter_rows(named=True):
        customers.setdefault(row["customer_id"], []).append({
            "ts": row["ts"].isoformat(), "amount": row["amount"], "order_id": row["order_id"],
            "product_id": row["product_id"], "quantity": row["quantity"], "channel": row["channel"],
        })
    flags = {}
    if consents is not None:
        columns = [c for c in consents.columns if c.startswith("consent_")]
        flags = {row["customer_id"]: {c.removeprefix("consent_"): row[c] for c in columns}
                 for row in consents.iter_rows(named=True)}
    return {"as_of": as_of.isoformat(),
            "customers": [{"customer_id": cid, "transactions": txs,
                           **({"consents": flags[cid]} if cid in flags else {})}
                          for cid, txs in customers.items()]}


@pytest.fixture
def no_registry(monkeypatch):
    """No model to load: the registry look-up fails at once (and nothing touches MLflow)."""
    def missing(alias: str) -> str:
        raise LookupError(f"no alias {alias!r} (stubbed in tests)")

    monkeypatch.setattr("retain.serving.deps.alias_version", missing)
