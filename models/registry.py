"""The MLflow model registry: where the champion lives, and how it is loaded or moved.

Tracking and registry URI from ``MLFLOW_TRACKING_URI``; default the embedded
``sqlite:///mlflow.db`` in the working directory.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retain.features.redaction import mask_credentials
from retain.models.pipeline import ScoringPipeline

MODEL_NAME = "retain"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# MLflow retries a failed request 7 times with a doubling back-off (minutes on a refused
# port); the reachability check asks once and briefly, unless the user set these.
CHECK_ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_UNREACHABLE_SIGNS = (
    "connection refused", "max retries exceeded", "failed to establish a new connection",
    "name or service not known", "failed to resolve", "nodename nor servname",
    "temporary failure in name resolution", "timed out", "no route to host",
    "network is unreachable", "connection reset", "remote end closed connection",
)


class RegistryError(LookupError):
    """The registry has no such model, version or alias, or cannot be used; the message says
    which and what to do."""


class RegistryUnreachableError(RegistryError):
    """The MLflow tracking server does not answer (refused, unknown host, timed out)."""


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def masked_tracking_uri() -> str:
    """The tracking URI with its password masked: the only form messages and logs show."""
    return mask_credentials(tracking_uri())


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) says the server could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        text = str(current).lower()
        if any(sign in text for sign in _UNREACHABLE_SIGNS):
            return True
        current = current.__cause__ or current.__context__
    return False


def unreachable(exc: BaseException | None = None) -> RegistryUnreachableError:
    return RegistryUnreachableError(
        f"MLflow tracking server at {masked_tracking_uri()} is unreachable; start it or set "
        "MLFLOW_TRACKING_URI to a running server (or unset it for the local sqlite:///mlflow.db)")


@contextlib.contextmanager
def short_http_retries() -> Iterator[None]:
    """MLflow's HTTP retries and timeout kept short for a while, where the user has not set
    them; restored afterwards (training's own requests keep MLflow's patient defaults)."""
    added = {k: v for k, v in CHECK_ENV_DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def check_registry() -> None:
    """Raise RegistryUnreachableError, in seconds, when the tracking server does not answer.

    Local URIs (sqlite, file paths) are always reachable; for a server it is one cheap query.
    Other failures (authentication, a server error) are left to the command's own request,
    whose message says more."""
    uri = tracking_uri()
    if not uri.lower().startswith(("http://", "https://", "databricks")):
        return
    from mlflow import MlflowClient

    configure_mlflow()
    with short_http_retries():
        try:
            MlflowClient().search_registered_models(max_results=1)
        except Exception as exc:  # noqa: BLE001 - only the unreachable case is ours to name
            if is_unreachable(exc):
                raise unreachable(exc) from None


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
    # Installed packages outside the versions the model was logged with (said, not refused:
    # the pipeline's own format check refuses what cannot load).
    environment_notes: list[str] = field(default_factory=list)


def load_registered(version: str | None = None, alias: str = "champion") -> RegisteredPipeline:
    """The pipeline of a registered version (default: the one ``alias`` points at).

    Raises RegistryError (a LookupError) with a hint when there is no such version or alias,
    RegistryUnreachableError when the tracking server does not answer.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    client = MlflowClient()
    try:
        found = (client.get_model_version(MODEL_NAME, version) if version
                 else client.get_model_version_by_alias(MODEL_NAME, alias))
    except MlflowException as exc:
        if is_unreachable(exc):
            raise unreachable(exc) from None
        what = f"version {version}" if version else f"alias '{alias}'"
        raise RegistryError(
            f"no model '{MODEL_NAME}' {what} in the registry at {masked_tracking_uri()}; "
            "train one with `retain train` (or set MLFLOW_TRACKING_URI)"
        ) from None
    try:
        model, mismatches = load_model_here(f"models:/{MODEL_NAME}/{found.version}")
    except ValueError as exc:
        raise RegistryError(mask_credentials(
            f"model '{MODEL_NAME}' version {found.version}: {exc}")) from None
    pipeline = model.unwrap_python_model().pipeline
    run = client.get_run(found.run_id) if found.run_id else None
    metrics = dict(run.data.metrics) if run else {}
    notes = [(f"model version {found.version} was logged for {', '.join(mismatches)}; if its "
              "scores look wrong, retrain it with `retain train`")] if mismatches else []
    return RegisteredPipeline(pipeline, str(found.version), list(found.aliases or []),
                              found.run_id or "", int(found.creation_timestamp or 0), metrics,
                              notes)


def load_model_here(model_uri: str):
    """``mlflow.pyfunc.load_model`` for a process that runs retain (the API, the CLI), and the
    model's requirements this environment does not meet (``requirement_mismatches``).

    The installed retain's packages are imported first, so the copy of retain's code the model
    carries (for environments without retain, ``retain.models.pyfunc.CODE_PACKAGES``) does not
    replace them, and ``sys.path`` is left as it was (MLflow prepends that copy on every load:
    a reloading server would otherwise grow it). The model is read into a temporary directory
    removed afterwards (MLflow's own would stay behind on every load)."""
    import mlflow.pyfunc

    from retain.models.pyfunc import CODE_PACKAGES

    for package in CODE_PACKAGES:
        importlib.import_module(f"retain.{package}")
    saved = list(sys.path)
    try:
        with tempfile.TemporaryDirectory(prefix="retain-model-") as local:
            # MLflow's own requirements check maps every installed file to its distribution
            # (1-2 s of wall on each load); the model's dozen pins are checked directly.
            model = mlflow.pyfunc.load_model(model_uri, suppress_warnings=True, dst_path=local)
            requirements = next(Path(local).rglob("requirements.txt"), None)
            return model, requirement_mismatches(requirements) if requirements else []
    finally:
        sys.path[:] = saved


def requirement_mismatches(requirements: Path) -> list[str]:
    """The pins of a requirements file this environment does not meet, one text each: e.g.
    ``lightgbm <4.8,>=4.7.0 (4.8.0 installed)``, or ``name (not installed)``. A pin whose
    environment marker excludes this machine (``; sys_platform == "win32"``) is not one."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        try:
            wanted = Requirement(line.strip())
        except InvalidRequirement:  # blank lines, comments, pip options
            continue
        if wanted.marker is not None and not wanted.marker.evaluate():
            continue  # pip would not install it here either
        try:
            installed = version(wanted.name)
        except PackageNotFoundError:
            found.append(f"{wanted.name} (not installed)")
            continue
        if not wanted.specifier.contains(installed, prereleases=True):
            found.append(f"{wanted.name} {wanted.specifier} ({installed} installed)")
    return found


def set_alias(version: str, alias: str) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    client = MlflowClient()
    try:
        client.get_model_version(MODEL_NAME, version)
    except MlflowException as exc:
        if is_unreachable(exc):
            raise unreachable(exc) from None
        raise RegistryError(
            f"no model '{MODEL_NAME}' version {version} at {masked_tracking_uri()}") from None
    client.set_registered_model_alias(MODEL_NAME, alias, version)
