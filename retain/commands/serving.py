"""``retain serve``: the scoring API under uvicorn."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer

from retain.commands.common import example, fail

app = typer.Typer()


@app.command(epilog=example(
    "RETAIN_API_KEYS='{\"crm-key\": [\"score\"]}' retain serve --port 8000"))
def serve(
    host: Annotated[str, typer.Option("--host", metavar="<address>", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    reload_interval: Annotated[
        float | None,
        typer.Option("--reload-interval", min=0, help="Seconds between checks for a moved "
                     "model alias (0 = never). Default 60. Env: RETAIN_RELOAD_INTERVAL."),
    ] = None,
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"],
        typer.Option("--log-level", case_sensitive=False, help="Log level."),
    ] = "info",
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, envvar="RETAIN_WORKERS",
                     help="Worker processes, each with its own copy of the model: one per core "
                     "for throughput and a steady tail latency. /metrics adds up all workers "
                     "(through PROMETHEUS_MULTIPROC_DIR, a temporary directory unless set)."),
    ] = 1,
) -> None:
    """Serve the scoring API.

    With the model the registry's `champion` alias points at. API keys: RETAIN_API_KEYS='{"key": ["score"], "ops-key": ["admin", "metrics"]}'
    (RETAIN_ALLOW_NO_AUTH=true for local development only). Stored scores: RETAIN_STORE_URL.
    Registry: MLFLOW_TRACKING_URI. OpenAPI docs at /docs.
    """
    # Before the app is built: its metrics write to a given directory at once, and the workers
    # (new processes) read the variable when they import prometheus-client.
    with shared_metrics_directory(temporary=workers > 1):
        _serve(host, port, reload_interval, log_level, workers)


def _serve(host: str, port: int, reload_interval: float | None, log_level: str,
           workers: int) -> None:
    import uvicorn
    from pydantic import ValidationError

    from retain.config import settings
    from retain.serving.main import create_app
    from retain.serving.security import AuthConfigError
    from retain.serving.store import ScoreStore

    try:
        options = settings(reload_interval=reload_interval)
        app_ = create_app(options)
    except (AuthConfigError, ValidationError, ValueError) as exc:
        raise fail(str(exc)) from None
    # The store must open (StoreUnavailable is one `error:` line). The registry is not checked
    # here: the service listens at once and loads the model in the background (/readyz
    # answers 503 until one is in), however long the registry takes to answer.
    ScoreStore(options.store_url).open().close()
    level = log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn's access log would write raw paths (customer ids); the service logs its own
    # lines with the route template instead.
    # Headers over RETAIN_MAX_HEADER_BYTES get 431 (serving.limits; workers read the variable).
    os.environ["RETAIN_MAX_HEADER_BYTES"] = str(options.max_header_bytes)
    options = {"host": host, "port": port, "access_log": False, "log_level": log_level.lower(),
               "timeout_graceful_shutdown": 10, "http": "retain.serving.limits:HeaderLimitedProtocol"}
    if workers == 1:
        uvicorn.run(app_, **options)
        return
    # Worker processes build their app from an import string, with settings from the
    # environment: pass the flag on that way (the app built above only checked the settings).
    if reload_interval is not None:
        os.environ["RETAIN_RELOAD_INTERVAL"] = str(reload_interval)
    uvicorn.run("retain.serving.main:create_app", factory=True, workers=workers, **options)


@contextlib.contextmanager
def shared_metrics_directory(temporary: bool = True) -> Iterator[None]:
    """The directory where the workers' metrics meet (serving.metrics): the one
    PROMETHEUS_MULTIPROC_DIR names, made if missing and cleared of an earlier run's metric
    files as prometheus-client requires; else, when ``temporary``, a new temporary directory,
    removed at the end; else none (one process keeps its metrics in memory)."""
    from retain.serving.metrics import MULTIPROCESS_DIR_ENV

    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        # prometheus-client's own files only (the directory may be one where other .db
        # files live, retain.db among them).
        for kind in ("counter", "gauge", "histogram", "summary"):
            for stale in directory.glob(f"{kind}_*.db"):
                stale.unlink()
        yield
        return
    if not temporary:
        yield
        return
    directory = Path(tempfile.mkdtemp(prefix="retain-metrics-"))
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR_ENV]
        shutil.rmtree(directory, ignore_errors=True)
