"""The measured effect of the messages: ``GET /v1/effect`` and ``GET /v1/channels``.

Serves what ``retain effect`` measured and kept in the score store (serving/effect_store.py):
the latest measurement, or the latest of one split with ``?split=``. Measuring needs the whole
transactions and contacts logs and a bootstrap, seconds to minutes of work: it belongs to the
batch command, and the API answers at once from what it kept.

``GET /v1/channels`` shows the served model's channel measurements, the very figures its
decisions read (kept by ``retain train --contacts``), per channel and period, with the
recommended split of the next period; money per contact uses the shop's median basket at
training. Both need the ``export`` scope.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from retain.analytics.channels_over_time import (
    measured_figures,
    period_label,
    recommended_split,
)
from retain.decisions.channels import no_measurements
from retain.serving.deps import Service, problem_responses, service
from retain.serving.effect_store import latest_effect
from retain.serving.schemas import ChannelsPublic, EffectPublic
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
    date_from: Annotated[date | None, Query(
        alias="from", description="Only a measurement made with this --from (YYYY-MM-DD)",
        examples=["2026-01-01"])] = None,
    date_to: Annotated[date | None, Query(
        alias="to", description="Only a measurement made with this --to (YYYY-MM-DD)",
        examples=["2026-07-01"])] = None,
    period: Annotated[str | None, Query(
        description="Only the rows of this period label", examples=["2026-Q1"],
        max_length=16)] = None,
) -> EffectPublic:
    """Rows of ``period, split, metric, treated_customers, control_customers, treated_mean,
    control_mean, difference, ci_low, ci_high, relative_lift, incremental_revenue, cost,
    romi, period_start, period_end``, as `retain effect --out effect.json` writes them;
    ``effect_id`` null and no rows until `retain effect` has run against this store (or
    none matches ``from``/``to``). ``retain effect --no-store`` trials are never served."""

    def read() -> EffectPublic:
        about, rows = latest_effect(svc.store, split, date_from=date_from, date_to=date_to,
                                    period=period)
        if about is None:
            return EffectPublic(effect_id=None, measured_at=None, date_from=None,
                                date_to=None, by=None, split_by=None, rows=[])
        return EffectPublic(**about, rows=rows)

    return await run_in_threadpool(read)


@router.get(
    "/v1/channels", response_model=ChannelsPublic, dependencies=[require("export")],
    operation_id="get_channels",
    summary="Each channel per period as the decisions measured it, and the next split "
            "(scope: export)",
    responses=problem_responses(401, 403, 503, e503="No model loaded yet; see Retry-After"),
)
async def channels(svc: Annotated[Service, Depends(service)]) -> ChannelsPublic:
    """Per channel and period: messages, response against the control group, the uplift
    measured (``raw_uplift``) and the estimate the decisions use (``uplift``, shrunk toward
    ``default_uplift``), extra revenue per contact, cost, return per cost and the plan's
    status, with ``period_label`` as `retain channels` prints it; and the recommended share of
    the next period's messages (maintenance channels keep a small one, never 0)."""
    served = svc.holder.require()

    def read() -> ChannelsPublic:
        pipeline = served.pipeline
        measured = pipeline.channel_measurements or no_measurements()
        aov = pipeline.reference.median_aov if pipeline.reference is not None else 0.0
        rules = svc.rules
        rows = measured_figures(measured, rules.channels, margin=rules.offers.margin, aov=aov)
        split = recommended_split(rows, maintenance_share=rules.channels.maintenance_share)
        # As measured at training: rules changed since would mislabel every period.
        by = measured.period or rules.channels.period
        labelled = rows.with_columns(period_label("period", by).alias("period_label"))
        return ChannelsPublic(model_version=served.version, measured_at=measured.measured_at,
                              by=by, default_uplift=rules.channels.default_uplift,
                              prior_messages=rules.channels.prior_messages,
                              rows=labelled.to_dicts(), split=split.to_dicts())

    return await run_in_threadpool(read)
