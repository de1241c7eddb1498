"""The decisions of a few customers, in plain Python.

The same frame as the polars path of :func:`decisions.decide.decide`: same columns, dtypes, row
order, values and nulls (floats may differ in the last bits), the same rules, shop-wide figures,
channel plan, control group and reason templates. For a handful of customers the ~25 polars
operations of that path cost far more than the arithmetic (about 10 ms against well under 1 ms
for one customer), so ``decide`` takes this path for batches of up to
:data:`SMALL_DECISIONS_MAX` customers. Per-customer Python loops: meant for the API's requests,
not for a shop.

Conditions follow polars' rules: a comparison with a null is null and a ``when`` on null falls
through (so a condition holds only when it is true), and NaN compares as the greatest value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import polars as pl

from retain.decisions.channels import (
    ACTIVE,
    MAINTENANCE,
    UNMEASURED,
    ChannelMeasurements,
    channel_plan,
    no_measurements,
)
from retain.decisions.control import in_control_group
from retain.decisions.decide import DECISION_SCHEMA, NO_OFFER
from retain.decisions.reasons import DATE_FORMAT, LANGUAGES, PLACEHOLDER, TEMPLATES, Language
from retain.decisions.rules import Channels, Rules
from retain.decisions.segments import FEATURE_INPUTS, ShopReference
from retain.features.orders import Frame, midnight

# Batches up to this size are decided here. One customer: ~0.3 ms here against 10-14 ms in
# polars; with shop-sized lookup frames the two meet near 300 customers: 64 keeps a margin.
SMALL_DECISIONS_MAX = 64
# Lookup frames (features, consents, contacts) larger than this are first filtered to the
# batch's customers in polars (one operation) rather than walked row by row.
_SCAN_MAX_ROWS = 256
_NO_ACTION = ("none", "control")
_STEP_KEYS = {"guide": "step_guide", "review": "step_review", "cross_sell": "step_cross_sell",
              "repeat_offer": "step_repeat_offer"}
# Shared by every call without measurements, so its channel plan is cached like the others.
_NO_MEASUREMENTS = no_measurements()


def decide_small(
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
    """:func:`decisions.decide.decide` for a few customers (same arguments, same frame)."""
    if lang not in TEMPLATES:
        raise ValueError(f"language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    measurements = channels or _NO_MEASUREMENTS
    ids: list[str | None] = scores.get_column("customer_id").to_list()
    wanted = [cid for cid in ids if cid is not None]
    by_id = _rows_by_id(features, ("customer_id", *FEATURE_INPUTS), wanted)
    in_control = [in_control_group(cid, share=rules.control_group.share,
                                   salt=rules.control_group.salt) for cid in ids]
    rows = []
    for score, control in zip(scores.rows(named=True), in_control, strict=True):
        found = by_id.get(score["customer_id"])
        # Like the polars join: the scores' own columns win over the features'.
        row = dict.fromkeys(FEATURE_INPUTS) if found is None else dict(found[0])
        row.update(score)
        row["control_group"] = control
        rows.append(row)

    for row in rows:
        _segment_and_goal(row, rules, reference, as_of)
    _choose_channels(rows, rules, measurements, consents, as_of)
    cap_free = _cap_free_dates(contacts, wanted, as_of, rules)
    text, date_format = TEMPLATES[lang], DATE_FORMAT[lang]
    discount = f"{rules.offers.discount_percent:g}"
    for row in rows:
        _offer_and_value(row, rules)
        _send_at(row, rules, as_of, cap_free.get(row["customer_id"]))
        row["reason"] = _reason(row, text, date_format, discount)

    return scores.hstack([pl.Series(column, [row[column] for row in rows], dtype=dtype)
                          for column, dtype in DECISION_SCHEMA.items()])


# --- comparisons as polars makes them ------------------------------------------------------------


def _gt(a: Any, b: Any) -> bool:
    """``a > b`` is true (not false, not null): nulls compare to null, NaN is the greatest."""
    if a is None or b is None:
        return False
    if isinstance(a, float) and math.isnan(a):
        return not (isinstance(b, float) and math.isnan(b))
    if isinstance(b, float) and math.isnan(b):
        return False
    return a > b


def _ge(a: Any, b: Any) -> bool:
    return a is not None and b is not None and not _gt(b, a)


def _lt(a: Any, b: Any) -> bool:
    return _gt(b, a)


def _le(a: Any, b: Any) -> bool:
    return _ge(b, a)


def _whole(x: float | None) -> str | None:
    """``round(0).cast(Int64).cast(String)``: polars rounds half to even, as ``round`` does."""
    return None if x is None else str(round(x))


def _plus_days(day: date | None, days: int) -> date | None:
    return None if day is None else day + timedelta(days=days)


# --- lookups --------------------------------------------------------------------------------------


def _rows_by_id(frame: pl.DataFrame, columns: tuple[str, ...],
                ids: list[str]) -> dict[Any, list[dict[str, Any]]]:
    """``columns`` of the rows of ``frame`` for ``ids``, by ``customer_id``, in the frame's
    order (``columns`` starts with ``customer_id``)."""
    if frame.height > _SCAN_MAX_ROWS:
        frame = frame.filter(pl.col("customer_id").is_in(ids))
    wanted = set(ids)
    found: dict[Any, list[dict[str, Any]]] = {}
    # Column by column: no select to plan.
    for values in zip(*(frame.get_column(c).to_list() for c in columns), strict=True):
        if values[0] in wanted:
            found.setdefault(values[0], []).append(dict(zip(columns, values, strict=True)))
    return found


@lru_cache(maxsize=16)  # like the plan itself: the API decides against the same measurements
def _plan_rows(measurements: ChannelMeasurements, rules_json: str) -> tuple[dict[str, Any], ...]:
    return tuple(channel_plan(measurements, Channels.model_validate_json(rules_json)).to_dicts())


@lru_cache(maxsize=16)
def _ignored(measurements: ChannelMeasurements) -> dict[str, frozenset[str]]:
    """Per customer, the channels that did not work for them (built once per measurements)."""
    ignored: dict[str, set[str]] = {}
    frame = measurements.ignored
    for cid, channel in zip(frame["customer_id"].to_list(), frame["channel"].to_list(),
                            strict=True):
        ignored.setdefault(cid, set()).add(channel)
    return {cid: frozenset(channels) for cid, channels in ignored.items()}


def _consented(consents: pl.DataFrame | None, channels: Iterable[str],
               ids: list[str]) -> dict[str, set[str]]:
    """Per customer, the plan's channels with a consent given (on any of their rows)."""
    columns = [f"consent_{c}" for c in channels
               if consents is not None and f"consent_{c}" in consents.columns]
    if not columns or not ids:
        return {}
    assert consents is not None
    given: dict[str, set[str]] = {}
    by_id = _rows_by_id(consents, ("customer_id", *columns), ids)
    for cid, rows in by_id.items():
        for row in rows:
            for column in columns:
                if row[column]:
                    given.setdefault(cid, set()).add(column.removeprefix("consent_"))
    return given


