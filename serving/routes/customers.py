"""Every customer of the latest batch run, page by page: ``GET /v1/customers``.

For a CRM that syncs the whole run: pages of up to 1,000 customers with their scores and
decision, in customer_id order. ``next_cursor`` continues where the page ended, on the same run
even when a newer one completes meanwhile (so a walk sees every customer once); it is null on
the last page. A cursor is opaque: its content may change between versions.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from retain.serving.deps import (
    INVALID_CURSOR_TYPE,
    ProblemError,
    Service,
    problem_responses,
    service,
)
from retain.serving.schemas import (
    CHANNEL_PATTERN,
    CHANNEL_TEXT,
    SEGMENT_PATTERN,
    BehaviourType,
    CustomersPagePublic,
    Goal,
    LifecycleStage,
    StoredScorePublic,
    ValueTier,
)
from retain.serving.security import require
from retain.serving.store import RunNotFound

router = APIRouter(tags=["scores"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_cursor(run_id: str, customer_id: str) -> str:
    text = orjson.dumps({"r": run_id, "c": customer_id})
    return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """``(run_id, customer_id)``, or a 400 problem for anything this service did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        run_id, customer_id = data["r"], data["c"]
        if not isinstance(run_id, str) or not isinstance(customer_id, str):
            raise TypeError
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeEncodeError):
        raise ProblemError(400, "invalid cursor: pass next_cursor of the previous page as it "
                           "is", INVALID_CURSOR_TYPE, "Invalid cursor") from None
    return run_id, customer_id


@router.get(
    "/v1/customers", response_model=CustomersPagePublic, dependencies=[require("export")],
    operation_id="list_customers",
    summary="Every customer of the latest batch run with scores and decision, page by page "
            "(scope: export)",
    description=__doc__,
    responses=problem_responses(
        400, 401, 403, 422, 503,
        e400="Invalid cursor, or its run is no longer stored (start again without cursor)"),
)
async def list_customers(
    svc: Annotated[Service, Depends(service)],
    goal: Annotated[Goal | None, Query(
        description="Only customers with this goal", examples=["reactivate"])] = None,
    channel: Annotated[str | None, Query(
        pattern=CHANNEL_PATTERN, description="Only this channel; none: customers without one. "
        f"{CHANNEL_TEXT}", examples=["email"])] = None,
    segment: Annotated[str | None, Query(
        pattern=SEGMENT_PATTERN, description="Only this micro-segment",
        examples=["at_risk-vip-stock_up"])] = None,
    lifecycle_stage: Annotated[LifecycleStage | None, Query(
        description="Only this lifecycle stage", examples=["at_risk"])] = None,
    value_tier: Annotated[ValueTier | None, Query(
        description="Only this value tier", examples=["vip"])] = None,
    behaviour_type: Annotated[BehaviourType | None, Query(
        description="Only this behaviour type", examples=["stock_up"])] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=(
        f"Customers per page, at most {MAX_LIMIT}"))] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(
        max_length=1024, description="next_cursor of the previous page; none for the first",
        examples=["eyJyIjoiMGMxZjlhOGU1ZDJiIiwiYyI6IkMwMDAxIn0"])
    ] = None,
) -> CustomersPagePublic:
    filters: dict[str, str | None] = {
        name: value for name, value in (("goal", goal), ("segment", segment),
                                        ("lifecycle_stage", lifecycle_stage),
                                        ("value_tier", value_tier),
                                        ("behaviour_type", behaviour_type)) if value is not None}
    if channel is not None:
        filters["channel"] = None if channel == "none" else channel
    after = decode_cursor(cursor) if cursor is not None else None

    def read() -> CustomersPagePublic:
        if after is not None:
            run_id, last = after
            run = svc.store.complete_run(run_id)
        else:
            run, last = svc.store.latest_run(), None
        if run is None and after is None:
            return CustomersPagePublic(run_id=None, as_of=None, model_version=None,
                                       limit=limit, customers=[], next_cursor=None)
        try:
            if run is None:
                raise RunNotFound
            # One row more than asked tells whether another page follows.
            rows = svc.store.page(run["run_id"], after=last, limit=limit + 1, filters=filters)
        except RunNotFound:
            raise ProblemError(400, "the cursor's batch run is no longer stored: start again "
                               "without cursor", INVALID_CURSOR_TYPE, "Invalid cursor") from None
        more = len(rows) > limit
        rows = rows[:limit]
        return CustomersPagePublic(
            run_id=run["run_id"], as_of=run["as_of"], model_version=run["model_version"],
            limit=limit, customers=[StoredScorePublic.model_validate(r) for r in rows],
            next_cursor=encode_cursor(run["run_id"], rows[-1]["customer_id"]) if more else None)

    return await run_in_threadpool(read)


