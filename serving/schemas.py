"""Request and response bodies, named by role: ``*Request`` in, ``*Public`` out.

Validation is strict (unknown fields are refused) and every bound is here, so a bad request
gets a 422 naming the field (``customers[3].transactions[0].amount``) before any scoring.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from features.contract import MAX_ABS_AMOUNT, normalize_customer_id

MAX_CUSTOMERS = 1000
MAX_ID_LENGTH = 128
MAX_ABS_QUANTITY = 1e9
# Dates outside this range are typing errors or sentinels (0001-01-01), not shop history.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2200, 1, 1)

EXAMPLE_REQUEST = {
    "as_of": "2026-07-01",
    "customers": [
        {
            "customer_id": "C0001",
            "transactions": [
                {"ts": "2026-03-02T10:15:00Z", "amount": 42.5, "order_id": "O-1001",
                 "product_id": "P-12", "quantity": 2, "channel": "web"},
                {"ts": "2026-05-28 18:40", "amount": 19.9, "order_id": "O-1187",
                 "product_id": "P-12", "quantity": 1, "channel": "app"},
            ],
        },
        {"customer_id": "C0002", "transactions": [{"ts": "2026-06-11", "amount": 12.5}],
         "consents": {"email": True, "sms": False}},
    ],
    "lang": "en",
}
EXAMPLE_SCORE = {
    "customer_id": "C0001", "as_of": "2026-07-01", "horizon_days": 90, "model_version": "3",
    "p_alive": 0.93, "churn_probability": 0.31, "expected_orders": 1.6,
    "predicted_revenue": 61.2, "clv_12m": 188.4, "next_order_date": "2026-07-24",
    "next_order_p10": "2026-07-09", "next_order_p90": "2026-09-30", "overdue_days": 0.0,
    "due_product_id": "P-12", "due_product_date": "2026-08-23", "score_source": "gbm",
    "lifecycle_stage": "active", "value_tier": "high", "behaviour_type": "stock_up",
    "segment": "active-high-stock_up", "goal": "replenish", "channel": "push",
    "send_at": "2026-08-21", "offer": "none",
    "reason": "Orders every 14 days; last order 34 days ago; product P-12 runs out around "
              "2026-08-23.",
    "control_group": False, "expected_incremental_revenue": 0.9, "contact_cost": 0.05,
    "error": None,
}
EXAMPLE_UNSCORED = {
    **{name: None for name in EXAMPLE_SCORE},
    "customer_id": "C0002", "as_of": "2026-07-01", "horizon_days": 90, "model_version": "3",
    "error": {"code": "no_purchase_before_as_of",
              "message": "no purchase (an order with a positive total) before as_of"},
}


def _iso_text(value: Any) -> Any:
    # Numbers are refused rather than read as epoch seconds or milliseconds: ambiguous.
    if isinstance(value, (int, float)):
        # ValueError, not TypeError: pydantic turns only ValueError into a 422 field error.
        raise ValueError("expected an ISO 8601 date or datetime string")  # noqa: TRY004
    return value


def _naive_utc(value: datetime) -> datetime:
    """The contract's timestamps: naive means UTC, aware values are converted to UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()} (UTC)")
    return value


def _plausible_day(value: date) -> date:
    if not EARLIEST.date() < value < LATEST.date():
        raise ValueError(f"must be after {EARLIEST.date()} and before {LATEST.date()}")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_naive_utc)]
Day = Annotated[date, BeforeValidator(_iso_text), AfterValidator(_plausible_day)]
# As the batch loader: a float id a spreadsheet wrote (17850.0) is the customer 17850.
CustomerId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(normalize_customer_id),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_ID_LENGTH)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TransactionIn(TypedDict):
    """One transaction line (the data contract of ``retain features``).

    A TypedDict, not a model: a request holds up to ~100k of these, and plain dicts validate
    several times faster than model instances.
    """

    __pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[misc]

    ts: Annotated[Timestamp, Field(description="ISO 8601; naive means UTC, aware is converted")]
    amount: Annotated[float, Field(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT, description=(
        "Line revenue; negative = return, netted within its order"))]
    order_id: NotRequired[Annotated[Text | None, Field(description="Missing: one order per line")]]
    product_id: NotRequired[Text | None]
    quantity: NotRequired[Annotated[float | None, Field(
        ge=-MAX_ABS_QUANTITY, le=MAX_ABS_QUANTITY, description="Missing: 1")]]
    channel: NotRequired[Annotated[Text | None, Field(description="web, app, store, ...")]]


