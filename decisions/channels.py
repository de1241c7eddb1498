"""How well each contact channel works, measured from the contacts log and the orders after it.

A message "gets a response" when the customer orders within ``response_days`` of it. Per channel
and period (month or quarter), the uplift is the response rate of the messages sent minus the
response rate of the global control group's rows in the same period (they were drawn at random,
so one pooled control rate per period is the fairest and steadiest baseline), shrunk towards the
rules' ``default_uplift`` as if ``prior_messages`` more had shown it. A channel whose
latest uplift fell below ``maintenance_below`` of its typical uplift (the mean over the periods
before, weighted by messages) is in **maintenance**: it keeps a small share of customers, never
none, so it is still measured.

Where more than one channel would do for a customer, the decisions follow the recommended
split of the next period (:func:`split_weights`, from
:func:`recommended_split` on these same measurements): each
such customer draws one of their channels with the channels' shares as weights
(:func:`draw_by_split`), by a salted hash of the customer id, so the choice is the same in the
batch and for the customer alone.

Per customer and channel the same log says whether a channel works *for this customer*: one
ignored ``min_contacts_to_judge`` times or more does not, and the next cheapest is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from retain.decisions.rules import Channels
from retain.features.orders import Frame, midnight, orders, window

ACTIVE, MAINTENANCE, UNMEASURED = "active", "maintenance", "unmeasured"
PLAN_SCHEMA = {"channel": pl.String, "cost": pl.Float64, "uplift": pl.Float64,
               "typical_uplift": pl.Float64, "status": pl.String}
# A customer's verdict on a channel only counts messages from this recent past.
IGNORED_LOOKBACK_DAYS = 365


# eq=False: hashed by identity, so the plan under given rules can be cached per measurement.
@dataclass(frozen=True, eq=False)
class ChannelMeasurements:
    """What the contacts log showed up to ``measured_at``: per channel and period
    ``channel, period, messages, response_rate, cost, control_rate, control_messages,
    raw_uplift, uplift`` (``periods``; ``uplift`` is ``raw_uplift`` shrunk towards the
    default), and
    per customer the channels that did not work for them (``ignored``: ``customer_id,
    channel``). Fitted at training and kept with the model; :func:`channel_plan` turns them
    into a plan under the current rules."""

    periods: pl.DataFrame
    ignored: pl.DataFrame
    measured_at: date | None = None
    # "month" or "quarter", as measured (the rules may say otherwise later); None in models
    # kept before it was recorded (unpickled, they read this class default).
    period: str | None = None


def responses(contacts: Frame, transactions: Frame, as_of: date, response_days: int,
              reachable_days: int) -> pl.LazyFrame:
    """Messages whose response window closed before ``as_of`` to customers who had ordered
    within ``reachable_days`` before them, with ``responded`` (bool).

    Messages to long-gone customers can answer nothing about a channel; leaving them out (on
    both sides of the comparison alike) keeps the uplift from drowning in them.
    """
    window_end = midnight(as_of) - timedelta(days=response_days)
    purchases = (
        orders(window(transactions, None, as_of)).filter("is_purchase")
        .select("customer_id", pl.col("ts").alias("order_ts")).sort("order_ts")
    )
    judged = contacts.lazy().filter(pl.col("ts") < window_end).sort("ts")
    # Both sides are sorted by time above; polars cannot check it within each customer.
    return (
        judged.join_asof(purchases.select("customer_id", pl.col("order_ts").alias("last_ts")),
                         left_on="ts", right_on="last_ts", by="customer_id",
                         strategy="backward", check_sortedness=False)
        .filter(pl.col("ts") - pl.col("last_ts") <= pl.duration(days=reachable_days))
        .join_asof(purchases, left_on="ts", right_on="order_ts", by="customer_id",
                   strategy="forward", check_sortedness=False, allow_exact_matches=False)
        .with_columns(
            (pl.col("order_ts") - pl.col("ts") < pl.duration(days=response_days))
            .fill_null(False).alias("responded")
        )
    )


def measure_channels(contacts: Frame, transactions: Frame, as_of: date, rules: Channels,
                     reachable_days: int = 180) -> ChannelMeasurements:
    """Measure every channel in the log (and the rules' cost table) up to ``as_of``; messages
    count when the customer had ordered within ``reachable_days`` before them."""
    return measure_responses(
        responses(contacts, transactions, as_of, rules.response_days, reachable_days),
        as_of, rules)


def measure_responses(judged: Frame, as_of: date, rules: Channels) -> ChannelMeasurements:
    """``measure_channels`` from :func:`responses`' rows (which are per customer: the Spark
    engine gathers them from its partitions and measures once, shop-wide)."""
    judged = judged.lazy().with_columns(period_start("ts", rules.period).alias("period"))
    control_rate = (
        judged.filter("control").group_by("period")
        .agg(pl.col("responded").mean().alias("control_rate"),
             pl.len().alias("control_messages"))
    )
    sent = judged.filter(~pl.col("control"))
    periods = (
        sent.group_by("channel", "period")
        .agg(pl.len().alias("messages"), pl.col("responded").mean().alias("response_rate"),
             pl.col("cost").mean().alias("cost"))
        .join(control_rate, on="period", how="left")
        .with_columns((pl.col("response_rate") - pl.col("control_rate")).alias("raw_uplift"))
        .with_columns(_shrunk(rules).alias("uplift"))
        .sort("channel", "period")
    )
    ignored = (
        sent.filter(pl.col("ts") >= midnight(as_of) - timedelta(days=IGNORED_LOOKBACK_DAYS))
        .group_by("customer_id", "channel")
        .agg(pl.len().alias("messages"), pl.col("responded").any().alias("any_response"))
        .filter((pl.col("messages") >= rules.min_contacts_to_judge) & ~pl.col("any_response"))
        .select("customer_id", "channel").sort("customer_id", "channel")
    )
    periods, ignored = pl.collect_all([periods, ignored])
    return ChannelMeasurements(periods, ignored, as_of, rules.period)


def period_start(ts: str | pl.Expr, by: str) -> pl.Expr:
    """The first day (a date) of the month or quarter (``by``) of each time ``ts``."""
    ts = pl.col(ts) if isinstance(ts, str) else ts
    return ts.dt.truncate("1q" if by == "quarter" else "1mo").dt.date()


def period_label(first: str | pl.Expr, by: str) -> pl.Expr:
    """A period as people read it from its first day (a date): ``2026-Q1`` for a quarter,
    ``2026-03`` for a month. The one rule: ``retain channels``, ``retain effect`` and
    ``GET /v1/channels`` all label periods with it."""
    first = pl.col(first) if isinstance(first, str) else first
    if by == "quarter":
        return pl.format("{}-Q{}", first.dt.year(), first.dt.quarter())
    return first.dt.strftime("%Y-%m")


def _shrunk(rules: Channels) -> pl.Expr:
    """The period's uplift pulled towards the default by ``prior_messages``: a difference of
    two response rates from a few hundred messages is mostly noise, and one noisy quarter
    must not send a channel to maintenance."""
    # The difference is as uncertain as its smaller side: both counts matter.
    weight = 1 / (1 / pl.col("messages") + 1 / pl.col("control_messages"))
    return ((pl.col("raw_uplift") * weight + rules.default_uplift * rules.prior_messages)
            / (weight + rules.prior_messages))


def no_measurements() -> ChannelMeasurements:
    """No contacts log: every channel unmeasured, no customer ignores any."""
    return ChannelMeasurements(
        pl.DataFrame(), pl.DataFrame(schema={"customer_id": pl.String, "channel": pl.String}))


def channel_plan(measurements: ChannelMeasurements, rules: Channels) -> pl.DataFrame:
    """``channel, cost, uplift, typical_uplift, status`` for every channel of the rules' cost
    table and of the log, cheapest first. Unmeasured channels get the rules' default uplift;
    a log that records no cost keeps the rules' price."""
    return _cached_plan(measurements, rules.model_dump_json())


