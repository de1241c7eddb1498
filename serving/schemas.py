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
from pydantic import Strict as PydanticStrict
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from retain.decisions.decide import GOALS
from retain.decisions.segments import BEHAVIOUR_TYPES, LIFECYCLE_STAGES, VALUE_TIERS
from retain.features.contract import (
    DOTTED_DATE_FORMATS,
    MAX_ABS_AMOUNT,
    channel_name,
    normalize_customer_id,
)

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


# The batch loader's unambiguous text dates beside ISO: 1C's day-first dotted dates
# (DOTTED_DATE_FORMATS) and CDNOW's compact 20260301, so a CRM can send lines as its export
# writes them.
_DATE_TEXT = "expected an ISO 8601 date or datetime string (or DD.MM.YYYY[ HH:MM[:SS]], YYYYMMDD)"


def _iso_text(value: Any) -> Any:
    # Numbers are refused rather than read as epoch seconds or milliseconds: ambiguous.
    if isinstance(value, (int, float)):
        # ValueError, not TypeError: pydantic turns only ValueError into a 422 field error.
        raise ValueError(_DATE_TEXT)  # noqa: TRY004
    if isinstance(value, str) and value[:1].isdigit():
        text = value.strip()
        if text.isdigit():
            # pydantic reads a string of digits as epoch seconds: "20260301" became
            # 1970-08-23. Eight digits are the batch's YYYYMMDD; other digits are refused.
            if len(text) == 8:
                try:
                    return datetime.strptime(text, "%Y%m%d")
                except ValueError:
                    pass
            raise ValueError(_DATE_TEXT)
        if text[2:3] == "." or text[1:2] == ".":
            for layout in DOTTED_DATE_FORMATS:
                try:
                    return datetime.strptime(text, layout)
                except ValueError:
                    continue
            raise ValueError(_DATE_TEXT)
        if text.replace(".", "", 1).isdigit():  # "1767225600.5": epoch seconds again
            raise ValueError(_DATE_TEXT)
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


# Numbers and booleans are taken as JSON gives them: "100" is not an amount and false is not a
# quantity (lax parsing would read them as 100 and 0 and score a typo).
StrictFloat = Annotated[float, PydanticStrict()]
StrictBool = Annotated[bool, PydanticStrict()]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TransactionIn(TypedDict):
    """One transaction line (the data contract of ``retain features``).

    A TypedDict, not a model: a request holds up to ~100k of these, and plain dicts validate
    several times faster than model instances.
    """

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        extra="forbid", allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE_REQUEST["customers"][0]["transactions"][0]]})

    ts: Annotated[Timestamp, Field(
        description="When the line was sold: ISO 8601 date or date-time (also DD.MM.YYYY[ "
        "HH:MM[:SS]] and YYYYMMDD, as the batch reads them); naive means UTC, aware is "
        "converted to UTC", examples=["2026-03-02T10:15:00Z"])]
    amount: Annotated[StrictFloat, Field(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT, description=(
        "Line revenue (a JSON number); negative = return, netted within its order"),
        examples=[42.5])]
    order_id: NotRequired[Annotated[Text | None, Field(
        description="The order the line belongs to; missing: the line is an order of its own",
        examples=["O-1001"])]]
    product_id: NotRequired[Annotated[Text | None, Field(
        description="The product sold; enables the product's own replenishment cadence",
        examples=["P-12"])]]
    quantity: NotRequired[Annotated[StrictFloat | None, Field(
        ge=-MAX_ABS_QUANTITY, le=MAX_ABS_QUANTITY,
        description="Units sold (a JSON number); missing: 1", examples=[2])]]
    channel: NotRequired[Annotated[Text | None, Field(
        description="Where the order was placed: web, app, store, ...", examples=["web"])]]
    status: NotRequired[Annotated[Text | None, Field(
        description="The order's status as the export writes it (case, spaces and ё do not "
        "matter): a cancelled line (Отменён, cancelled, ...) is left out, a returned line "
        "(Возврат, returned, refunded, ...) is a refund whatever the sign of its amount; any "
        "other value or none is a sale, as `retain` reads a status column",
        examples=["Доставлен"])]]


