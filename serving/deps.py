"""What the routes share: the served model (swapped by reloads), the score store, the keys and
the metrics, kept on ``app.state.service``."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from fastapi import HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from retain.config import Settings
from retain.decisions.rules import Rules
from retain.features.contract import ReadOptions
from retain.features.redaction import mask_credentials
from retain.models.pipeline import ScoringPipeline
from retain.models.registry import (
    MODEL_NAME,
    RegisteredPipeline,
    RegistryUnreachableError,
    check_registry,
    configure_mlflow,
    is_unreachable,
    load_registered,
    unreachable,
)
from retain.serving.metrics import ServiceMetrics
from retain.serving.security import KeyRing
from retain.serving.store import ScoreStore

log = logging.getLogger(__name__)

ReloadStatus = Literal["reloaded", "unchanged", "failed"]
_MAX_ERROR_CHARS = 300
RETRY_AFTER_SECONDS = "30"


@dataclass(frozen=True)
class ServedModel:
    registered: RegisteredPipeline
    alias: str
    loaded_at: datetime

    @property
    def version(self) -> str:
        return self.registered.version

    @property
    def pipeline(self) -> ScoringPipeline:
        return self.registered.pipeline


@dataclass(frozen=True)
class ReloadOutcome:
    status: ReloadStatus
    model_version: str | None
    previous_version: str | None
    detail: str


def alias_version(alias: str) -> str:
    """The registry version ``alias`` points at (one registry query, no artifact read).
    MLflow's own error, when there is none, says what is missing."""
    from mlflow import MlflowClient

    configure_mlflow()
    return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, alias).version)


def _short(exc: BaseException) -> str:
    """The first line of the error, credentials masked: it goes into logs and API answers."""
    if not isinstance(exc, RegistryUnreachableError) and is_unreachable(exc):
        exc = unreachable(exc)
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return mask_credentials(text)[:_MAX_ERROR_CHARS]


class ModelHolder:
    """The model being served. A reload swaps it in one assignment, so a request scores with
    either the old or the new model, never a mix; a reload that fails keeps the old one."""

    def __init__(self, alias: str, metrics: ServiceMetrics) -> None:
        self.alias = alias
        self.current: ServedModel | None = None
        self._metrics = metrics
        # Reloads run in worker threads (registry and artifact I/O); one at a time.
        self._lock = threading.Lock()
        # Set once the first load was tried, whatever came of it.
        self.first_attempt = asyncio.Event()

    def require(self) -> ServedModel:
        served = self.current
        if served is None:
            # Retry-After: the background check keeps trying to load one.
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded yet",
                                headers={"Retry-After": RETRY_AFTER_SECONDS})
        return served

    async def refresh(self) -> ReloadOutcome:
        """Load the version the alias points at, if it is not the one served. Never raises."""
        return await run_in_threadpool(self._refresh)

    def _refresh(self) -> ReloadOutcome:
        with self._lock:
            previous = self.current.version if self.current else None
            try:
                # In seconds when the server does not answer (MLflow's own retries would hold
                # this reload for minutes); the next check tries again anyway.
                check_registry()
                version = alias_version(self.alias)
                if version == previous:
                    outcome = ReloadOutcome(
                        "unchanged", previous, previous,
                        f"alias '{self.alias}' still points at version {version}")
                else:
                    registered = load_registered(version=version)
                    self.current = ServedModel(registered, self.alias, datetime.now(UTC))
                    outcome = ReloadOutcome(
                        "reloaded", version, previous,
                        f"alias '{self.alias}' -> now serving version {version}")
                    self._metrics.served(version, self.alias,
                                         str(registered.pipeline.trained_as_of or ""))
                    log.info("model: serving version %s (alias %s; was %s)", version,
                             self.alias, previous or "none")
                    for note in registered.environment_notes:
                        log.warning("model: %s", note)
            except Exception as exc:  # noqa: BLE001 - any failure must leave the old model serving
                kept = f"still serving version {previous}" if previous else "no model loaded"
                outcome = ReloadOutcome("failed", previous, previous,
                                        f"reload failed, {kept}: {_short(exc)}")
                log.warning("model: %s", outcome.detail)
            if outcome.status == "reloaded":
                settle_heap()
        self._metrics.reloads.labels(outcome.status).inc()
        return outcome

    async def keep_loaded(self, interval: float, retry: float) -> None:
        """Load a model, trying again every ``retry`` seconds until one is in; then follow
        the alias every ``interval`` seconds (0: never). Runs until cancelled."""
        try:
            while True:
                outcome = await self.refresh()
                self.first_attempt.set()
                if outcome.status != "failed" or self.current is not None:
                    break
                log.warning("no model yet; trying again in %g s (readyz answers 503 meanwhile)",
                            retry)
                await asyncio.sleep(retry)
        finally:
            self.first_attempt.set()
        if interval > 0:
            await self.watch(interval)

    async def watch(self, interval: float) -> None:
        """Follow the alias: check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()


def settle_heap() -> None:
    """Collect once and freeze what survives (the libraries and the model: ~400k objects)
    out of the garbage collector's view. Otherwise every full collection walks them all,
    ~100 ms with the GIL held, and requests arriving meanwhile wait: the worst of the API's
    tail latency. Unfreezing first lets a replaced model's cycles be freed (unless a request
    still holds that model: then they wait for the next reload). Runs at each load, so it
    stalls requests once per reload."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass
