"""One decision per customer: goal, channel with consent, when, offer or none, and why.

``decide(scores, features, ...)`` takes the pipeline's scores and the customer features they
came from and adds :data:`DECISION_COLUMNS`. It is a pure function of one batch of customers
plus fitted shop-wide figures (:class:`~retain.decisions.segments.ShopReference`), the channel plan
(:mod:`decisions.channels`) and the rules, so the nightly batch and the API decide alike.

Goals, first match wins: the global control group gets ``control``; lost customers among the
top spenders ``win_back``, other lost ``none``; sleeping ``reactivate``; new ``onboard``; a
product due within ``replenish_within_days`` ``replenish``; at risk ``reactivate``; VIP
``keep_vip``; customers who will most likely order anyway ``none``; the rest ``cross_sell``.

The channel is the cheapest one the customer consented to that works: not in maintenance (but
a maintenance channel keeps ``maintenance_share`` of its customers), not ignored by this
customer, and whose expected extra margin covers its cost. ``send_at`` follows the goal (the
day before the product runs out, now for the overdue, the post-purchase sequence for the new),
moved later when the frequency cap is full. A discount is offered only when the extra margin
it is expected to bring exceeds what it costs on the orders that would come anyway.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

from retain.decisions.channels import (
    ACTIVE,
    MAINTENANCE,
    UNMEASURED,
    ChannelMeasurements,
    channel_plan,
    measure_channels,
    no_measurements,
)
from retain.decisions.control import control_group
from retain.decisions.reasons import Language, reason_expression
from retain.decisions.rules import Rules
from retain.decisions.segments import (
    FEATURE_INPUTS,
    ShopReference,
    segment_expressions,
    segment_name,
)
from retain.features.orders import Frame, midnight

if TYPE_CHECKING:
    from retain.models.pipeline import ScoringPipeline

GOALS = ("onboard", "cross_sell", "replenish", "reactivate", "win_back", "keep_vip", "none",
         "control")
DECISION_COLUMNS = ("lifecycle_stage", "value_tier", "behaviour_type", "segment", "goal",
                    "channel", "send_at", "offer", "reason", "control_group",
                    "expected_incremental_revenue", "contact_cost")
DECISION_SCHEMA = {
    "lifecycle_stage": pl.String, "value_tier": pl.String, "behaviour_type": pl.String,
    "segment": pl.String, "goal": pl.String, "channel": pl.String, "send_at": pl.Date,
    "offer": pl.String, "reason": pl.String, "control_group": pl.Boolean,
    "expected_incremental_revenue": pl.Float64, "contact_cost": pl.Float64,
}
# What the customer has bought so far, from their features (purchases before as-of, as the
# features count them): the /ui timeline draws it, and the store keeps it (migration 3).
ORDER_HISTORY_SCHEMA = {
    "first_order_date": pl.Date, "last_order_date": pl.Date, "orders": pl.Int32,
}
ORDER_HISTORY_COLUMNS = tuple(ORDER_HISTORY_SCHEMA)
_ORDER_HISTORY_SOURCES = {"first_order_date": "first_purchase",
                          "last_order_date": "last_purchase", "orders": "orders"}
NO_OFFER = "none"
_NO_ACTION = ("none", "control")


def decide(
    scores: pl.DataFrame,
    features: pl.DataFrame,
    *,
    as_of: date,
    rules: Rules,
    reference: ShopReference,
    channels: ChannelMeasurements | None = None,
    consents: pl.DataFrame | None = None,
    contacts: Frame | None = None,
    lang: Language = "en",
) -> pl.DataFrame:
    """``scores`` with the decision columns added (see module doc), rows in ``scores``' order.

    ``consents``: ``customer_id`` and ``consent_<channel>`` booleans (a customers table); a
    customer without a row, or no table at all, consented to nothing. ``channels``: what the
    contacts log showed (None: nothing measured). ``contacts``: the recent contacts log, for
    the frequency cap.
    """
    # Small batches (the API's requests): the same frame in plain Python (decisions.small),
    # since here the ~25 polars operations below cost ~10 ms of fixed overhead per call.
    from retain.decisions.small import (  # here: it imports this module
        SMALL_DECISIONS_MAX,
        decide_small,
    )

    if scores.height <= SMALL_DECISIONS_MAX:
        return decide_small(scores, features, as_of=as_of, rules=rules, reference=reference,
                            channels=channels, consents=consents, contacts=contacts, lang=lang)
    frame = scores.join(features.select("customer_id", *FEATURE_INPUTS), on="customer_id",
                        how="left", maintain_order="left")
    frame = frame.with_columns(
        *segment_expressions(rules, reference, as_of),
        control_group(frame["customer_id"], share=rules.control_group.share,
                      salt=rules.control_group.salt),
        (pl.lit(as_of) - pl.col("first_purchase")).dt.total_days().alias("_days_since_first"),
    ).with_columns(segment_name(), _goal(rules, reference, as_of))
    frame = _with_channel(frame, rules, channels or no_measurements(), consents, as_of)
    frame = _with_offer_and_value(frame, rules)
    frame = _with_send_at(frame, rules, as_of, contacts)
    frame = frame.with_columns(reason_expression(lang, rules.offers.discount_percent))
    return frame.select(*scores.columns, *DECISION_COLUMNS)


def score_and_decide(
    pipeline: ScoringPipeline,
    transactions: Frame,
    as_of: date,
    *,
    rules: Rules,
    consents: pl.DataFrame | None = None,
    contacts: Frame | None = None,
    lang: Language = "en",
    measure_channels_from_contacts: bool = True,
) -> pl.DataFrame:
    """The pipeline's scores with the decision columns and then :data:`ORDER_HISTORY_COLUMNS`,
    for every customer with a purchase before ``as_of``. The shop-wide figures and channel
    measurements fitted at training are used; a full contacts log given here also refreshes the channel measurements (pass
    ``measure_channels_from_contacts=False`` for a few recent messages kept only for the
    frequency cap)."""
    features, products = pipeline.features(transactions, as_of)
    scores = pipeline.score_features(features, products, as_of)
    reference = pipeline.reference
    if reference is None:  # a pipeline fitted outside `retain train`
        reference = ShopReference.fit(scores, features)
    channels = pipeline.channel_measurements
    if contacts is not None and measure_channels_from_contacts:
        channels = measure_channels(contacts, transactions, as_of, rules.channels)
    decided = decide(scores, features, as_of=as_of, rules=rules, reference=reference,
                     channels=channels, consents=consents, contacts=contacts, lang=lang)
    return with_order_history(decided, features)


def with_order_history(frame: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with :data:`ORDER_HISTORY_COLUMNS` from the customers' ``features`` appended
    (one join, in ``frame``'s row order; null for a customer the features lack)."""
    history = [pl.col(source).cast(ORDER_HISTORY_SCHEMA[name]).alias(name)
               for name, source in _ORDER_HISTORY_SOURCES.items()]
    if frame.height == features.height and frame.get_column("customer_id").equals(
            features.get_column("customer_id")):
        # Same customers in the same order (the API's small requests): three columns stacked,
        # a few microseconds, where the join cost ~0.3 ms of a ~1.5 ms one-customer request.
        return frame.hstack(features.select(history).get_columns())
    history = features.select("customer_id", *history)
    return frame.join(history, on="customer_id", how="left", maintain_order="left")