# As the batch reads a customers table's consent columns: "E-mail" is email, "СМС" is sms.
ChannelName = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                               min_length=1, max_length=32),
                        AfterValidator(channel_name)]


class CustomerIn(Strict):
    """One customer to score: their history, consents and recent messages."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST["customers"][1]]})

    customer_id: CustomerId = Field(description="The customer's id in your systems; surrounding "
                                    "spaces are stripped", examples=["C0001"])
    transactions: list[TransactionIn] = Field(
        description="The customer's history; lines on or after as_of are not used (counted "
        "in lines_after_as_of)", examples=[EXAMPLE_REQUEST["customers"][1]["transactions"]],
    )
    consents: dict[ChannelName, StrictBool] | None = Field(
        None, max_length=32,
        description="Consent per contact channel, e.g. {\"email\": true, \"sms\": false}. "
        "Only channels with consent are chosen; missing means no consent to any.",
        examples=[{"email": True, "sms": False}])
    recent_messages: list[Timestamp] | None = Field(
        None, max_length=1000,
        description="When messages were sent to the customer lately: the frequency cap "
        "moves send_at so that it holds.", examples=[["2026-06-28T09:00:00Z"]])


class ScoreRequest(Strict):
    """Customers' transaction histories, scored at ``as_of`` from lines strictly before it."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    as_of: Day = Field(description="Scores use transactions strictly before this date",
                       examples=["2026-07-01"])
    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_CUSTOMERS,
                                        description=f"1 to {MAX_CUSTOMERS} distinct customers")
    lang: Literal["en", "ru"] = Field("en", description="Language of the reasons")


# -- categories --------------------------------------------------------------------------------
# Closed sets are enums in the OpenAPI document. Channels are an open set: the rules file names
# them (push, email, telegram, vk, max, sms and whatsapp by default) and may add others.
Goal = Literal[GOALS]  # type: ignore[valid-type]
LifecycleStage = Literal[LIFECYCLE_STAGES]  # type: ignore[valid-type]
ValueTier = Literal[VALUE_TIERS]  # type: ignore[valid-type]
BehaviourType = Literal[BEHAVIOUR_TYPES]  # type: ignore[valid-type]
ScoreSource = Literal["gbm", "gbm_one_order", "btyd", "baseline"]
KNOWN_CHANNELS = ("push", "email", "telegram", "vk", "max", "sms", "whatsapp")
CHANNEL_PATTERN = r"^[a-z0-9_]{1,32}$"
SEGMENT_PATTERN = (f"^({'|'.join(LIFECYCLE_STAGES)})-({'|'.join(VALUE_TIERS)})-"
                   f"({'|'.join(BEHAVIOUR_TYPES)})$")
OFFER_PATTERN = r"^(none|discount_[0-9]+(\.[0-9]+)?)$"
Channel = Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)]
Segment = Annotated[str, StringConstraints(pattern=SEGMENT_PATTERN)]
Offer = Annotated[str, StringConstraints(pattern=OFFER_PATTERN)]
CHANNEL_TEXT = (f"Known channels: {', '.join(KNOWN_CHANNELS)}; a channel the decision rules "
                "add comes under its own name")


