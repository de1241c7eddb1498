"""Channel measurements on handmade contacts logs, where every rate can be checked by eye."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from retain.decisions.channels import (
    ACTIVE,
    MAINTENANCE,
    UNMEASURED,
    channel_plan,
    measure_channels,
    no_measurements,
    responses,
)
from retain.decisions.rules import default_rules
from tests.conftest import make_transactions

AS_OF = date(2025, 7, 1)
QUARTERS = [date(2024, 7, 1), date(2024, 10, 1), date(2025, 1, 1), date(2025, 4, 1)]
PER_CELL = 200  # messages per channel and quarter
CONTACT_SCHEMA = {"customer_id": pl.String, "ts": pl.Datetime("us"), "channel": pl.String,
                  "cost": pl.Float64, "control": pl.Boolean}
RULES = default_rules().channels
UNSHRUNK = RULES.model_copy(update={"prior_messages": 0.0})


def _at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


class Log:
    """Builds transactions and a contacts log together: each message goes to a fresh customer
    who ordered 10 days before it and, if they respond, orders again 3 days after it."""

    def __init__(self) -> None:
        self.orders: list[tuple] = []
        self.contacts: list[dict] = []

    def order(self, customer: str, when: datetime) -> None:
        self.orders.append((customer, f"{customer}-{len(self.orders)}", when.isoformat(" "),
                            100.0, "P1", 1, "web"))

    def message(self, customer: str, when: datetime, channel: str, *, cost: float = 0.0,
                control: bool = False) -> None:
        self.contacts.append({"customer_id": customer, "ts": when, "channel": channel,
                              "cost": cost, "control": control})

    def cell(self, channel: str, quarter: date, rate: float, *, cost: float = 0.0,
             control: bool = False, n: int = PER_CELL, when: datetime | None = None) -> None:
        when = when or _at(quarter + timedelta(days=30))
        tag = "ctl" if control else channel
        for i in range(n):
            customer = f"{tag}-{quarter:%Y%m}-{when:%d%H}-{i:03d}"
            self.order(customer, when - timedelta(days=10))
            self.message(customer, when, channel, cost=cost, control=control)
            if i < round(rate * n):
                self.order(customer, when + timedelta(days=3))

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        contacts = pl.DataFrame(self.contacts, schema=CONTACT_SCHEMA).sort("customer_id", "ts")
        return contacts, make_transactions(self.orders)


def _shop_log(control_rate: float = 0.10) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Email steady at 30% (uplift 0.2 over a 10% control); SMS at 30% until its response
    collapses to 15% in the latest quarter; viber (not in the cost table) steady at 25%;
    push only sent in the last days, whose response windows are still open."""
    log = Log()
    for quarter in QUARTERS:
        log.cell("email", quarter, control_rate, control=True)
        log.cell("email", quarter, 0.30, cost=0.1)
        log.cell("sms", quarter, 0.15 if quarter == QUARTERS[-1] else 0.30, cost=3.0)
        log.cell("viber", quarter, 0.25, cost=0.5)
    # Too recent to judge: nobody has had the full week to respond yet.
    log.cell("push", QUARTERS[-1], 0.0, when=_at(AS_OF - timedelta(days=3)))
    log.cell("email", QUARTERS[-1], 0.0, cost=0.1, n=50, when=_at(AS_OF - timedelta(days=2)))
    return log.frames()


@pytest.fixture(scope="module")
def shop_log():
    return _shop_log()


@pytest.fixture(scope="module")
def measured(shop_log):
    contacts, tx = shop_log
    return measure_channels(contacts, tx, AS_OF, UNSHRUNK)


@pytest.fixture(scope="module")
def plan(measured):
    return channel_plan(measured, UNSHRUNK)


def _row(frame: pl.DataFrame, **keys) -> dict:
    rows = frame.filter(**keys).to_dicts()
    assert len(rows) == 1, (keys, rows)
    return rows[0]


def test_each_period_is_measured_against_the_control_rows(measured):
    periods = measured.periods
    assert measured.measured_at == AS_OF
    assert set(periods["channel"]) == {"email", "sms", "viber"}
    assert sorted(set(periods["period"])) == QUARTERS
    for quarter in QUARTERS:
        email = _row(periods, channel="email", period=quarter)
        # Control rows are the baseline, not email messages.
        assert email["messages"] == PER_CELL and email["control_messages"] == PER_CELL
        assert email["control_rate"] == pytest.approx(0.10)
        assert email["response_rate"] == pytest.approx(0.30)
        assert email["raw_uplift"] == pytest.approx(0.20)
        assert email["uplift"] == pytest.approx(0.20)  # no shrinkage with prior_messages 0
        assert email["cost"] == pytest.approx(0.1)
    sms_last = _row(periods, channel="sms", period=QUARTERS[-1])
    assert sms_last["raw_uplift"] == pytest.approx(0.05)