ChannelName = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                               min_length=1, max_length=32)]


class CustomerIn(Strict):
    customer_id: CustomerId = Field(description="Surrounding spaces are stripped")
    transactions: list[TransactionIn] = Field(
        description="The customer's history; lines on or after as_of are not used (counted "
        "in lines_after_as_of)"
    )
    consents: dict[ChannelName, bool] | None = Field(
        None, max_length=32,
        description="Consent per contact channel, e.g. {\"email\": true, \"sms\": false}. "
        "Only channels with consent are chosen; missing means no consent to any.")
    recent_messages: list[Timestamp] | None = Field(
        None, max_length=1000,
        description="When messages were sent to the customer lately: the frequency cap "
        "moves send_at so that it holds.")


class ScoreRequest(Strict):
    """Customers' transaction histories, scored at ``as_of`` from lines strictly before it."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    as_of: Day = Field(description="Scores use transactions strictly before this date")
    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_CUSTOMERS,
                                        description=f"1 to {MAX_CUSTOMERS} distinct customers")
    lang: Literal["en", "ru"] = Field("en", description="Language of the reasons")


class ScoreErrorPublic(BaseModel):
    code: Literal["no_transactions", "no_purchase_before_as_of"]
    message: str


class ScoreFields(BaseModel):
    """The score columns of one customer, as the batch (``retain score``) computes them."""

    customer_id: str
    as_of: date
    horizon_days: int | None
    model_version: str
    p_alive: float | None = Field(description="Probability the customer is still active")
    churn_probability: float | None = Field(description="No order within the horizon")
    expected_orders: float | None = Field(description="Orders expected within the horizon")
    predicted_revenue: float | None = Field(description="Revenue expected within the horizon")
    clv_12m: float | None = Field(description="Discounted value of the next 12 months")
    next_order_date: date | None = Field(description="Median predicted next order")
    next_order_p10: date | None
    next_order_p90: date | None
    overdue_days: float | None = Field(description="Days past the customer's own usual interval")
    due_product_id: str | None = Field(description="The product whose own cadence runs out next")
    due_product_date: date | None
    score_source: str | None = Field(
        description="gbm: the LightGBM models; btyd: the probabilistic model (cold start)"
    )
    lifecycle_stage: str | None = Field(
        None, description="new, active, at_risk, sleeping or lost")
    value_tier: str | None = Field(None, description="vip, high, mid or low (by 12-month CLV)")
    behaviour_type: str | None = Field(None, description="stock_up, hedonist or occasional")
    segment: str | None = Field(None, description="<lifecycle>-<tier>-<behaviour>")
    goal: str | None = Field(None, description=(
        "onboard, cross_sell, replenish, reactivate, win_back, keep_vip, none, or control "
        "(the global control group: never any action)"))
    channel: str | None = Field(None, description="A consented channel; null: no action")
    send_at: date | None = Field(None, description="When to send; null: no action")
    offer: str | None = Field(None, description="none, or a discount that pays for itself")
    reason: str | None = Field(None, description="One sentence a marketer can trust")
    control_group: bool | None = Field(None, description="In the global control group")
    expected_incremental_revenue: float | None = Field(
        None, description="Revenue the action is expected to add")
    contact_cost: float | None = Field(None, description="The message's and the offer's cost")


class ScorePublic(ScoreFields):
    """One customer's scores; with ``error`` set, the score fields are null."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SCORE, EXAMPLE_UNSCORED]})

    error: ScoreErrorPublic | None = None


