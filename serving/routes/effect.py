"""The measured effect of the messages against the global control group: ``GET /v1/effect``.

Serves what ``retain effect`` measured and kept in the score store (serving/effect_store.py):
the latest measurement, or the latest of one split with ``?split=``. Measuring needs the whole
transactions and contacts logs and a bootstrap, seconds to minutes of work: it belongs to the
batch command, and the API answers at once from what it kept. Needs the ``export`` scope.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from retain.serving.deps import Service, problem_responses, service
from retain.serving.effect_store import latest_effect
from retain.serving.schemas import EffectPublic
from retain.serving.security import require

router = APIRouter(tags=["effect"])


@router.get(
    "/v1/effect", response_model=EffectPublic, dependencies=[require("export")],
    operation_id="get_effect",
    summary="The latest measured effect against the global control group (scope: export)",
    responses=problem_responses(401, 403, 422, 503),
)
async def effect(
    svc: Annotated[Service, Depends(service)],
    split: Annotated[Literal["none", "goal", "channel", "segment"] | None, Query(
        description="The latest measurement with this split; default: the latest of any",
        examples=["channel"])] = None,
) -> EffectPublic:
    """Rows of ``period, split, metric, treated_customers, control_customers, treated_mean,
    control_mean, difference, ci_low, ci_high, relative_lift, incremental_revenue, cost,
    romi``, as `retain effect --out effect.json` writes them; ``effect_id`` null and no rows
    until `retain effect` has run against this store."""

    def read() -> EffectPublic:
        about, rows = latest_effect(svc.store, split)
        if about is None:
            return EffectPublic(effect_id=None, measured_at=None, date_from=None,
                                date_to=None, by=None, split_by=None, rows=[])
        return EffectPublic(**about, rows=rows)

    return await run_in_threadpool(read)
