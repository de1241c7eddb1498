"""One decision per customer: goal, channel with consent, when, offer or none, and why.

``decide(scores, features, ...)`` takes the pipeline's scores and the customer features they
came from and adds :data:`DECISION_COLUMNS`. It is a pure function of one batch of customers
plus fitted shop-wide figures (:class:`~retain.decisions.segments.ShopReference`), the channel plan
(:mod:`decisions.channels`) and the rules, so the nightly batch and the API decide alike.

Goals, first match wins: the global control group gets ``control``; lost customers among the
top spenders ``win_back``, other lost ``none``; sleeping ``reactivate``; new ``onboard``; a
product due within ``replenish_within_days`` ``replenish``; at risk ``reactivate``; VIP
``keep_vip``; customers who will most likely order anyway ``none``; the rest ``cross_sell``.

The channel is one the customer consented to that works: not in maintenance (but a maintenance
channel keeps ``maintenance_share`` of its customers), not ignored by this customer, and free or
whose expected extra margin covers its cost. Where several do, the customer draws one of them by
a salted hash of their id, weighted by the recommended split of the next period
(:func:`decisions.channels.split_weights`), so the shares follow the split; without measurements,
the cheapest. ``send_at`` follows the goal (the
day before the product runs out, now for the overdue, the post-purchase sequence for the new),
moved later when the frequency cap is full. A discount is offered only when the extra margin
it is expected to bring exceeds what it costs on the orders that would come anyway. With an
offer uplift model (``models.uplift``, fitted at training on past random offers) the extra
orders are the customer's own predicted uplift, and the orders that redeem the discount the
ones the model expects without it plus the extra ones; without a model, the rules'
``discount_uplift`` moves the customers who would not order anyway.

One implementation for one customer and for millions: every rule runs on numpy arrays of the
batch's columns (:mod:`decisions.arrays`), so a one-customer request pays microseconds per rule
and a nightly batch the same rules over whole arrays, with no loop over customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from retain.decisions.arrays import (
    Column,
    aligned,
    day_number,
    first_match,
    float_series,
    names_of,
    text_columns,
)
from retain.decisions.channels import (
    ACTIVE,
    MAINTENANCE,
    UNMEASURED,
    ChannelMeasurements,
    channel_plan,
    draw_by_split,
    measure_channels,
    no_measurements,
    split_weights,
)
from retain.decisions.control import control_group, hash_fraction
from retain.decisions.reasons import STEPS, Language, ReasonInputs, reason_texts
from retain.decisions.rules import Rules
from retain.decisions.segments import (
    FEATURE_INPUTS,
    ShopReference,
    segment_codes,
    segment_labels,
)
from retain.features.orders import Frame, midnight
from retain.features.segments import bool_column, date_column

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
_TEXT_COLUMNS = ("lifecycle_stage", "value_tier", "behaviour_type", "segment", "goal", "channel",
                 "offer", "reason")
_NO_MEASUREMENTS = no_measurements()  # one object, so its channel plan is cached like others


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
    offer_uplift: tuple[np.ndarray, np.ndarray] | None = None,
) -> pl.DataFrame:
    """``scores`` with the decision columns added (see module doc), rows in ``scores``' order.

    ``offer_uplift``: per row of ``scores``, the extra orders a discount brings in the model's
    window and the orders expected in it without one
    (``OfferUpliftModel.predict_arrays``); None: the rules' ``discount_uplift``.

    ``consents``: ``customer_id`` and ``consent_<channel>`` booleans (a customers table); a
    customer without a row, or no table at all, consented to nothing. ``channels``: what the
    contacts log showed (None: nothing measured). ``contacts``: the recent contacts log, for
    the frequency cap.
    """
    ids = scores.get_column("customer_id")
    # The scores' own columns win over the features' (as a join would keep them).
    scored = set(scores.columns)
    wanted = [c for c in FEATURE_INPUTS if c not in scored]
    own = dict(zip(wanted, aligned(ids, features, wanted), strict=True))
    x = {name: Column.of(scores.get_column(name) if name in scored else own[name])
         for name in ("p_alive", "clv_12m", "churn_probability", "due_product_date",
                      "next_order_date", *FEATURE_INPUTS)}
    Column.look_for_nan(list(x.values()))
    lifecycle, tier, behaviour = segment_codes(x, rules, reference, as_of)
    control = control_group(ids, share=rules.control_group.share, salt=rules.control_group.salt)
    goal = _goals(x, lifecycle, tier, control.to_numpy(), rules, reference, as_of)
    acting = (goal != GOALS.index("none")) & (goal != GOALS.index("control"))
    channel, channel_cost, channel_uplift = _channels(
        ids, x, acting, rules, channels or _NO_MEASUREMENTS, consents, as_of)
    contacted = channel >= 0
    offered, value, cost = _offer_and_value(x, goal, contacted, channel_cost, channel_uplift,
                                            rules, offer_uplift)
    step, send_at = _send_at(x, goal, ids, contacts, rules, as_of)
    reason = reason_texts(ReasonInputs(
        goal=goal, goal_names=GOALS, lost=lifecycle == 4, interval=x["interval_median"],
        days=x["days_since_last_order"],
        first=day_number(as_of) - x["first_purchase"], churn=x["churn_probability"],
        product=scores.get_column("due_product_id"), due=x["due_product_date"],
        next=x["next_order_date"], revenue=x["revenue"], step=step, no_channel=~contacted,
        offer=offered), lang, rules.offers.discount_percent)
    plan_channels = _plan(channels or _NO_MEASUREMENTS, rules).channels
    offer = f"discount_{rules.offers.discount_percent:g}"
    texts = dict(zip(_TEXT_COLUMNS, text_columns(_TEXT_COLUMNS, [
        *segment_labels(lifecycle, tier, behaviour),
        names_of(GOALS, goal),
        names_of((*plan_channels, None), channel),  # -1: no channel, null
        names_of((NO_OFFER, offer), offered.astype(np.int8)),
        reason,
    ]), strict=True))
    return scores.hstack([
        *(texts[c] for c in DECISION_COLUMNS[:6]),
        date_column("send_at", np.where(contacted, send_at, np.nan)),
        texts["offer"],
        texts["reason"],
        control,
        float_series("expected_incremental_revenue", value.values, value.ok),
        float_series("contact_cost", cost),
    ])


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
    order_history: bool = True,
) -> pl.DataFrame:
    """The pipeline's scores with the decision columns and then :data:`ORDER_HISTORY_COLUMNS`,
    for every customer with a purchase before ``as_of``. The shop-wide figures and channel
    measurements fitted at training are used; a full contacts log given here also refreshes the channel measurements (pass
    ``measure_channels_from_contacts=False`` for a few recent messages kept only for the
    frequency cap). ``order_history=False``: without those columns (POST /v1/score does not
    answer them)."""
    return score_decide_and_features(
        pipeline, transactions, as_of, rules=rules, consents=consents, contacts=contacts,
        lang=lang, measure_channels_from_contacts=measure_channels_from_contacts,
        order_history=order_history)[0]


def score_decide_and_features(
    pipeline: ScoringPipeline,
    transactions: Frame,
    as_of: date,
    *,
    rules: Rules,
    consents: pl.DataFrame | None = None,
    contacts: Frame | None = None,
    lang: Language = "en",
    measure_channels_from_contacts: bool = True,
    order_history: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`score_and_decide` and the customer features it scored from (``retain score``
    watches their drift between runs: analytics/drift.py)."""
    features, products = pipeline.features(transactions, as_of)
    scores = pipeline.score_features(features, products, as_of)
    reference = pipeline.reference
    if reference is None:  # a pipeline fitted outside `retain train`
        reference = ShopReference.fit(scores, features)
    channels = pipeline.channel_measurements
    if contacts is not None and measure_channels_from_contacts:
        channels = measure_channels(contacts, transactions, as_of, rules.channels)
    uplift_model = getattr(pipeline, "offer_uplift", None)  # absent from older pickles
    # The scores' rows are the features' rows, in order (score_features keeps them).
    offer_uplift = None if uplift_model is None else uplift_model.predict_arrays(features)
    decided = decide(scores, features, as_of=as_of, rules=rules, reference=reference,
                     channels=channels, consents=consents, contacts=contacts, lang=lang,
                     offer_uplift=offer_uplift)
    return (with_order_history(decided, features) if order_history else decided), features