def _goal(rules: Rules, reference: ShopReference, as_of: date) -> pl.Expr:
    stage = pl.col("lifecycle_stage")
    due_soon = pl.col("due_product_date") <= pl.lit(
        as_of + timedelta(days=rules.goals.replenish_within_days))
    top_spender = pl.col("revenue") >= reference.revenue_at_top(
        rules.goals.win_back_min_revenue_share)
    return (
        pl.when("control_group").then(pl.lit("control"))
        .when((stage == "lost") & top_spender).then(pl.lit("win_back"))
        .when(stage == "lost").then(pl.lit("none"))
        .when(stage == "sleeping").then(pl.lit("reactivate"))
        .when(stage == "new").then(pl.lit("onboard"))
        .when(due_soon.fill_null(False)).then(pl.lit("replenish"))
        .when(stage == "at_risk").then(pl.lit("reactivate"))
        .when(pl.col("value_tier") == "vip").then(pl.lit("keep_vip"))
        .when(pl.col("churn_probability") < rules.goals.none_below_churn_probability)
        .then(pl.lit("none"))
        .otherwise(pl.lit("cross_sell"))
        .alias("goal")
    )


def consented_channels(consents: pl.DataFrame | None, channels: list[str]) -> pl.DataFrame:
    """``customer_id, channel``: one row per consent given, for the channels of the plan."""
    columns = [f"consent_{c}" for c in channels
               if consents is not None and f"consent_{c}" in consents.columns]
    if not columns:
        return pl.DataFrame(schema={"customer_id": pl.String, "channel": pl.String})
    assert consents is not None
    return (
        consents.select("customer_id", *columns)
        .unpivot(index="customer_id", variable_name="channel", value_name="consent")
        .filter(pl.col("consent").fill_null(False))
        .select("customer_id", pl.col("channel").str.strip_prefix("consent_"))
    )