class ScoresPublic(BaseModel):
    """Every requested customer, in request order."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_version": "3", "as_of": "2026-07-01", "scores": [EXAMPLE_SCORE, EXAMPLE_UNSCORED],
    }]})

    model_version: str
    as_of: date
    lines_after_as_of: int = Field(0, description=(
        "Lines dated on or after as_of: outside the window, not used (as in retain score)"))
    scores: list[ScorePublic]


class VerdictPublic(BaseModel):
    model: str | None = Field(description="The model this task is scored by: simple baseline, "
                              "probabilistic model (BTYD) or LightGBM")
    metric: str
    retain: float | None = Field(description="retain's backtest figure (the chosen model)")
    alternative: str | None = Field(description="The best model of another kind")
    alternative_value: float | None
    diff: float | None = Field(description="retain minus the alternative, positive = retain is "
                               "better (for an error too)")
    lo: float | None = Field(description="95% paired bootstrap interval of diff, low end")
    hi: float | None
    verdict: str = Field(description="better, worse, tie (the interval holds zero) or "
                         "unchecked (a model trained before the check)")
    text: str


class ModelPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "retain", "version": "3", "alias": "champion", "aliases": ["champion"],
        "run_id": "ae902a2650a04b18a5a46c889679251c", "trained_as_of": "2026-07-01",
        "created_at": "2026-07-01T09:12:44Z", "loaded_at": "2026-07-02T06:00:03Z",
        "horizon_days": 90,
        "backtest_metrics": {"backtest.churn.retain.auc": 0.921,
                             "backtest.value.retain.spearman": 0.65},
    }]})

    name: str
    version: str
    alias: str = Field(description="The registry alias this service follows")
    aliases: list[str] = Field(description="Every alias of this version")
    run_id: str
    trained_as_of: date | None = Field(description="The training data's as-of date")
    created_at: datetime | None = Field(description="When the version was registered (UTC)")
    loaded_at: datetime = Field(description="When this service loaded it (UTC)")
    horizon_days: int
    backtest_metrics: dict[str, float] = Field(description="The run's backtest.* metrics")
    verdicts: dict[str, VerdictPublic] = Field(
        default_factory=dict, description="Per task (churn, value, timing): the model used and "
        "how it compares with the best alternative on the backtest, as /ui shows it")


class ReloadPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "reloaded", "model_version": "4", "previous_version": "3",
         "detail": "alias 'champion' moved: now serving version 4"},
        {"status": "failed", "model_version": "3", "previous_version": "3",
         "detail": "reload failed, still serving version 3: no model 'retain' alias 'champion'"},
    ]})

    status: Literal["reloaded", "unchanged", "failed"]
    model_version: str | None = Field(description="The version served after this call")
    previous_version: str | None
    detail: str


class HealthPublic(BaseModel):
    status: Literal["ok"]


class ReadinessPublic(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None


class StoredScorePublic(ScoreFields):
    """One customer's row of the newest complete batch run that has them. Columns added to
    the store by later migrations come along."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "run_id": "0c1f9a8e5d2b4f7a9e3c6b1d8f2a4e6c",
        **{key: value for key, value in EXAMPLE_SCORE.items() if key != "error"},
    }]})

    run_id: str = Field(description="The batch scoring run the row comes from")


class SegmentCellPublic(BaseModel):
    segment: str | None
    goal: str | None
    channel: str | None = Field(description="null: customers with no action or no channel")
    customers: int
    predicted_revenue: float
    expected_incremental_revenue: float
    contact_cost: float


class SegmentsPublic(BaseModel):
    """The segment x goal x channel matrix of the latest complete batch run."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "run_id": "0c1f9a8e5d2b4f7a9e3c6b1d8f2a4e6c", "as_of": "2026-07-01",
        "model_version": "3", "customers": 1250,
        "cells": [{"segment": "at_risk-vip-stock_up", "goal": "replenish", "channel": "push",
                   "customers": 1250, "predicted_revenue": 481200.0,
                   "expected_incremental_revenue": 20400.0, "contact_cost": 62.5}],
    }]})

    run_id: str | None
    as_of: date | None
    model_version: str | None
    customers: int
    cells: list[SegmentCellPublic]


class ErrorPublic(BaseModel):
    detail: str
    request_id: str


class FieldErrorPublic(BaseModel):
    field: str = Field(description="Where, e.g. customers[3].transactions[0].amount")
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "detail": [{"field": "customers[0].transactions[1].amount",
                    "loc": ["body", "customers", 0, "transactions", 1, "amount"],
                    "msg": "Input should be less than or equal to 1000000000000",
                    "type": "less_than_equal"}],
        "errors_total": 1, "request_id": "5f0c8e0d1f7b4c43a8d1f0c2b6e9a7d1",
    }]})

    detail: list[FieldErrorPublic]
    errors_total: int = Field(description="All errors found; detail lists the first ones")
    request_id: str
