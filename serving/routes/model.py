"""The model being served, and reloading it when its registry alias moved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from retain.models.registry import MODEL_NAME
from retain.serving.deps import Service, problem_responses, service
from retain.serving.schemas import ModelPublic, ReloadPublic, VerdictPublic
from retain.serving.security import require

router = APIRouter(tags=["model"])
AUTH_ERRORS = problem_responses(401, 403)


@router.get(
    "/v1/model", response_model=ModelPublic, dependencies=[require("score")],
    operation_id="get_model",
    summary="The model being served: version, training date, backtest metrics (scope: score)",
    responses=problem_responses(401, 403, 503, e503="No model loaded yet; see Retry-After"),
)
async def model_info(svc: Annotated[Service, Depends(service)]) -> ModelPublic:
    served = svc.holder.require()
    registered = served.registered
    created = registered.created_at_ms
    return ModelPublic(
        name=MODEL_NAME,
        version=registered.version,
        alias=served.alias,
        aliases=registered.aliases,
        run_id=registered.run_id,
        trained_as_of=served.pipeline.trained_as_of,
        created_at=datetime.fromtimestamp(created / 1000, UTC) if created else None,
        loaded_at=served.loaded_at,
        horizon_days=served.pipeline.horizon_days,
        backtest_metrics={k: v for k, v in sorted(registered.metrics.items())
                          if k.startswith("backtest.")},
        verdicts=verdicts(registered.metrics),
    )


def verdicts(metrics: dict[str, float]) -> dict[str, VerdictPublic]:
    from retain.serving.routes.ui import MODEL_METRICS, model_verdict

    out = {}
    for _, task, metric, higher, _ in MODEL_METRICS:
        row = model_verdict(metrics, task, metric, higher)
        if row is None:
            continue
        best = row["best"] or {}
        out[task] = VerdictPublic(
            model=row["chosen"], metric=metric, retain=row["ours"], alternative=best.get("name"),
            alternative_value=best.get("value"), diff=row["diff"], lo=row["lo"], hi=row["hi"],
            verdict=row["verdict"] or "unchecked", text=row["verdict_text"])
    return out


@router.post(
    "/v1/admin/reload", response_model=ReloadPublic, dependencies=[require("admin")],
    operation_id="reload_model",
    summary="Load the version the alias points at now (scope: admin)",
    description="The service also checks every RETAIN_RELOAD_INTERVAL seconds. 200: reloaded, "
    "or unchanged when the alias did not move. 503: the reload failed and the previous model "
    "(if any) is still served; the body says which.",
    responses={**AUTH_ERRORS, 503: {"model": ReloadPublic, "description": "Reload failed"}},
)
async def reload_model(svc: Annotated[Service, Depends(service)]) -> JSONResponse:
    outcome = await svc.holder.refresh()
    body = ReloadPublic(status=outcome.status, model_version=outcome.model_version,
                        previous_version=outcome.previous_version, detail=outcome.detail)
    return JSONResponse(body.model_dump(), status_code=503 if outcome.status == "failed" else 200)