def _with_channel(frame: pl.DataFrame, rules: Rules, measurements: ChannelMeasurements,
                  consents: pl.DataFrame | None, as_of: date) -> pl.DataFrame:
    plan = channel_plan(measurements, rules.channels)
    acting = frame.filter(~pl.col("goal").is_in(_NO_ACTION)).select(
        "customer_id", "p_alive", "aov")
    # Maintenance keeps a small share of the customers it could reach, drawn afresh each day
    # (as_of in the draw) so that over time it measures across the whole audience.
    maintenance_draw = (
        pl.concat_str(pl.col("customer_id"), pl.lit(f":{as_of.isoformat()}"))
        .hash(seed=20_220_301) % 10_000 < int(rules.channels.maintenance_share * 10_000)
    )
    status = pl.col("status")
    rank = (
        pl.when((status == MAINTENANCE) & maintenance_draw).then(0)
        .when(status.is_in([ACTIVE, UNMEASURED])).then(1)
        .otherwise(2)
    )
    extra_margin = (pl.col("uplift") * pl.col("p_alive") * pl.col("aov").fill_null(0.0)
                    * rules.offers.margin)
    chosen = (
        consented_channels(consents, plan["channel"].to_list())
        .join(acting, on="customer_id", how="inner")
        .join(plan, on="channel", how="inner")
        .join(measurements.ignored, on=["customer_id", "channel"], how="anti")
        # Paid messages must pay for themselves; the maintenance share is there to measure.
        .filter((pl.col("cost") == 0) | (extra_margin >= pl.col("cost")) | (rank == 0))
        # Ties (same rank, cost and uplift) go to the first channel by name: the same choice
        # whatever the batch.
        .sort([pl.col("customer_id"), rank, pl.col("cost"), pl.col("uplift"), pl.col("channel")],
              descending=[False, False, False, True, False])
        .group_by("customer_id", maintain_order=True).first()
        .select("customer_id", "channel", pl.col("cost").alias("_channel_cost"),
                pl.col("uplift").alias("_channel_uplift"))
    )
    return frame.join(chosen, on="customer_id", how="left", maintain_order="left")