# --- the decision, step by step -------------------------------------------------------------------


def _segment_and_goal(row: dict[str, Any], rules: Rules, reference: ShopReference,
                      as_of: date) -> None:
    life, tiers, behaviour, goals = rules.lifecycle, rules.value_tiers, rules.behaviour, rules.goals
    since_last, p_alive = row["days_since_last_order"], row["p_alive"]
    first = row["first_purchase"]
    since_first = None if first is None else (as_of - first).days
    row["_days_since_first"] = since_first
    interval = row["interval_median"]
    typical = reference.median_interval if interval is None else interval
    overdue = _gt(since_last, life.at_risk_overdue_ratio * typical)
    if _gt(since_last, life.lost_after_days) or _lt(p_alive, life.lost_p_alive_below):
        stage = "lost"
    elif _ge(since_last, life.sleeping_after_days):
        stage = "sleeping"
    elif _lt(since_first, life.new_within_days):
        stage = "new"
    elif overdue or _lt(p_alive, life.at_risk_p_alive_below):
        stage = "at_risk"
    else:
        stage = "active"

    clv = row["clv_12m"]
    if _ge(clv, reference.clv_at_top(tiers.vip)):
        tier = "vip"
    elif _ge(clv, reference.clv_at_top(tiers.vip + tiers.high)):
        tier = "high"
    elif _ge(clv, reference.clv_at_top(tiers.vip + tiers.high + tiers.mid)):
        tier = "mid"
    else:
        tier = "low"

    aov = row["aov"]
    if (_ge(row["orders"], behaviour.stock_up_min_orders)
            and _lt(row["interval_cv"], behaviour.stock_up_max_interval_cv)
            and _gt(aov, reference.median_aov)):
        kind = "stock_up"
    elif (_lt(interval, behaviour.hedonist_max_interval_median_days)
          and _lt(aov, reference.median_aov)):
        kind = "hedonist"
    else:
        kind = "occasional"
    row.update(lifecycle_stage=stage, value_tier=tier, behaviour_type=kind,
               segment=f"{stage}-{tier}-{kind}")

    top_spender = _ge(row["revenue"], reference.revenue_at_top(goals.win_back_min_revenue_share))
    if row["control_group"]:
        goal = "control"
    elif stage == "lost":
        goal = "win_back" if top_spender else "none"
    elif stage == "sleeping":
        goal = "reactivate"
    elif stage == "new":
        goal = "onboard"
    elif _le(row["due_product_date"], as_of + timedelta(days=goals.replenish_within_days)):
        goal = "replenish"
    elif stage == "at_risk":
        goal = "reactivate"
    elif tier == "vip":
        goal = "keep_vip"
    elif _lt(row["churn_probability"], goals.none_below_churn_probability):
        goal = "none"
    else:
        goal = "cross_sell"
    row["goal"] = goal