def test_a_channel_whose_uplift_collapsed_goes_to_maintenance(plan):
    status = dict(zip(plan["channel"], plan["status"], strict=True))
    assert status["sms"] == MAINTENANCE
    assert status["email"] == ACTIVE and status["viber"] == ACTIVE
    sms = _row(plan, channel="sms")
    assert sms["uplift"] == pytest.approx(0.05)
    assert sms["typical_uplift"] == pytest.approx(0.20)
    assert _row(plan, channel="email")["typical_uplift"] == pytest.approx(0.20)


def test_unmeasured_channels_come_from_the_cost_table(plan):
    status = dict(zip(plan["channel"], plan["status"], strict=True))
    cost = dict(zip(plan["channel"], plan["cost"], strict=True))
    # Every channel of the rules, plus the one only the log knows.
    assert set(plan["channel"]) == set(RULES.cost) | {"viber"}
    for channel in set(RULES.cost) - {"email", "sms"}:
        assert status[channel] == UNMEASURED, channel
        assert cost[channel] == RULES.cost[channel]
        assert _row(plan, channel=channel)["uplift"] == RULES.default_uplift
    assert cost["viber"] == pytest.approx(0.5)  # the log's price, when it records one
    # Cheapest first.
    assert plan["cost"].to_list() == sorted(plan["cost"].to_list())


def test_a_log_without_costs_keeps_the_rules_price(shop_log):
    contacts, tx = shop_log
    free = measure_channels(contacts.with_columns(cost=pl.lit(0.0)), tx, AS_OF, UNSHRUNK)
    plan = channel_plan(free, UNSHRUNK)
    assert _row(plan, channel="sms")["cost"] == RULES.cost["sms"]
    assert _row(plan, channel="email")["cost"] == RULES.cost["email"]
    assert _row(plan, channel="viber")["cost"] == 0.0


def test_open_response_windows_are_not_judged(shop_log, measured, plan):
    contacts, tx = shop_log
    # 200 push messages three days ago: none judged, push stays unmeasured at the default.
    assert "push" not in set(measured.periods["channel"])
    assert _row(plan, channel="push")["status"] == UNMEASURED
    # The 50 unanswered emails of two days ago would drag email's latest quarter down.
    assert _row(measured.periods, channel="email", period=QUARTERS[-1])["messages"] == PER_CELL
    judged = responses(contacts, tx, AS_OF, RULES.response_days, 180).collect()
    assert judged["ts"].max() < _at(AS_OF - timedelta(days=RULES.response_days), 0)


def test_the_window_closes_exactly_response_days_after_the_message():
    log = Log()
    log.order("a", _at(AS_OF - timedelta(days=20)))
    log.message("a", _at(AS_OF - timedelta(days=8)), "email")  # closed yesterday: judged
    log.message("a", _at(AS_OF - timedelta(days=7)), "email")  # closes at 10:00 today: not yet
    log.order("b", _at(AS_OF - timedelta(days=20)))
    log.message("b", _at(AS_OF - timedelta(days=9)), "email")
    log.order("b", _at(AS_OF - timedelta(days=2)))  # 7 days after the message: too late
    log.order("c", _at(AS_OF - timedelta(days=20)))
    log.message("c", _at(AS_OF - timedelta(days=9)), "email")
    log.order("c", datetime.combine(AS_OF - timedelta(days=2), datetime.min.time()) +
              timedelta(hours=9, minutes=59))  # just inside the 7 days
    contacts, tx = log.frames()
    judged = responses(contacts, tx, AS_OF, 7, 180).collect().sort("customer_id")
    assert judged["customer_id"].to_list() == ["a", "b", "c"]
    assert judged["responded"].to_list() == [False, False, True]


def test_messages_to_long_gone_customers_are_left_out():
    log = Log()
    log.order("gone", _at(date(2024, 1, 5)))
    log.message("gone", _at(date(2025, 3, 1)), "email")
    log.order("recent", _at(date(2025, 2, 1)))
    log.message("recent", _at(date(2025, 3, 1)), "email")
    log.message("never", _at(date(2025, 3, 1)), "email")  # no order at all before it
    contacts, tx = log.frames()
    judged = responses(contacts, tx, AS_OF, 7, 180).collect()
    assert judged["customer_id"].to_list() == ["recent"]
    wide = responses(contacts, tx, AS_OF, 7, 1000).collect()
    assert sorted(wide["customer_id"]) == ["gone", "recent"]