class ScoreErrorPublic(BaseModel):
    """Why a customer got no scores."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_UNSCORED["error"]]})

    code: Literal["no_transactions", "no_purchase_before_as_of"] = Field(
        description="Machine-readable reason")
    message: str = Field(description="The reason in words")


class ScoreFields(BaseModel):
    """The score columns of one customer, as the batch (``retain score``) computes them."""

    customer_id: str = Field(description="The customer's id, normalized as on input")
    as_of: date = Field(description="Scores use transactions strictly before this date")
    horizon_days: int | None = Field(description="The prediction horizon in days")
    model_version: str = Field(description="The registry version of the model that scored")
    p_alive: float | None = Field(description="Probability the customer is still active")
    churn_probability: float | None = Field(description="No order within the horizon")
    expected_orders: float | None = Field(description="Orders expected within the horizon")
    predicted_revenue: float | None = Field(description="Revenue expected within the horizon")
    clv_12m: float | None = Field(description="Discounted value of the next 12 months")
    next_order_date: date | None = Field(description="Median predicted next order")
    next_order_p10: date | None = Field(
        description="Next order: 10% chance it comes before this date")
    next_order_p90: date | None = Field(
        description="Next order: 90% chance it comes before this date")
    overdue_days: float | None = Field(description="Days past the customer's own usual interval")
    due_product_id: str | None = Field(description="The product whose own cadence runs out next")
    due_product_date: date | None = Field(description="When that product is expected to run out")
    score_source: ScoreSource | None = Field(
        description="gbm: the LightGBM models (gbm_one_order: for a one-order customer); btyd: "
        "the probabilistic model (cold start); baseline: the simple baseline"
    )
    lifecycle_stage: LifecycleStage | None = Field(
        None, description="new, active, at_risk, sleeping or lost")
    value_tier: ValueTier | None = Field(
        None, description="vip, high, mid or low (by 12-month CLV)")
    behaviour_type: BehaviourType | None = Field(
        None, description="stock_up, hedonist or occasional")
    segment: Segment | None = Field(None, description="<lifecycle>-<tier>-<behaviour>")
    goal: Goal | None = Field(None, description=(
        "onboard, cross_sell, replenish, reactivate, win_back, keep_vip, none, or control "
        "(the global control group: never any action)"))
    channel: Channel | None = Field(
        None, description=f"A consented channel; null: no action. {CHANNEL_TEXT}")
    send_at: date | None = Field(None, description="When to send; null: no action")
    offer: Offer | None = Field(None, description="none, or discount_<percent>: a discount that "
                                "pays for itself")
    reason: str | None = Field(None, description="One sentence a marketer can trust")
    control_group: bool | None = Field(None, description="In the global control group")
    expected_incremental_revenue: float | None = Field(
        None, description="Revenue the action is expected to add")
    contact_cost: float | None = Field(None, description="The message's and the offer's cost")


class ScorePublic(ScoreFields):
    """One customer's scores; with ``error`` set, the score fields are null."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SCORE, EXAMPLE_UNSCORED]})

    error: ScoreErrorPublic | None = Field(
        None, description="Why the customer could not be scored; null when scored")


class ScoresPublic(BaseModel):
    """Every requested customer, in request order."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_version": "3", "as_of": "2026-07-01", "lines_after_as_of": 0,
        "scores": [EXAMPLE_SCORE, EXAMPLE_UNSCORED],
    }]})

    model_version: str = Field(description="The registry version of the model that scored")
    as_of: date = Field(description="The request's as_of")
    lines_after_as_of: int = Field(0, description=(
        "Lines dated on or after as_of: outside the window, not used (as in retain score)"))
    scores: list[ScorePublic] = Field(description="One entry per requested customer")


EXAMPLE_VERDICT = {
    "model": "LightGBM", "metric": "auc", "retain": 0.921, "alternative": "BTYD",
    "alternative_value": 0.874, "diff": 0.047, "lo": 0.031, "hi": 0.062, "verdict": "better",
    "text": "LightGBM beats BTYD: AUC 0.921 against 0.874",
}


class VerdictPublic(BaseModel):
    """How the model of one task compares with the best alternative on the backtest."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_VERDICT]})

    model: str | None = Field(description="The model this task is scored by: simple baseline, "
                              "probabilistic model (BTYD) or LightGBM")
    metric: str = Field(description="The backtest metric compared, e.g. auc")
    retain: float | None = Field(description="retain's backtest figure (the chosen model)")
    alternative: str | None = Field(description="The best model of another kind")
    alternative_value: float | None = Field(description="The alternative's backtest figure")
    diff: float | None = Field(description="retain minus the alternative, positive = retain is "
                               "better (for an error too)")
    lo: float | None = Field(description="95% paired bootstrap interval of diff, low end")
    hi: float | None = Field(description="95% paired bootstrap interval of diff, high end")
    verdict: Literal["better", "worse", "tie", "unchecked"] = Field(
        description="better, worse, tie (the interval holds zero) or unchecked (a model "
        "trained before the check)")
    text: str = Field(description="The comparison in one sentence")


