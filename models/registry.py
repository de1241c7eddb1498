"""The MLflow model registry: where the champion lives, and how it is loaded or moved.

Tracking and registry URI from ``MLFLOW_TRACKING_URI``; default the embedded
``sqlite:///mlflow.db`` in the working directory.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field

from models.pipeline import ScoringPipeline

MODEL_NAME = "retain"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def configure_mlflow() -> None:
    import mlflow

    # MLflow's own logs are chatty (and may print paths); keep ours.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())


@dataclass
class RegisteredPipeline:
    pipeline: ScoringPipeline
    version: str
    aliases: list[str] = field(default_factory=list)
    run_id: str = ""
    created_at_ms: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


def load_registered(version: str | None = None, alias: str = "champion") -> RegisteredPipeline:
    """The pipeline of a registered version (default: the one ``alias`` points at).

    Raises LookupError with a hint when there is no such version or alias.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    client = MlflowClient()
    try:
        found = (client.get_model_version(MODEL_NAME, version) if version
                 else client.get_model_version_by_alias(MODEL_NAME, alias))
    except MlflowException:
        what = f"version {version}" if version else f"alias '{alias}'"
        raise LookupError(
            f"no model '{MODEL_NAME}' {what} in the registry at {tracking_uri()}; "
            "train one with `retain train` (or set MLFLOW_TRACKING_URI)"
        ) from None
    try:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{found.version}")
    except ValueError as exc:
        raise LookupError(f"model '{MODEL_NAME}' version {found.version}: {exc}") from None
    pipeline = model.unwrap_python_model().pipeline
    run = client.get_run(found.run_id) if found.run_id else None
    metrics = dict(run.data.metrics) if run else {}
    return RegisteredPipeline(pipeline, str(found.version), list(found.aliases or []),
                              found.run_id or "", int(found.creation_timestamp or 0), metrics)


def set_alias(version: str, alias: str) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    client = MlflowClient()
    try:
        client.get_model_version(MODEL_NAME, version)
    except MlflowException:
        raise LookupError(f"no model '{MODEL_NAME}' version {version} at {tracking_uri()}") from None
    client.set_registered_model_alias(MODEL_NAME, alias, version)