def _choose_channels(rows: list[dict[str, Any]], rules: Rules,
                     measurements: ChannelMeasurements, consents: pl.DataFrame | None,
                     as_of: date) -> None:
    """``channel, _channel_cost, _channel_uplift`` as ``decide._with_channel`` picks them."""
    for row in rows:
        row.update(channel=None, _channel_cost=None, _channel_uplift=None)
    acting = [row for row in rows
              if row["goal"] not in _NO_ACTION and row["customer_id"] is not None]
    if not acting:
        return
    plan = _plan_rows(measurements, rules.channels.model_dump_json())
    consented = _consented(consents, [c["channel"] for c in plan],
                           [row["customer_id"] for row in acting])
    ignored = _ignored(measurements) if measurements.ignored.height else {}
    options = {}
    for row in acting:
        cid = row["customer_id"]
        given, skip = consented.get(cid, ()), ignored.get(cid, ())
        options[cid] = [c for c in plan if c["channel"] in given and c["channel"] not in skip]
    # Maintenance keeps a share of its customers, drawn with the same polars hash as decide.
    drawn = sorted({cid for cid, usable in options.items()
                    if any(c["status"] == MAINTENANCE for c in usable)})
    kept: set[str] = set()
    if drawn:
        hashes = pl.Series([f"{cid}:{as_of.isoformat()}" for cid in drawn],
                           dtype=pl.String).hash(seed=20_220_301).to_list()
        threshold = int(rules.channels.maintenance_share * 10_000)
        kept = {cid for cid, h in zip(drawn, hashes, strict=True) if h % 10_000 < threshold}

    margin = rules.offers.margin
    for row in acting:
        cid, p_alive = row["customer_id"], row["p_alive"]
        aov = 0.0 if row["aov"] is None else row["aov"]
        best, best_key = None, None
        for c in options[cid]:
            status, cost, uplift = c["status"], c["cost"], c["uplift"]
            if status == MAINTENANCE and cid in kept:
                rank = 0
            elif status in (ACTIVE, UNMEASURED):
                rank = 1
            else:
                rank = 2
            extra_margin = None if p_alive is None else uplift * p_alive * aov * margin
            # Paid messages must pay for themselves; the maintenance share is there to measure.
            if not (cost == 0 or _ge(extra_margin, cost) or rank == 0):
                continue
            # Cheapest first, then the best uplift; ties keep the plan's order (by channel).
            key = (rank, cost, -uplift)
            if best_key is None or key < best_key:
                best, best_key = c, key
        if best is not None:
            row.update(channel=best["channel"], _channel_cost=best["cost"],
                       _channel_uplift=best["uplift"])


def _offer_and_value(row: dict[str, Any], rules: Rules) -> None:
    offers = rules.offers
    contacted = row["channel"] is not None
    aov = 0.0 if row["aov"] is None else row["aov"]
    churn, p_alive = row["churn_probability"], row["p_alive"]
    if churn is None or p_alive is None:
        moved = discount_cost = None
        worth_it = False
    else:
        moved = offers.discount_uplift * p_alive * churn
        discount_cost = offers.discount_percent / 100 * aov * ((1 - churn) + moved)
        worth_it = (contacted and row["goal"] != "onboard"
                    and _gt(moved * aov * offers.margin, discount_cost))
    row["offer"] = f"discount_{offers.discount_percent:g}" if worth_it else NO_OFFER
    if not contacted:
        row["expected_incremental_revenue"] = row["contact_cost"] = 0.0
        return
    uplift = 0.0 if row["_channel_uplift"] is None else row["_channel_uplift"]
    message = None if p_alive is None else uplift * p_alive
    row["expected_incremental_revenue"] = (
        None if message is None else (message + (moved if worth_it else 0.0)) * aov)
    row["contact_cost"] = row["_channel_cost"] + (discount_cost if worth_it else 0.0)