def test_control_rows_set_the_baseline():
    contacts, tx = _shop_log(control_rate=0.20)
    periods = measure_channels(contacts, tx, AS_OF, UNSHRUNK).periods
    for quarter in QUARTERS:
        email = _row(periods, channel="email", period=quarter)
        assert email["control_rate"] == pytest.approx(0.20)
        assert email["response_rate"] == pytest.approx(0.30)  # the treated side is unchanged
        assert email["raw_uplift"] == pytest.approx(0.10)


def test_a_period_without_control_rows_is_not_measured():
    log = Log()
    log.cell("email", QUARTERS[-1], 0.3, cost=0.1)
    contacts, tx = log.frames()
    measured = measure_channels(contacts, tx, AS_OF, UNSHRUNK)
    assert measured.periods["uplift"].null_count() == measured.periods.height
    assert _row(channel_plan(measured, UNSHRUNK), channel="email")["status"] == UNMEASURED


def test_shrinkage_keeps_one_small_bad_quarter_from_maintenance(shop_log):
    contacts, tx = shop_log
    measured = measure_channels(contacts, tx, AS_OF, RULES)  # prior of 2000 messages
    sms = _row(measured.periods, channel="sms", period=QUARTERS[-1])
    weight = 1 / (1 / PER_CELL + 1 / PER_CELL)
    expected = (0.05 * weight + RULES.default_uplift * RULES.prior_messages) / (
        weight + RULES.prior_messages)
    assert sms["uplift"] == pytest.approx(expected)
    assert _row(channel_plan(measured, RULES), channel="sms")["status"] == ACTIVE


def test_monthly_periods():
    monthly = UNSHRUNK.model_copy(update={"period": "month"})
    contacts, tx = _shop_log()
    periods = measure_channels(contacts, tx, AS_OF, monthly).periods
    # Messages on Jul 31, Oct 31, Jan 31 and May 1: each in its own month.
    assert sorted(set(periods["period"])) == [date(2024, 7, 1), date(2024, 10, 1),
                                              date(2025, 1, 1), date(2025, 5, 1)]


# --- per customer: channels that do not work for them ---------------------------------------------


@pytest.fixture(scope="module")
def ignoring():
    log = Log()
    days = [date(2025, 2, 1), date(2025, 2, 15), date(2025, 3, 1), date(2025, 3, 15),
            date(2025, 4, 1)]
    for customer in ("ign5", "ign4", "resp5", "sms5", "late5"):
        log.order(customer, _at(date(2025, 1, 10)))
    for day in days:
        log.message("ign5", _at(day), "email")
        log.message("resp5", _at(day), "email")
        log.message("sms5", _at(day), "sms", cost=3.0)
    for day in days[:4]:
        log.message("ign4", _at(day), "email")
        log.message("late5", _at(day), "email")
    log.message("late5", _at(AS_OF - timedelta(days=2)), "email")  # not judged yet
    log.message("ign5", _at(days[0]), "email", control=True)  # a control row is no message
    log.order("resp5", _at(date(2025, 3, 3)))
    # Long ago: five ignored messages more than a year before as_of do not count.
    log.order("old5", _at(date(2024, 1, 2)))
    for month in range(2, 7):
        log.message("old5", _at(date(2024, month, 1)), "push")
    contacts, tx = log.frames()
    return measure_channels(contacts, tx, AS_OF, RULES)


def test_a_customer_who_ignored_a_channel_enough_times_is_listed(ignoring):
    ignored = set(ignoring.ignored.iter_rows())
    assert ignored == {("ign5", "email"), ("sms5", "sms")}
    assert ignoring.ignored.columns == ["customer_id", "channel"]


def test_the_number_of_ignored_messages_comes_from_the_rules(ignoring):
    # Same log, a stricter rule: four ignored messages are enough.
    log = Log()
    log.order("ign4", _at(date(2025, 1, 10)))
    for day in (date(2025, 2, 1), date(2025, 2, 15), date(2025, 3, 1), date(2025, 3, 15)):
        log.message("ign4", _at(day), "email")
    contacts, tx = log.frames()
    four = RULES.model_copy(update={"min_contacts_to_judge": 4})
    assert measure_channels(contacts, tx, AS_OF, four).ignored.rows() == [("ign4", "email")]
    assert measure_channels(contacts, tx, AS_OF, RULES).ignored.height == 0


def test_no_measurements_is_an_all_unmeasured_plan():
    measured = no_measurements()
    assert measured.ignored.height == 0
    plan = channel_plan(measured, RULES)
    assert set(plan["channel"]) == set(RULES.cost)
    assert set(plan["status"]) == {UNMEASURED}
    assert set(plan["uplift"]) == {RULES.default_uplift}
    assert plan["channel"][0] == min(RULES.cost, key=RULES.cost.get)