@lru_cache(maxsize=16)  # the API asks for the same plan on every request
def _cached_plan(measurements: ChannelMeasurements, rules_json: str) -> pl.DataFrame:
    rules = Channels.model_validate_json(rules_json)
    periods = measurements.periods
    defaults = pl.DataFrame(
        {"channel": list(rules.cost), "default_cost": list(rules.cost.values())},
        schema={"channel": pl.String, "default_cost": pl.Float64},
    )
    if periods.height == 0:
        measured = pl.DataFrame(schema={"channel": pl.String, "measured_cost": pl.Float64,
                                        "uplift": pl.Float64, "typical_uplift": pl.Float64})
    else:
        before = pl.col("period") < pl.col("period").max()
        messages = pl.col("messages")
        measured = (
            periods.filter(pl.col("uplift").is_not_null())
            .group_by("channel")
            .agg(
                (pl.col("cost") * messages).sum().truediv(messages.sum()).alias("measured_cost"),
                pl.col("uplift").sort_by("period").last(),
                (pl.col("uplift") * messages).filter(before).sum()
                .truediv(messages.filter(before).sum()).alias("typical_uplift"),
            )
        )
    tired = (pl.col("uplift") <= 0) | (
        pl.col("uplift") < rules.maintenance_below * pl.col("typical_uplift"))
    return (
        defaults.join(measured, on="channel", how="full", coalesce=True)
        .with_columns(
            pl.when(pl.col("measured_cost") > 0).then("measured_cost")
            .otherwise(pl.col("default_cost")).fill_null(0.0).alias("cost"),
            pl.when(pl.col("uplift").is_null()).then(pl.lit(UNMEASURED))
            .when(tired).then(pl.lit(MAINTENANCE)).otherwise(pl.lit(ACTIVE)).alias("status"),
            pl.col("uplift").fill_null(rules.default_uplift),
        )
        .select(list(PLAN_SCHEMA))
        .cast(PLAN_SCHEMA)
        .sort("cost", pl.col("uplift"), "channel", descending=[False, True, False])
    )



