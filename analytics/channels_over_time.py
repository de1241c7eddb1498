"""Each channel measured every month or quarter, and the split it earns for the next period.

``channels_over_time`` lays out, per channel and period, what the decisions measure
(:mod:`retain.decisions.channels`: a message "responds" when the customer orders within
``response_days``; the uplift is its response rate minus the control group's, shrunk towards the
rules' default): ``reach`` (customers written to), ``messages``, ``response_rate``,
``control_rate``, ``uplift``, and in money ``incremental_revenue_per_contact`` = uplift x the
period's average order value, ``incremental_revenue`` (x messages), ``cost`` (of the messages)
and ``return_per_cost`` = incremental revenue x margin / cost.

``recommended_split`` turns the latest period into shares of the messages for the next one:
channels the decisions' own plan (:func:`retain.decisions.channels.channel_plan`, the same
measurements) puts in maintenance, or whose uplift is not positive, keep a small share
(``maintenance_share`` of an even split, never zero, so they are still measured); the rest of
the messages go to the working channels in proportion to their return per cost. When the
audience moves (WhatsApp tires, Telegram gains), the shares follow.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from retain.decisions.channels import (
    MAINTENANCE,
    ChannelMeasurements,
    channel_plan,
    measure_responses,
    responses,
)
from retain.decisions.rules import Channels
from retain.features.orders import Frame, midnight, orders

__all__ = ["OVER_TIME_COLUMNS", "SPLIT_COLUMNS", "channels_over_time", "measured_figures",
           "recommended_split"]

OVER_TIME_COLUMNS = ("period", "channel", "reach", "messages", "response_rate", "control_rate",
                     "uplift", "incremental_revenue_per_contact", "incremental_revenue", "cost",
                     "return_per_cost", "status")
SPLIT_COLUMNS = ("channel", "status", "current_share", "recommended_share", "return_per_cost")


def channels_over_time(transactions: Frame, contacts: Frame, start: date, end: date, *,
                       rules: Channels, margin: float, by: str | None = None,
                       reachable_days: int = 180) -> pl.DataFrame:
    """:data:`OVER_TIME_COLUMNS`, one row per channel and period (``by``: month or quarter,
    default the rules' period) of messages sent in ``[start, end)`` whose response window
    closed before ``end``; ``status`` is the channel's status in the decisions' plan at
    ``end`` (the same for every period of a channel)."""
    rules = rules.model_copy(update={"period": by or rules.period})
    log = contacts.lazy().filter((pl.col("ts") >= midnight(start)) & (pl.col("ts") < midnight(end)))
    # Judged once: the measurements and the reach both read it (lazy, the joins with every
    # order ran twice).
    judged = responses(log, transactions, end, rules.response_days, reachable_days).collect()
    measured = measure_responses(judged, end, rules)
    if measured.periods.height == 0:
        return _empty()
    truncate = "1q" if rules.period == "quarter" else "1mo"
    reach = (
        judged.lazy().filter(~pl.col("control"))
        .with_columns(pl.col("ts").dt.truncate(truncate).dt.date().alias("period"))
        .group_by("channel", "period").agg(pl.col("customer_id").n_unique().alias("reach"))
    )
    aov = (
        orders(transactions.lazy().filter((pl.col("ts") >= midnight(start))
                                          & (pl.col("ts") < midnight(end))))
        .filter("is_purchase")
        .with_columns(pl.col("ts").dt.truncate(truncate).dt.date().alias("period"))
        .group_by("period").agg(pl.col("amount").mean().alias("aov"))
    )
    return measured_figures(measured, rules, margin=margin, aov=aov.collect(),
                            reach=reach.collect())


def measured_figures(measured: ChannelMeasurements, rules: Channels, *, margin: float,
                     aov: float | pl.DataFrame, reach: pl.DataFrame | None = None
                     ) -> pl.DataFrame:
    """:data:`OVER_TIME_COLUMNS` from the decisions' own measurements (``measured``, as
    ``retain train --contacts`` keeps them with the model). ``aov``: the average order value,
    one number or per ``period``; ``reach``: ``channel, period, reach`` (null without it)."""
    periods = measured.periods
    if periods.height == 0:
        return _empty()
    if isinstance(aov, pl.DataFrame):
        periods = periods.join(aov.select("period", "aov"), on="period", how="left")
    else:
        periods = periods.with_columns(pl.lit(float(aov)).alias("aov"))
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


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "period": pl.Date, "channel": pl.String, "reach": pl.Int64, "messages": pl.Int64,
        "response_rate": pl.Float64, "control_rate": pl.Float64, "uplift": pl.Float64,
        "incremental_revenue_per_contact": pl.Float64, "incremental_revenue": pl.Float64,
        "cost": pl.Float64, "return_per_cost": pl.Float64, "status": pl.String})


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