def _send_at(row: dict[str, Any], rules: Rules, as_of: date, cap_free: date | None) -> None:
    timing = rules.timing
    steps = timing.post_purchase_days.model_dump()  # guide, review, cross_sell, repeat_offer
    first = row["first_purchase"]
    step_dates = {name: _plus_days(first, days) for name, days in steps.items()}
    upcoming = [(name, day) for name, day in step_dates.items() if _ge(day, as_of)]
    row["_step"] = upcoming[0][0] if upcoming else "repeat_offer"
    goal = row["goal"]
    if goal == "replenish":
        planned = _plus_days(row["due_product_date"], -timing.replenish_lead_days)
    elif goal == "onboard":
        planned = min(day for _, day in upcoming) if upcoming else as_of
    elif goal == "cross_sell":
        planned = _plus_days(row["last_purchase"], steps["cross_sell"])
    elif goal == "keep_vip":
        planned = _plus_days(row["next_order_date"], -timing.keep_vip_lead_days)
    else:
        planned = as_of
    candidates = [day for day in (planned, as_of, cap_free) if day is not None]
    row["send_at"] = max(candidates) if row["channel"] is not None else None


def _cap_free_dates(contacts: Frame | None, ids: list[str], as_of: date,
                    rules: Rules) -> dict[str, date]:
    """``decide.cap_free_dates`` for ``ids``: the first day the frequency cap lets a message
    through, for customers whose recent messages fill it."""
    cap = rules.frequency_cap
    if contacts is None or not ids:
        return {}
    end = midnight(as_of)
    since = end - timedelta(days=cap.per_days)
    frame = contacts
    if isinstance(frame, pl.LazyFrame) or frame.height > _SCAN_MAX_ROWS:
        frame = frame.lazy().filter(pl.col("customer_id").is_in(ids)).collect()
    wanted = set(ids)
    sent: dict[str, list] = {}
    for cid, ts, control in zip(*(frame.get_column(c).to_list()
                                  for c in ("customer_id", "ts", "control")), strict=True):
        if (cid in wanted and control is False and ts is not None
                and since <= ts < end):
            sent.setdefault(cid, []).append(ts)
    free = {}
    for cid, times in sent.items():
        if len(times) >= cap.max_messages:
            oldest_in_cap = sorted(times, reverse=True)[cap.max_messages - 1]
            free[cid] = oldest_in_cap.date() + timedelta(days=cap.per_days)
    return free


def _reason(row: dict[str, Any], text: dict[str, str], date_format: str,
            discount: str) -> str | None:
    """``reasons.reason_expression`` for one row: null when a number it needs is null."""
    goal = row["goal"]
    one_order = row["interval_median"] is None
    if goal == "control":
        key = "control"
    elif goal == "replenish":
        key = "replenish"
    elif goal in ("reactivate", "cross_sell") and one_order:
        key = "reactivate_one_order"
    elif goal in ("reactivate", "win_back", "onboard", "cross_sell", "keep_vip"):
        key = goal
    elif row["lifecycle_stage"] == "lost":
        key = "none_lost"
    else:
        key = "none"
    core = _fill(text[key], row, text, date_format, discount)
    if core is None:
        return None
    no_channel = text["no_channel"] if goal not in _NO_ACTION and row["channel"] is None else ""
    offer = ""
    if row["offer"] != NO_OFFER:
        offer = _fill(text["offer"], row, text, date_format, discount)
        if offer is None:
            return None
    return f"{core}{no_channel}{offer}."


def _fill(template: str, row: dict[str, Any], text: dict[str, str], date_format: str,
          discount: str) -> str | None:
    values = {}
    for name in PLACEHOLDER.findall(template):
        value = _placeholder(name, row, text, date_format, discount)
        if value is None:  # pl.format: null in, null out
            return None
        values[name] = value
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _placeholder(name: str, row: dict[str, Any], text: dict[str, str], date_format: str,
                 discount: str) -> str | None:
    if name == "interval":
        return _whole(row["interval_median"])
    if name == "days":
        return _whole(row["days_since_last_order"])
    if name == "first":
        return _whole(row["_days_since_first"])
    if name == "churn":
        churn = row["churn_probability"]
        return None if churn is None else _whole(churn * 100)
    if name == "product":
        return row["due_product_id"]
    if name in ("due", "next"):
        day = row["due_product_date" if name == "due" else "next_order_date"]
        return None if day is None else day.strftime(date_format)
    if name == "revenue":
        return _whole(row["revenue"])
    if name == "step":
        return text[_STEP_KEYS[row["_step"]]]
    if name == "discount":
        return discount
    raise KeyError(name)