# Per channel and period in money, and the split they earn (analytics.channels_over_time lays
# them out over time; the decisions draw channels by the split).
# ``uplift`` is the estimate the decisions use (shrunk towards the rules' default_uplift);
# ``raw_uplift`` what was measured (response rate minus control rate), added last so the
# columns before it keep their places.
OVER_TIME_COLUMNS = ("period", "channel", "reach", "messages", "response_rate", "control_rate",
                     "uplift", "incremental_revenue_per_contact", "incremental_revenue", "cost",
                     "return_per_cost", "status", "raw_uplift")
SPLIT_COLUMNS = ("channel", "status", "current_share", "recommended_share", "return_per_cost")


def measured_figures(measured: ChannelMeasurements, rules: Channels, *, margin: float,
                     aov: float | pl.DataFrame, reach: pl.DataFrame | None = None
                     ) -> pl.DataFrame:
    """:data:`OVER_TIME_COLUMNS` from the decisions' own measurements (``measured``, as
    ``retain train --contacts`` keeps them with the model). ``aov``: the average order value,
    one number or per ``period``; ``reach``: ``channel, period, reach`` (null without it)."""
    periods = measured.periods
    if periods.height == 0:
        return empty_figures()
    if isinstance(aov, pl.DataFrame):
        periods = periods.join(aov.select("period", "aov"), on="period", how="left")
    else:
        periods = periods.with_columns(pl.lit(float(aov)).alias("aov"))
    if "raw_uplift" not in periods.columns:  # hand-made measurements may leave it out
        periods = periods.with_columns(pl.lit(None, pl.Float64).alias("raw_uplift"))
    if reach is not None:
        periods = periods.join(reach, on=["channel", "period"], how="left")
    else:
        periods = periods.with_columns(pl.lit(None, pl.Int64).alias("reach"))
    status = channel_plan(measured, rules).select("channel", "status")
    per_contact = pl.col("uplift") * pl.col("aov").fill_null(0.0)
    return (
        periods.join(status, on="channel", how="left")
        .with_columns(
            per_contact.alias("incremental_revenue_per_contact"),
            (per_contact * pl.col("messages")).alias("incremental_revenue"),
            (pl.col("cost") * pl.col("messages")).alias("cost"),
        )
        .with_columns(
            pl.when(pl.col("cost") > 0)
            .then(pl.col("incremental_revenue") * margin / pl.col("cost"))
            .alias("return_per_cost"),
            pl.col("reach").cast(pl.Int64),
            pl.col("messages").cast(pl.Int64),
        )
        .select(OVER_TIME_COLUMNS)
        .sort("period", "channel")
    )


def empty_figures() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "period": pl.Date, "channel": pl.String, "reach": pl.Int64, "messages": pl.Int64,
        "response_rate": pl.Float64, "control_rate": pl.Float64, "uplift": pl.Float64,
        "incremental_revenue_per_contact": pl.Float64, "incremental_revenue": pl.Float64,
        "cost": pl.Float64, "return_per_cost": pl.Float64, "status": pl.String,
        "raw_uplift": pl.Float64})


