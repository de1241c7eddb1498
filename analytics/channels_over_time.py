"""Each channel measured every month or quarter, and the split it earns for the next period.

``channels_over_time`` lays out, per channel and period, what the decisions measure
(:mod:`retain.decisions.channels`: a message "responds" when the customer orders within
``response_days``; the uplift is its response rate minus the control group's, shrunk towards the
rules' default): ``reach`` (customers written to), ``messages``, ``response_rate``,
``control_rate``, ``raw_uplift`` (measured: response rate minus control rate, as it came) and
``uplift`` (the estimate the decisions use: ``raw_uplift`` shrunk towards the default, so on a
shop where messages change nothing it stays near the default, above zero, while ``raw_uplift``
scatters around zero), and in money ``incremental_revenue_per_contact`` = uplift x the
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

# The figures and the split live with the decisions, which read them (one implementation).
from retain.decisions.channels import (
    OVER_TIME_COLUMNS,
    SPLIT_COLUMNS,
    empty_figures,
    measure_responses,
    measured_figures,
    period_label,
    period_start,
    recommended_split,
    responses,
)
from retain.decisions.rules import Channels
from retain.features.orders import Frame, midnight, orders

__all__ = ["OVER_TIME_COLUMNS", "SPLIT_COLUMNS", "channels_over_time", "measured_figures",
           "period_label", "period_labels", "recommended_split"]

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
        return empty_figures()
    reach = (
        judged.lazy().filter(~pl.col("control"))
        .with_columns(period_start("ts", rules.period).alias("period"))
        .group_by("channel", "period").agg(pl.col("customer_id").n_unique().alias("reach"))
    )
    aov = (
        orders(transactions.lazy().filter((pl.col("ts") >= midnight(start))
                                          & (pl.col("ts") < midnight(end))))
        .filter("is_purchase")
        .with_columns(period_start("ts", rules.period).alias("period"))
        .group_by("period").agg(pl.col("amount").mean().alias("aov"))
    )
    return measured_figures(measured, rules, margin=margin, aov=aov.collect(),
                            reach=reach.collect())


def period_labels(over_time: pl.DataFrame, start: date, by: str) -> pl.DataFrame:
    """``over_time`` as people read it, with ``retain effect``'s labels: ``period`` becomes
    ``2026-03`` (a month) or ``2026-Q1`` (a quarter), and ``period_start`` (last column) the
    first day measured, the period's first day or ``start`` when that cuts it."""
    return over_time.with_columns(
        period_label("period", by).alias("period"),
        pl.max_horizontal(pl.col("period"), pl.lit(start)).alias("period_start"))