class ModelPublic(BaseModel):
    """The model being served."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "retain", "version": "3", "alias": "champion", "aliases": ["champion"],
        "run_id": "ae902a2650a04b18a5a46c889679251c", "trained_as_of": "2026-07-01",
        "created_at": "2026-07-01T09:12:44Z", "loaded_at": "2026-07-02T06:00:03Z",
        "horizon_days": 90,
        "backtest_metrics": {"backtest.churn.retain.auc": 0.921,
                             "backtest.value.retain.spearman": 0.65},
        "verdicts": {"churn": EXAMPLE_VERDICT},
    }]})

    name: str = Field(description="The registered model's name")
    version: str = Field(description="The registry version served")
    alias: str = Field(description="The registry alias this service follows")
    aliases: list[str] = Field(description="Every alias of this version")
    run_id: str = Field(description="The MLflow run that trained the version")
    trained_as_of: date | None = Field(description="The training data's as-of date")
    created_at: datetime | None = Field(description="When the version was registered (UTC)")
    loaded_at: datetime = Field(description="When this service loaded it (UTC)")
    horizon_days: int = Field(description="The prediction horizon in days")
    backtest_metrics: dict[str, float] = Field(description="The run's backtest.* metrics")
    verdicts: dict[str, VerdictPublic] = Field(
        default_factory=dict, description="Per task (churn, value, timing): the model used and "
        "how it compares with the best alternative on the backtest, as /ui shows it")


class ReloadPublic(BaseModel):
    """What a reload did."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "reloaded", "model_version": "4", "previous_version": "3",
         "detail": "alias 'champion' moved: now serving version 4"},
        {"status": "failed", "model_version": "3", "previous_version": "3",
         "detail": "reload failed, still serving version 3: no model 'retain' alias 'champion'"},
    ]})

    status: Literal["reloaded", "unchanged", "failed"] = Field(
        description="reloaded: a new version is served; unchanged: the alias did not move; "
        "failed: the previous model (if any) is still served")
    model_version: str | None = Field(description="The version served after this call")
    previous_version: str | None = Field(description="The version served before this call")
    detail: str = Field(description="What happened, in one sentence")


