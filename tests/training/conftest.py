"""Fixtures of the training tests."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A real embedded MLflow (SQLite) in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)
