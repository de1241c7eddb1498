"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (a model is loaded, so
scoring works) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from retain.serving.deps import RETRY_AFTER_SECONDS, Service, problem_responses, service
from retain.serving.schemas import HealthPublic, ReadinessPublic
from retain.serving.security import require

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthPublic, summary="Liveness: always 200",
            operation_id="healthz")
async def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get(
    "/readyz", response_model=ReadinessPublic, summary="Readiness: 200 once a model is loaded",
    operation_id="readyz",
    responses={503: {"model": ReadinessPublic, "description": "No model loaded yet: the "
                     "service keeps trying in the background; see Retry-After"}},
)
async def readyz(svc: Annotated[Service, Depends(service)]) -> Response:
    served = svc.holder.current
    if served is None:
        body = ReadinessPublic(status="not_ready", model_version=None)
        return JSONResponse(body.model_dump(), status_code=503,
                            headers={"Retry-After": RETRY_AFTER_SECONDS})
    return JSONResponse(ReadinessPublic(status="ready", model_version=served.version).model_dump())


@router.get(
    "/metrics", summary="Prometheus metrics (scope: metrics)", operation_id="metrics",
    dependencies=[require("metrics")],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
               **problem_responses(401, 403)},
)
async def metrics(svc: Annotated[Service, Depends(service)]) -> Response:
    await run_in_threadpool(refresh_drift, svc)
    body, content_type = svc.metrics.exposition()
    return Response(body, media_type=content_type)


def refresh_drift(svc: Service) -> None:
    """The drift gauges from the latest score run's drift rows (read again only when a new
    run has come). The store being down leaves the gauges as they were: /metrics still
    answers, and its other series say more about the outage."""
    try:
        run = svc.store.latest_run()
        if run is None:
            return
        rows = svc.store.drift(run["run_id"])
    except Exception:  # noqa: BLE001 - the gauges are extra; /metrics must answer
        log.warning("drift gauges not refreshed: the score store could not be read")
        return
    svc.metrics.observe_drift(run["run_id"], list(zip(rows["kind"], rows["name"], rows["psi"],
                                                      strict=True)))