class HealthPublic(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = Field(description="Always ok")


class ReadinessPublic(BaseModel):
    """Whether a model is loaded, so scoring works."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ready", "model_version": "3"}, {"status": "not_ready", "model_version": None},
    ]})

    status: Literal["ready", "not_ready"] = Field(
        description="ready: a model is loaded; not_ready: none yet, retried in the background")
    model_version: str | None = Field(description="The version served; null when not ready")


EXAMPLE_STORED = {"run_id": "0c1f9a8e5d2b4f7a9e3c6b1d8f2a4e6c",
                  **{key: value for key, value in EXAMPLE_SCORE.items() if key != "error"},
                  "first_order_date": "2025-03-14", "last_order_date": "2026-05-28",
                  "orders": 9}


class StoredScorePublic(ScoreFields):
    """One customer's row of a complete batch run. Columns added to the store by later
    migrations come along."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE_STORED]})

    run_id: str = Field(description="The batch scoring run the row comes from")
    # Store migration 3: runs stored before it have them null.
    first_order_date: date | None = Field(
        default=None, examples=["2025-03-14"],
        description="The customer's first purchase (an order with a positive total) before "
                    "as_of; null in runs stored before the order history was kept")
    last_order_date: date | None = Field(
        default=None, examples=["2026-05-28"],
        description="The customer's last purchase before as_of; null in older runs")
    orders: int | None = Field(
        default=None, ge=0, examples=[9],
        description="Purchases before as_of, first and last included; null in older runs")


class CustomersPagePublic(BaseModel):
    """One page of the latest complete batch run's customers, in customer_id order."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "run_id": "0c1f9a8e5d2b4f7a9e3c6b1d8f2a4e6c", "as_of": "2026-07-01",
        "model_version": "3", "limit": 100, "customers": [EXAMPLE_STORED],
        "next_cursor": "eyJyIjoiMGMxZjlhOGU1ZDJiIiwiYyI6IkMwMDAxIn0",
    }]})

    run_id: str | None = Field(description="The batch run listed; null: no complete run yet")
    as_of: date | None = Field(description="The run's as-of date")
    model_version: str | None = Field(description="The model version that scored the run")
    limit: int = Field(description="The page size asked for")
    customers: list[StoredScorePublic] = Field(description="Up to limit customers")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on "
                                    "the last page")


class SegmentCellPublic(BaseModel):
    """One segment x goal x channel cell."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "segment": "at_risk-vip-stock_up", "goal": "replenish", "channel": "push",
        "customers": 1250, "predicted_revenue": 481200.0, "expected_incremental_revenue": 20400.0,
        "contact_cost": 62.5}]})

    segment: Segment | None = Field(description="<lifecycle>-<tier>-<behaviour>")
    goal: Goal | None = Field(description="The goal of the cell's customers")
    channel: Channel | None = Field(
        description=f"null: customers with no action or no channel. {CHANNEL_TEXT}")
    customers: int = Field(description="Customers in the cell")
    predicted_revenue: float = Field(description="Their revenue expected within the horizon")
    expected_incremental_revenue: float = Field(
        description="Revenue the actions are expected to add")
    contact_cost: float = Field(description="What the messages and offers cost")


class SegmentsPublic(BaseModel):
    """The segment x goal x channel matrix of the latest complete batch run."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "run_id": "0c1f9a8e5d2b4f7a9e3c6b1d8f2a4e6c", "as_of": "2026-07-01",
        "model_version": "3", "customers": 1250,
        "cells": [{"segment": "at_risk-vip-stock_up", "goal": "replenish", "channel": "push",
                   "customers": 1250, "predicted_revenue": 481200.0,
                   "expected_incremental_revenue": 20400.0, "contact_cost": 62.5}],
    }]})

    run_id: str | None = Field(description="The batch run; null: no complete run yet")
    as_of: date | None = Field(description="The run's as-of date")
    model_version: str | None = Field(description="The model version that scored the run")
    customers: int = Field(description="Customers in the run")
    cells: list[SegmentCellPublic] = Field(description="Largest cells first")


EXAMPLE_EFFECT_ROW = {
    "period": "2026-Q2", "split": "telegram", "metric": "revenue", "treated_customers": 812,
    "control_customers": 71, "treated_mean": 1630.2, "control_mean": 1402.9,
    "difference": 201.5, "ci_low": 40.3, "ci_high": 362.0, "relative_lift": 0.1436,
    "incremental_revenue": 163618.0, "cost": 487.2, "romi": 99.7,
    "period_start": "2026-04-01", "period_end": "2026-06-30", "raw_difference": 227.3}


class EffectRowPublic(BaseModel):
    """One period, split and metric of a measured effect (docs/effect.md defines each)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_EFFECT_ROW]})

    period: str = Field(description="2026-03 (a month) or 2026-Q1 (a quarter)")
    split: str = Field(description="'all', or the channel, goal or segment")
    metric: Literal["revenue", "orders", "buyers"] = Field(
        description="Per customer: net revenue, purchase orders, or bought at all (0 or 1)")
    treated_customers: int = Field(description="Customers sent a message in the period")
    control_customers: int = Field(description="Control-group customers the campaigns left out")
    treated_mean: float = Field(description="The metric per treated customer")
    control_mean: float | None = Field(description="The metric per control customer")
    difference: float | None = Field(
        description="Estimate of treated minus control (CUPED-adjusted: narrower interval; "
        "relative_lift, incremental_revenue and romi use it)")
    ci_low: float | None = Field(description="Lower end of the confidence interval")
    ci_high: float | None = Field(description="Upper end of the confidence interval")
    relative_lift: float | None = Field(description="difference / control_mean")
    incremental_revenue: float | None = Field(
        description="difference x treated customers (revenue rows only)")
    cost: float = Field(description="Cost of the messages sent in the period and split")
    romi: float | None = Field(
        description="(incremental revenue x margin - cost) / cost (revenue rows only)")
    period_start: date | None = Field(
        default=None, description="First day the row covers (a period cut by date_from starts later)")
    period_end: date | None = Field(
        default=None, description="Last day the row covers, inclusive (a period cut by date_to "
        "ends earlier)")
    raw_difference: float | None = Field(
        default=None, description="Measured: treated_mean minus control_mean, not adjusted "
        "(can differ from difference, even in sign, where the interval is wide)")


