"""The segment x goal x channel matrix and segment exports, from the latest stored batch run.

``GET /v1/segments`` gives the matrix; ``GET /v1/segments/{name}/export?format=csv|xlsx|parquet``
streams every customer of a micro-segment (optionally one goal or channel), read from the store
chunk by chunk, so a million rows stream in constant memory (a workbook or Parquet file is
assembled in a temporary file first, since neither is complete until written). Both need the
``export`` scope.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from retain.decisions.decide import GOALS
from retain.serving.deps import Service, problem_responses, service
from retain.serving.export import CHUNK_ROWS, MEDIA_TYPES, SEGMENT_NAMES, export_chunks
from retain.serving.schemas import Goal, SegmentsPublic
from retain.serving.security import require

log = logging.getLogger(__name__)
router = APIRouter(tags=["segments"])

NO_RUN = "no complete batch run in the score store yet: run `retain score` first"


@router.get(
    "/v1/segments", response_model=SegmentsPublic, dependencies=[require("export")],
    operation_id="get_segments",
    summary="The segment x goal x channel matrix of the latest batch run (scope: export)",
    responses=problem_responses(401, 403, 503),
)
async def segments(svc: Annotated[Service, Depends(service)]) -> SegmentsPublic:
    def read() -> SegmentsPublic:
        run = svc.store.latest_run()
        if run is None:
            return SegmentsPublic(run_id=None, as_of=None, model_version=None, customers=0,
                                  cells=[])
        matrix = svc.store.segment_matrix(run["run_id"])
        return SegmentsPublic(run_id=run["run_id"], as_of=run["as_of"],
                              model_version=run["model_version"],
                              customers=int(matrix["customers"].sum()),
                              cells=matrix.to_dicts())

    return await run_in_threadpool(read)


@router.get(
    "/v1/segments/{name}/export", dependencies=[require("export")],
    operation_id="export_segment",
    summary="Stream one micro-segment's customers as CSV, XLSX or Parquet (scope: export)",
    response_class=StreamingResponse,
    responses={
        **problem_responses(401, 403, 404, 422, 503,
                            e404="Unknown segment, or no batch run yet"),
        200: {"content": {"text/csv": {}, MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["parquet"]: {}},
              "description": "Every customer of the segment, with scores and decision, in the "
              "store's stable column order"},
    },
)
async def export_segment(
    name: Annotated[str, Path(max_length=64, description="The micro-segment: "
                              "<lifecycle>-<tier>-<behaviour>", examples=["at_risk-vip-stock_up"])],
    svc: Annotated[Service, Depends(service)],
    format: Annotated[Literal["csv", "xlsx", "parquet"], Query(
        description="csv, xlsx (an Excel workbook with typed cells) or parquet",
        examples=["xlsx"])] = "csv",
    goal: Annotated[Goal | None, Query(description="Only this goal",
                                       examples=["reactivate"])] = None,
    channel: Annotated[str | None, Query(
        max_length=32, description="Only this channel; 'none' for customers without one",
        examples=["email"])] = None,
    sep: Annotated[Literal[",", ";"], Query(description="Separator; Excel in Russian locales "
                                                        "expects ';'")] = ",",
    bom: Annotated[bool, Query(description="Start with a UTF-8 byte-order mark (Excel)")] = False,
    excel: Annotated[bool, Query(description="CSV for Excel in decimal-comma locales: ';', "
                                             "decimal comma, rounded numbers, byte-order mark",
                                       examples=[True])] = False,
    lang: Annotated[Literal["en", "ru"] | None, Query(
        description="Headers and categories in people's words; without it, codes",
        examples=["ru"])] = None,
) -> StreamingResponse:
    if name not in SEGMENT_NAMES:
        raise HTTPException(404, "unknown segment: names look like <lifecycle>-<value tier>-"
                                 "<behaviour>, e.g. at_risk-vip-stock_up (see /v1/segments)")
    if goal is not None and goal not in GOALS:
        raise HTTPException(422, f"unknown goal; use one of {', '.join(GOALS)}")
    filters: dict[str, str | None] = {"segment": name}
    if goal is not None:
        filters["goal"] = goal
    if channel is not None:
        filters["channel"] = None if channel == "none" else channel
    run = await run_in_threadpool(svc.store.latest_run)
    if run is None:
        raise HTTPException(404, NO_RUN)
    frames = await run_in_threadpool(svc.store.iter_scores, run["run_id"], CHUNK_ROWS, filters)
    chunks = export_chunks(frames, dict(svc.store.empty_frame().schema), fmt=format,
                           separator=sep, bom=bom, excel=excel, lang=lang, sheet=name)
    filename = f"retain-{name}-{run['as_of']}.{format}"
    return StreamingResponse(
        iterate_in_threadpool(chunks), media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