def recommended_split(over_time: pl.DataFrame, *, maintenance_share: float) -> pl.DataFrame:
    """:data:`SPLIT_COLUMNS` for the channels of the latest period, largest share first.

    ``current_share``: the channel's share of that period's messages. Channels in maintenance
    (or with no positive uplift) get ``maintenance_share`` of an even split each; the others
    share the rest in proportion to ``return_per_cost`` (a free channel counts as the best
    paid one; with no positive return anywhere, evenly)."""
    if over_time.height == 0:
        return pl.DataFrame(schema={"channel": pl.String, "status": pl.String,
                                    "current_share": pl.Float64,
                                    "recommended_share": pl.Float64,
                                    "return_per_cost": pl.Float64})
    latest = over_time.filter(pl.col("period") == pl.col("period").max())
    n = latest.height
    floor = max(maintenance_share, 1e-3) / n
    resting = (pl.col("status") == MAINTENANCE) | (pl.col("uplift") <= 0)
    best_paid = latest.filter(~resting)["return_per_cost"].drop_nulls().max()
    worth = (
        pl.when(resting).then(0.0)
        .when(pl.col("return_per_cost").is_null())  # free: no cost to divide by
        .then(pl.lit(max(best_paid or 1.0, 0.0) or 1.0))
        .otherwise(pl.col("return_per_cost").clip(lower_bound=0.0))
    )
    scored = latest.with_columns(worth.alias("worth"), resting.alias("resting"))
    working = scored.filter(~pl.col("resting"))
    left = 1.0 - floor * (n - working.height)
    total = working["worth"].sum()
    if working.height == 0:  # nothing works better than another: keep measuring them all
        share = pl.lit(1.0 / n)
    else:
        share = (
            pl.when(pl.col("resting")).then(floor)
            .when(total > 0).then(left * pl.col("worth") / total)
            .otherwise(left / working.height)
        )
    # Never zero: a working channel whose return rounds to nothing is still measured.
    share = share.clip(lower_bound=floor)
    return (
        scored.with_columns(
            (pl.col("messages") / pl.col("messages").sum()).alias("current_share"),
            (share / share.sum()).alias("recommended_share"),
        )
        .select(SPLIT_COLUMNS)
        .sort("recommended_share", "channel", descending=[True, False])
    )


def split_weights(measurements: ChannelMeasurements, rules: Channels,
                  channels: tuple[str, ...]) -> np.ndarray:
    """The recommended share of each of ``channels`` for the period after the latest measured
    one (:func:`recommended_split`); a channel the split
    does not name (unmeasured, or silent in the latest period) gets the maintenance floor, so
    it is still tried. All zeros without measurements: the plan's order decides."""
    if measurements.periods.height == 0 or not channels:
        return np.zeros(len(channels))
    # The split depends on the money per contact only through ratios and signs (return per
    # cost relative to the other channels), so any positive basket gives the same shares.
    # Hand-made measurements may leave out the columns the split does not read.
    missing = [pl.lit(None, pl.Float64).alias(c) for c in ("response_rate", "control_rate")
               if c not in measurements.periods.columns]
    if missing:
        measurements = ChannelMeasurements(measurements.periods.with_columns(missing),
                                           measurements.ignored, measurements.measured_at,
                                           measurements.period)
    figures = measured_figures(measurements, rules, margin=1.0, aov=1.0)
    split = recommended_split(figures, maintenance_share=rules.maintenance_share)
    if split.height == 0:
        return np.zeros(len(channels))
    share = dict(zip(split["channel"].to_list(), split["recommended_share"].to_list(),
                     strict=True))
    floor = max(rules.maintenance_share, 1e-3) / len(channels)
    return np.array([share.get(c) or floor for c in channels], dtype=np.float64)


def draw_by_split(candidates: np.ndarray, weights: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """Per row of ``candidates`` (customers x channels, bool; each row with one at least) the
    channel drawn with probability ``weights`` renormalised over the row's candidates, by
    ``draw`` (one number in [0, 1) per row): the inverse of the cumulative weights."""
    w = np.where(candidates, weights[None, :], 0.0)
    cumulative = np.cumsum(w, axis=1)
    total = cumulative[:, -1:]
    # Rows whose candidates all weigh nothing: the first candidate (the plan's order).
    first = candidates.argmax(axis=1)
    picked = (cumulative > draw[:, None] * total).argmax(axis=1)
    return np.where(total[:, 0] > 0, picked, first)