EXAMPLE_CHANNEL_PERIOD = {
    "period": "2026-04-01", "channel": "telegram", "reach": 2181, "messages": 3041,
    "response_rate": 0.1536, "control_rate": 0.1191, "uplift": 0.0255,
    "incremental_revenue_per_contact": 52.3, "incremental_revenue": 158996.0, "cost": 608.2,
    "return_per_cost": 78.4, "status": "active", "raw_uplift": 0.0345,
    "period_label": "2026-Q2"}
EXAMPLE_CHANNEL_SHARE = {"channel": "telegram", "status": "active", "current_share": 0.117,
                         "recommended_share": 0.139, "return_per_cost": 78.4}


class ChannelPeriodPublic(BaseModel):
    """One channel in one period, as the decisions measured it (docs/effect.md)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CHANNEL_PERIOD]})

    period: date = Field(description="First day of the month or quarter")
    period_label: str = Field(description="The period as `retain channels` labels it: 2026-Q1 "
                                          "(a quarter) or 2026-03 (a month)")
    channel: str = Field(description="The channel")
    reach: int | None = Field(description="Customers written to (null: not kept with the model)")
    messages: int = Field(description="Messages judged (response window closed)")
    response_rate: float = Field(description="Share of messages followed by an order within "
                                             "the response window")
    control_rate: float | None = Field(description="The control group's rate in the period")
    uplift: float | None = Field(
        description="Estimate the decisions use: raw_uplift shrunk toward the rules' "
        "default_uplift as if prior_messages more messages had shown it (stays near the "
        "default where messages change nothing)")
    raw_uplift: float | None = Field(
        default=None, description="Measured: response_rate minus control_rate, not shrunk "
        "(can be below zero where uplift is above)")
    incremental_revenue_per_contact: float | None = Field(
        description="uplift x average order value")
    incremental_revenue: float | None = Field(description="Per contact x messages")
    cost: float = Field(description="Cost of the messages")
    return_per_cost: float | None = Field(
        description="Incremental revenue x margin / cost (null: free)")
    status: str | None = Field(description="active, maintenance or unmeasured in the plan")


class ChannelSharePublic(BaseModel):
    """A channel's share of the messages: the latest period's and the recommended next."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CHANNEL_SHARE]})

    channel: str = Field(description="The channel")
    status: str | None = Field(description="active, maintenance or unmeasured in the plan")
    current_share: float = Field(description="Share of the latest period's messages")
    recommended_share: float = Field(description="Recommended share of the next period's; "
                                                 "never 0")
    return_per_cost: float | None = Field(description="The latest period's return per cost")