def _with_offer_and_value(frame: pl.DataFrame, rules: Rules) -> pl.DataFrame:
    offers = rules.offers
    contacted = pl.col("channel").is_not_null()
    aov = pl.col("aov").fill_null(0.0)
    churn = pl.col("churn_probability")
    # Extra order probability from the discount: only a customer still alive who would not
    # order anyway can be moved; everyone who orders redeems it.
    moved = offers.discount_uplift * pl.col("p_alive") * churn
    discount_cost = offers.discount_percent / 100 * aov * ((1 - churn) + moved)
    worth_it = contacted & (pl.col("goal") != "onboard") & (moved * aov * offers.margin
                                                           > discount_cost)
    message = pl.col("_channel_uplift").fill_null(0.0) * pl.col("p_alive")
    return frame.with_columns(
        pl.when(worth_it).then(pl.lit(f"discount_{offers.discount_percent:g}"))
        .otherwise(pl.lit(NO_OFFER)).alias("offer"),
        pl.when(contacted)
        .then((message + pl.when(worth_it).then(moved).otherwise(0.0)) * aov)
        .otherwise(0.0).alias("expected_incremental_revenue"),
        pl.when(contacted)
        .then(pl.col("_channel_cost") + pl.when(worth_it).then(discount_cost).otherwise(0.0))
        .otherwise(0.0).alias("contact_cost"),
    )


def _with_send_at(frame: pl.DataFrame, rules: Rules, as_of: date,
                  contacts: Frame | None) -> pl.DataFrame:
    timing = rules.timing
    today = pl.lit(as_of)
    goal = pl.col("goal")
    steps = timing.post_purchase_days.model_dump()  # guide, review, cross_sell, repeat_offer
    step_dates = {name: pl.col("first_purchase") + pl.duration(days=days)
                  for name, days in steps.items()}
    next_step = pl.lit("repeat_offer")
    for name in reversed(list(steps)):
        next_step = pl.when(step_dates[name] >= today).then(pl.lit(name)).otherwise(next_step)
    onboard_at = pl.min_horizontal(
        *(pl.when(d >= today).then(d) for d in step_dates.values())).fill_null(today)
    planned = (
        pl.when(goal == "replenish")
        .then(pl.col("due_product_date") - pl.duration(days=timing.replenish_lead_days))
        .when(goal == "onboard").then(onboard_at)
        .when(goal == "cross_sell")
        .then(pl.col("last_purchase") + pl.duration(days=steps["cross_sell"]))
        .when(goal == "keep_vip")
        .then(pl.col("next_order_date") - pl.duration(days=timing.keep_vip_lead_days))
        .otherwise(today)
    )
    frame = frame.with_columns(next_step.alias("_step"), planned.alias("_planned"))
    frame = frame.join(cap_free_dates(contacts, as_of, rules), on="customer_id", how="left",
                       maintain_order="left")
    send_at = pl.max_horizontal(pl.col("_planned"), today, pl.col("_cap_free"))
    return frame.with_columns(
        pl.when(pl.col("channel").is_not_null()).then(send_at).otherwise(None).alias("send_at"))


def cap_free_dates(contacts: Frame | None, as_of: date, rules: Rules) -> pl.DataFrame:
    """``customer_id, _cap_free``: the first day a new message keeps every ``per_days`` window
    at ``max_messages`` or fewer, for customers whose recent messages fill the cap."""
    cap = rules.frequency_cap
    if contacts is None:
        return pl.DataFrame(schema={"customer_id": pl.String, "_cap_free": pl.Date})
    since = midnight(as_of) - timedelta(days=cap.per_days)
    return (
        contacts.lazy()
        .filter(~pl.col("control") & (pl.col("ts") >= since) & (pl.col("ts") < midnight(as_of)))
        .group_by("customer_id")
        .agg(pl.col("ts").sort(descending=True).get(cap.max_messages - 1, null_on_oob=True)
             .alias("oldest_in_cap"))
        .filter(pl.col("oldest_in_cap").is_not_null())
        .select("customer_id",
                (pl.col("oldest_in_cap").dt.date() + pl.duration(days=cap.per_days))
                .alias("_cap_free"))
        .collect()
    )