class Service:
    settings: Settings
    keyring: KeyRing
    metrics: ServiceMetrics
    holder: ModelHolder
    store: ScoreStore
    rules: Rules

    @property
    def statuses(self) -> ReadOptions:
        """The status values the settings add (RETAIN_CANCELLED_STATUSES, ...), as the
        batch reads them: /v1/score's lines get the batch's status rule."""
        return ReadOptions(cancelled_statuses=tuple(self.settings.cancelled_statuses),
                           returned_statuses=tuple(self.settings.returned_statuses))


# async: a plain-def dependency would cost a threadpool hop on every request.
async def service(request: Request) -> Service:
    return request.app.state.service


REQUEST_ID_KEY = "retain.request_id"
VALIDATION_TYPE = "urn:retain:problem:validation"
MALFORMED_BODY_TYPE = "urn:retain:problem:malformed-body"
INVALID_CURSOR_TYPE = "urn:retain:problem:invalid-cursor"


class ProblemError(Exception):
    """An error answered as problem details of its own type (e.g. a malformed body)."""

    def __init__(self, status: int, detail: str, type_: str = "about:blank",
                 title: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type, self.title = status, detail, type_, title


def request_id(request: Request) -> str:
    """The id the service middleware gave this request (echoed as ``X-Request-ID``)."""
    return request.scope.get(REQUEST_ID_KEY, "-")


ERROR_TEXT = {
    400: "Malformed body: not JSON, not UTF-8 or nested too deep",
    401: "Missing or invalid API key",
    403: "The API key lacks the route's scope",
    404: "Not found",
    413: "Request body over RETAIN_MAX_REQUEST_BYTES",
    415: "The body is not application/json",
    422: "Invalid request: errors lists each field",
    431: "Request headers too large",
    500: "Unexpected failure (no details; the request id finds it in the log)",
    503: "The model or the score store is not available yet; see Retry-After",
}
# Any route may answer these: the limits and the catch-all apply before and around routing.
COMMON_ERRORS = (413, 431, 500)


def problem_responses(*codes: int, **texts: str) -> dict[int | str, dict]:
    """The OpenAPI ``responses`` of a route's errors (problem details), described;
    ``texts`` (``e404="Unknown segment"``) say what a status means for this route."""
    from retain.serving.schemas import ProblemPublic

    return {code: {"model": ProblemPublic,
                   "description": texts.get(f"e{code}", ERROR_TEXT[code])}
            for code in (*codes, *COMMON_ERRORS)}