class ChannelsPublic(BaseModel):
    """The served model's channel measurements (what the decisions read) and the split."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_version": "3", "measured_at": "2026-07-01", "by": "quarter",
        "default_uplift": 0.02, "prior_messages": 2000.0, "rows": [EXAMPLE_CHANNEL_PERIOD], "split": [EXAMPLE_CHANNEL_SHARE]}]})

    model_version: str = Field(description="The served model, whose measurements these are")
    measured_at: date | None = Field(description="As-of date of the measurements")
    by: Literal["month", "quarter"] = Field(description="Period of each measurement")
    default_uplift: float = Field(description="The rules' default uplift each row's uplift "
                                              "is shrunk toward")
    prior_messages: float = Field(description="How many messages of the default the "
                                              "shrinkage weighs against each measurement")
    rows: list[ChannelPeriodPublic] = Field(description="Per channel and period")
    split: list[ChannelSharePublic] = Field(description="Largest recommended share first")


class EffectPublic(BaseModel):
    """The latest measurement `retain effect` kept in the score store."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "effect_id": "5b0e2c7d9a1f4e3b8c6d2a0f1e9b7c3d",
        "measured_at": "2026-07-02T08:00:00Z", "date_from": "2026-04-01",
        "date_to": "2026-07-01", "by": "quarter", "split_by": "channel",
        "rows": [EXAMPLE_EFFECT_ROW],
    }]})

    effect_id: str | None = Field(description="The measurement; null: none kept yet")
    measured_at: datetime | None = Field(description="When `retain effect` measured it")
    date_from: date | None = Field(description="First day measured")
    date_to: date | None = Field(description="Day after the last day measured")
    by: Literal["month", "quarter"] | None = Field(description="Period length")
    split_by: Literal["none", "goal", "channel", "segment"] | None = Field(
        description="How the customers were split")
    rows: list[EffectRowPublic] = Field(description="One per period, split and metric")


# -- errors ------------------------------------------------------------------------------------
PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldErrorPublic(BaseModel):
    """One invalid field of a request."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "field": "customers[0].transactions[1].amount",
        "loc": ["body", "customers", 0, "transactions", 1, "amount"],
        "msg": "Input should be a valid number", "type": "float_type"}]})

    field: str = Field(description="Where, e.g. customers[3].transactions[0].amount")
    loc: list[str | int] = Field(description="The same place as a path: body, query or "
                                 "path first")
    msg: str = Field(description="What is wrong")
    type: str = Field(description="Machine-readable kind of error, e.g. float_type, missing")


class ProblemPublic(BaseModel):
    """Every error: RFC 9457 problem details (application/problem+json)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "about:blank", "title": "Unauthorized", "status": 401,
         "detail": "missing or invalid API key (header X-API-Key)",
         "instance": "urn:retain:request:5f0c8e0d1f7b4c43a8d1f0c2b6e9a7d1",
         "request_id": "5f0c8e0d1f7b4c43a8d1f0c2b6e9a7d1"},
        {"type": "urn:retain:problem:validation", "title": "Invalid request", "status": 422,
         "detail": "1 invalid field: customers[0].transactions[1].amount",
         "instance": "urn:retain:request:5f0c8e0d1f7b4c43a8d1f0c2b6e9a7d1",
         "request_id": "5f0c8e0d1f7b4c43a8d1f0c2b6e9a7d1",
         "errors": [{"field": "customers[0].transactions[1].amount",
                     "loc": ["body", "customers", 0, "transactions", 1, "amount"],
                     "msg": "Input should be a valid number", "type": "float_type"}],
         "errors_total": 1},
    ]})

    type: str = Field(description="A URI naming the kind of problem; about:blank: the status "
                      "says it all", examples=["urn:retain:problem:validation"])
    title: str = Field(description="The kind of problem in a few words")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong this time, in one sentence")
    instance: str = Field(description="This occurrence: a URN holding the request id")
    request_id: str = Field(description="The request's id, as in the X-Request-ID header")
    errors: list[FieldErrorPublic] | None = Field(
        None, description="Validation errors (422): the first ones, one per field")
    errors_total: int | None = Field(
        None, description="Validation errors (422): how many were found in all")


# Older names of the error bodies, kept for importers.
ErrorPublic = ProblemPublic
ValidationErrorPublic = ProblemPublic