def with_order_history(frame: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with :data:`ORDER_HISTORY_COLUMNS` from the customers' ``features`` appended
    (in ``frame``'s row order; null for a customer the features lack)."""
    sources = list(_ORDER_HISTORY_SOURCES.values())
    # Series by Series (aligned: no join for the API's requests, whose rows are the features'
    # own), not a select: a polars query costs ~0.3 ms of a one-customer request.
    columns = aligned(frame.get_column("customer_id"), features, sources)
    return frame.hstack([
        column.cast(ORDER_HISTORY_SCHEMA[name]).rename(name)
        for name, column in zip(_ORDER_HISTORY_SOURCES, columns, strict=True)])


def _goals(x: dict[str, Column], lifecycle: np.ndarray, tier: np.ndarray,
           control: np.ndarray, rules: Rules, reference: ShopReference,
           as_of: date) -> np.ndarray:
    """Indexes into :data:`GOALS`, first match wins (see module doc)."""
    goals = rules.goals
    due_soon = x["due_product_date"] <= day_number(as_of) + goals.replenish_within_days
    top_spender = x["revenue"] >= reference.revenue_at_top(goals.win_back_min_revenue_share)
    lost = lifecycle == 4
    code = GOALS.index
    return first_match([
        (control, code("control")),
        (lost & top_spender, code("win_back")),
        (lost, code("none")),
        (lifecycle == 3, code("reactivate")),
        (lifecycle == 0, code("onboard")),
        (due_soon, code("replenish")),
        (lifecycle == 2, code("reactivate")),
        (tier == 0, code("keep_vip")),
        (x["churn_probability"] < goals.none_below_churn_probability, code("none")),
    ], code("cross_sell"), len(control))


@dataclass(frozen=True)
class _Plan:
    """The channel plan as arrays, cheapest first: names, cost, uplift, rank by status (0
    maintenance, 1 active or unmeasured, 2 other), each channel's consent column, and the
    choice order when nothing is drawn for maintenance (rank, then the plan's order), and
    the recommended split's share of each channel (the weights of the draw among several)."""

    channels: tuple[str, ...]
    cost: np.ndarray
    uplift: np.ndarray
    rank: np.ndarray
    consent_columns: tuple[str, ...]
    free: np.ndarray
    order: np.ndarray
    maintenance: bool
    weights: np.ndarray


# The API decides against the same measurements and rules on every request: their plans, by
# identity (the rules hold a dict, so they cannot be hashed), with the rules kept alive.
_PLANS: dict[tuple[ChannelMeasurements, int], tuple[Rules, _Plan]] = {}


def _plan(measurements: ChannelMeasurements, rules: Rules) -> _Plan:
    cached = _PLANS.get((measurements, id(rules)))
    if cached is not None and cached[0] is rules:
        return cached[1]
    if len(_PLANS) >= 16:
        _PLANS.clear()
    plan = channel_plan(measurements, rules.channels)
    status = plan["status"].to_numpy()
    rank = np.where(status == MAINTENANCE, 0,
                    np.where(np.isin(status, [ACTIVE, UNMEASURED]), 1, 2))
    channels = tuple(plan["channel"].to_list())
    cost = plan["cost"].to_numpy()
    arrays = _Plan(channels, cost, plan["uplift"].to_numpy(), rank,
                   tuple(f"consent_{c}" for c in channels), cost == 0,
                   rank * len(channels) + np.arange(len(channels)), bool((rank == 0).any()),
                   split_weights(measurements, rules.channels, channels))
    _PLANS[(measurements, id(rules))] = (rules, arrays)
    return arrays


@lru_cache(maxsize=16)
def _ignored(measurements: ChannelMeasurements) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """The customers who ignore some channel, numbered, and per channel which of them do."""
    ignored = measurements.ignored
    customers = ignored.get_column("customer_id").unique(maintain_order=True).to_list()
    number = {customer: i for i, customer in enumerate(customers)}
    by_channel: dict[str, np.ndarray] = {}
    for customer, channel in zip(ignored.get_column("customer_id").to_list(),
                                 ignored.get_column("channel").to_list(), strict=True):
        by_channel.setdefault(channel, np.zeros(len(customers) + 1, dtype=bool))[
            number[customer]] = True
    return number, by_channel


def _channels(ids: pl.Series, x: dict[str, Column], acting: np.ndarray, rules: Rules,
              measurements: ChannelMeasurements, consents: pl.DataFrame | None,
              as_of: date) -> tuple[np.ndarray, np.ndarray, Column]:
    """Per customer the index of the channel chosen in the plan (-1: none), its cost and its
    uplift (0 and null without one)."""
    plan = _plan(measurements, rules)
    n, k = ids.len(), len(plan.channels)
    usable = np.zeros((n, k), dtype=bool)
    given = set() if consents is None else set(consents.columns)
    present = [c for c in plan.consent_columns if c in given]
    if present and acting.any():
        assert consents is not None
        for column, series in zip(present, aligned(ids, consents, present, duplicates="any"),
                                  strict=True):
            # A null consent is none: None in the object array reads as False.
            usable[:, plan.consent_columns.index(column)] = series.to_numpy().astype(bool)
        usable &= acting[:, None]
        if ids.null_count():
            usable &= ids.is_not_null().to_numpy()[:, None]  # a null id joins nothing
    if not usable.any():
        return np.full(n, -1), np.zeros(n), Column(np.zeros(n), np.zeros(n, dtype=bool))
    if measurements.ignored.height:
        number, by_channel = _ignored(measurements)
        # A dict lookup per id, in C (map): a sorted search or a join costs ~1 ms per call
        # however few the ids. The last slot of each channel's flags is "not found".
        rows = np.fromiter(map(number.get, ids.to_list(), repeat(len(number))), dtype=np.intp,
                           count=n)
        for j, channel in enumerate(plan.channels):
            if channel in by_channel:
                usable[:, j] &= ~by_channel[channel][rows]
    rank, order = plan.rank[None, :], plan.order[None, :]
    if plan.maintenance:
        # Maintenance keeps a small share of the customers it could reach, drawn afresh each
        # day (as_of in the draw) so that over time it measures across the whole audience.
        draw = (ids + f":{as_of.isoformat()}").hash(seed=20_220_301).to_numpy() % 10_000
        kept = draw < int(rules.channels.maintenance_share * 10_000)
        rank = np.where((plan.rank == 0) & ~kept[:, None], 2, rank)
        order = rank * k + np.arange(k)
    # Paid messages must pay for themselves; the maintenance share is there to measure.
    p_alive, aov = x["p_alive"], x["aov"].fill_null(0.0)
    extra_margin = (plan.uplift * p_alive.values[:, None] * aov.values[:, None]
                    * rules.offers.margin)
    pays = extra_margin >= plan.cost
    if p_alive.may_be_nan() or aov.may_be_nan():
        pays |= np.isnan(extra_margin)  # NaN compares as the greatest value
    if p_alive.ok is not None:
        pays &= p_alive.ok[:, None]
    usable &= plan.free | pays | (rank == 0)
    # The best rank, then the plan's order: cheapest, best uplift, first by name (the same
    # choice whatever the batch).
    order = np.where(usable, order, 3 * k)
    best = order.argmin(axis=1)
    has = order[np.arange(n), best] < 3 * k
    # Several channels of the best rank: one drawn by the recommended split (see module doc).
    rank = np.broadcast_to(rank, (n, k))
    candidates = usable & (rank == rank[np.arange(n), best][:, None])
    several = candidates.sum(axis=1) > 1
    if several.any() and plan.weights.any():
        draw = hash_fraction(ids.filter(bool_column("", several)),  # not pl.Series: ~10 us of checks
                             salt=f"{rules.control_group.salt}:channel")
        best[several] = draw_by_split(candidates[several], plan.weights, draw)
    return (np.where(has, best, -1), np.where(has, plan.cost[best], 0.0),
            Column(np.where(has, plan.uplift[best], 0.0), has))


def _offer_and_value(x: dict[str, Column], goal: np.ndarray, contacted: np.ndarray,
                     channel_cost: np.ndarray, channel_uplift: Column, rules: Rules,
                     offer_uplift: tuple[np.ndarray, np.ndarray] | None = None,
                     ) -> tuple[np.ndarray, Column, np.ndarray]:
    """Whether a discount is offered, the expected incremental revenue and the contact cost."""
    offers = rules.offers
    aov = x["aov"].fill_null(0.0)
    if offer_uplift is None:
        churn = x["churn_probability"]
        # Extra order probability from the discount: only a customer still alive who would not
        # order anyway can be moved; everyone who orders redeems it.
        moved = offers.discount_uplift * x["p_alive"] * churn
        anyway = 1 - churn
        allowed = contacted
    else:
        # The customer's own uplift from past random offers: a sleeping dog's is negative and
        # a sure thing's about zero, so neither gets one; every order in the window redeems it.
        uplift, baseline = (np.asarray(a, dtype=float) for a in offer_uplift)
        moved, anyway = Column(uplift), Column(np.maximum(baseline, 0.0))
        allowed = contacted & (uplift >= offers.min_offer_uplift)
    discount_cost = offers.discount_percent / 100 * aov * (anyway + moved)
    worth_it = allowed & (goal != GOALS.index("onboard")) & (
        moved * aov * offers.margin > discount_cost)
    message = channel_uplift.fill_null(0.0) * x["p_alive"]
    gain = np.where(worth_it, moved.values, 0.0)
    value = Column(np.where(contacted, (message.values + gain) * aov.values, 0.0),
                   None if message.ok is None else message.ok | ~contacted)
    cost = np.where(contacted, channel_cost + np.where(worth_it, discount_cost.values, 0.0),
                    0.0)
    return worth_it, value, cost


def _send_at(x: dict[str, Column], goal: np.ndarray, ids: pl.Series, contacts: Frame | None,
             rules: Rules, as_of: date) -> tuple[np.ndarray, np.ndarray]:
    """The next post-purchase step (index into :data:`~retain.decisions.reasons.STEPS`) and
    the day to send (a day number; meaningful where a channel was chosen)."""
    timing = rules.timing
    today = day_number(as_of)
    n = len(goal)
    # guide, review, cross_sell, repeat_offer (attributes: a model_dump costs ~10 us a call)
    steps = {name: getattr(timing.post_purchase_days, name) for name in STEPS}
    send_at = np.full(n, float(today))
    step = np.full(n, len(STEPS) - 1, dtype=np.int8)
    code = GOALS.index
    # Each goal's date only where the goal is (one customer: one goal).
    onboard = goal == code("onboard")
    if onboard.any():
        first = x["first_purchase"]
        upcoming = [(first + days) >= today for days in steps.values()]
        step = first_match([(held, i) for i, held in enumerate(upcoming)], len(STEPS) - 1, n)
        # The steps are in order: the next one is the earliest still to come.
        onboard_at = np.where(np.logical_or.reduce(upcoming),
                              first.values + np.asarray(list(steps.values()))[step], today)
        send_at[onboard] = np.maximum(onboard_at[onboard], today)
    for name, day in (("replenish", x["due_product_date"] - timing.replenish_lead_days),
                      ("cross_sell", x["last_purchase"] + steps["cross_sell"]),
                      ("keep_vip", x["next_order_date"] - timing.keep_vip_lead_days)):
        chosen = goal == code(name)
        if chosen.any():
            if day.ok is not None:
                chosen &= day.ok  # no date: today
            send_at[chosen] = np.maximum(day.values[chosen], today)
    if contacts is not None:
        free = cap_free_dates(contacts, as_of, rules)
        if free.height:
            cap_free = Column.of(aligned(ids, free, ["_cap_free"])[0])
            send_at = np.maximum(send_at, np.where(cap_free.valid(), cap_free.values, today))
    return step, send_at


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
