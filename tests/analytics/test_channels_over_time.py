"""Channels over time: the simulator's tiring WhatsApp and rising Telegram, and the split."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from retain.analytics.channels_over_time import (
    OVER_TIME_COLUMNS,
    channels_over_time,
    recommended_split,
)
from retain.decisions.channels import channel_plan, measure_channels
from retain.decisions.rules import load_rules
from retain.simulate import simulate_shop

RULES = load_rules(None)


@pytest.fixture(scope="module")
def shop():
    return simulate_shop(20_000, seed=1)


@pytest.fixture(scope="module")
def over_time(shop):
    return channels_over_time(shop.transactions, shop.contacts, date(2024, 7, 1),
                              shop.as_of, rules=RULES.channels, margin=RULES.offers.margin,
                              by="quarter")


def test_each_channel_is_measured_every_quarter_with_money_figures(over_time):
    assert over_time.columns == list(OVER_TIME_COLUMNS)
    assert over_time.select("period", "channel").is_unique().all()
    latest = over_time.filter(pl.col("period") == date(2026, 4, 1))
    assert set(latest["channel"]) == {"email", "sms", "push", "whatsapp", "telegram"}
    assert (latest["reach"] <= latest["messages"]).all() and (latest["reach"] > 0).all()
    row = latest.row(0, named=True)
    assert row["incremental_revenue"] == pytest.approx(
        row["incremental_revenue_per_contact"] * row["messages"])
    assert row["return_per_cost"] == pytest.approx(
        row["incremental_revenue"] * RULES.offers.margin / row["cost"])


def test_the_tiring_channel_falls_and_the_rising_one_climbs(over_time):
    # The simulator: WhatsApp's uplift drops from 8% to 2% in the last two quarters,
    # Telegram's rises from 4% to 8%.
    def uplift(channel, period):
        return over_time.filter((pl.col("channel") == channel)
                                & (pl.col("period") == period))["uplift"].item()

    early, late = date(2025, 7, 1), date(2026, 4, 1)
    assert uplift("whatsapp", late) < uplift("whatsapp", early)
    assert uplift("telegram", late) > uplift("telegram", early)
    split = recommended_split(over_time, maintenance_share=RULES.channels.maintenance_share)
    shares = dict(split.select("channel", "recommended_share").iter_rows())
    assert shares["telegram"] > shares["whatsapp"] > 0
    assert sum(shares.values()) == pytest.approx(1.0)


def test_the_status_is_the_decisions_own_plan(shop, over_time):
    plan = channel_plan(measure_channels(shop.contacts, shop.transactions, shop.as_of,
                                         RULES.channels), RULES.channels)
    statuses = dict(plan.select("channel", "status").iter_rows())
    for channel, status in over_time.select("channel", "status").unique().iter_rows():
        assert statuses[channel] == status
    # decide() pays for a channel where uplift x p_alive x AOV x margin covers its cost: the
    # uplift it reads is the latest period's figure shown here.
    latest = over_time.filter(pl.col("period") == pl.col("period").max())
    uplifts = dict(plan.select("channel", "uplift").iter_rows())
    for channel, uplift in latest.select("channel", "uplift").iter_rows():
        assert uplifts[channel] == pytest.approx(uplift)


def test_the_split_follows_return_per_cost_and_keeps_maintenance_above_zero():
    latest = pl.DataFrame({
        "period": [date(2026, 4, 1)] * 4, "channel": ["a", "b", "c", "d"],
        "messages": [100, 100, 100, 100], "uplift": [0.03, 0.01, 0.02, 0.02],
        "return_per_cost": [3.0, 1.0, 5.0, None], "status": ["active", "active",
                                                            "maintenance", "active"],
    })
    split = recommended_split(latest, maintenance_share=0.1)
    shares = dict(split.select("channel", "recommended_share").iter_rows())
    floor = 0.1 / 4  # the maintenance channel keeps a tenth of an even split
    assert shares["c"] == pytest.approx(floor)
    # a, b and the free d (counted as the best paid one, 3) share the rest 3 : 1 : 3.
    assert shares["a"] == pytest.approx((1 - floor) * 3 / 7)
    assert shares["b"] == pytest.approx((1 - floor) * 1 / 7)
    assert shares["d"] == pytest.approx((1 - floor) * 3 / 7)
    assert split["current_share"].to_list() == [0.25] * 4


def test_period_labels_are_effects_and_a_cut_period_says_where_it_starts():
    from retain.analytics.channels_over_time import period_labels

    rows = pl.DataFrame({"period": [date(2025, 7, 1), date(2025, 10, 1)],
                         "channel": ["email", "email"]})
    quarters = period_labels(rows, date(2025, 8, 15), "quarter")
    assert quarters["period"].to_list() == ["2025-Q3", "2025-Q4"]
    assert quarters["period_start"].to_list() == [date(2025, 8, 15), date(2025, 10, 1)]
    assert period_labels(rows, date(2025, 7, 1), "month")["period"].to_list() == [
        "2025-07", "2025-10"]
