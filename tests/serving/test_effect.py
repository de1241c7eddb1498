"""GET /v1/effect: the latest measurement `retain effect` kept, behind the export scope."""

from __future__ import annotations

import re
from datetime import date

import polars as pl
import pytest
from fastapi.testclient import TestClient

from retain.analytics.effect import EFFECT_COLUMNS, PERIOD_DATES, RAW_DIFFERENCE, measure_effect
from retain.serving.effect_store import write_effect
from retain.serving.main import create_app
from retain.serving.store import ScoreStore
from retain.simulate import simulate_shop
from tests.serving.conftest import EXPORT_KEY, SCORE_KEY

EXPORT = {"X-API-Key": EXPORT_KEY}


@pytest.fixture
def client(settings, no_registry):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _measure(split):
    shop = simulate_shop(800, seed=2, history_days=200, future_days=90, control_share=0.2)
    return measure_effect(shop.transactions, shop.contacts, date(2026, 5, 1), date(2026, 7, 1),
                          split=split, n_boot=200)


def test_effect_is_empty_until_measured_and_needs_the_export_scope(client):
    assert client.get("/v1/effect").status_code == 401
    assert client.get("/v1/effect", headers={"X-API-Key": SCORE_KEY}).status_code == 403
    body = client.get("/v1/effect", headers=EXPORT).json()
    assert body["effect_id"] is None and body["rows"] == []


def test_effect_serves_the_latest_measurement_or_the_latest_of_a_split(client, store_url):
    by_channel, overall = _measure("channel"), _measure(None)
    with ScoreStore(store_url).open() as store:
        channel_id = write_effect(store, by_channel, date_from=date(2026, 5, 1),
                                  date_to=date(2026, 7, 1), by="month", split="channel")
        overall_id = write_effect(store, overall, date_from=date(2026, 5, 1),
                                  date_to=date(2026, 7, 1), by="month", split=None)
    latest = client.get("/v1/effect", headers=EXPORT).json()
    assert latest["effect_id"] == overall_id and latest["split_by"] == "none"
    assert [list(row) for row in latest["rows"]] == [[*EFFECT_COLUMNS, *PERIOD_DATES, RAW_DIFFERENCE]] * \
        overall.height
    assert latest["rows"] == overall.with_columns(pl.col(PERIOD_DATES).cast(pl.String)).to_dicts()
    assert latest["rows"][-1]["period_start"] == "2026-06-01"
    assert latest["rows"][-1]["period_end"] == "2026-06-30"
    channel = client.get("/v1/effect?split=channel", headers=EXPORT).json()
    assert channel["effect_id"] == channel_id
    assert len(channel["rows"]) == by_channel.height
    assert client.get("/v1/effect?split=goal", headers=EXPORT).json()["rows"] == []
    assert client.get("/v1/effect?split=campaign", headers=EXPORT).status_code == 422
    # A later trial over another span does not hide the measurement asked for by its span.
    with ScoreStore(store_url).open() as store:
        write_effect(store, overall.head(3), date_from=date(2026, 6, 1),
                     date_to=date(2026, 7, 1), by="month", split=None)
    asked = client.get("/v1/effect?from=2026-05-01&to=2026-07-01", headers=EXPORT).json()
    assert asked["effect_id"] == overall_id
    june = client.get("/v1/effect?from=2026-05-01&period=2026-06", headers=EXPORT).json()
    assert {row["period"] for row in june["rows"]} == {"2026-06"} and len(june["rows"]) == 3
    assert client.get("/v1/effect?from=2020-01-01", headers=EXPORT).json()["rows"] == []
    assert client.get("/v1/effect?from=soon", headers=EXPORT).status_code == 422


def test_channels_need_a_served_model(client):
    assert client.get("/v1/channels", headers=EXPORT).status_code == 503


def test_channels_show_what_the_served_models_decisions_read(settings, tracking):
    from retain.decisions.channels import channel_plan
    from retain.decisions.rules import load_rules

    with TestClient(create_app(settings)) as served:
        body = served.get("/v1/channels", headers=EXPORT).json()
    measured = tracking.trained.pipeline.channel_measurements
    assert body["model_version"] == tracking.trained.version
    assert len(body["rows"]) == measured.periods.height > 0
    plan = channel_plan(measured, load_rules(None).channels)
    statuses = dict(plan.select("channel", "status").iter_rows())
    assert all(row["status"] == statuses[row["channel"]] for row in body["rows"])
    shares = [row["recommended_share"] for row in body["split"]]
    assert sum(shares) == pytest.approx(1.0) and min(shares) > 0


def test_channels_show_the_measured_uplift_beside_the_estimate_and_the_clis_labels(
        settings, tracking):
    """Fields added beside the ones CRM scripts read: ``raw_uplift`` (measured, not shrunk)
    and ``period_label`` as `retain channels` prints it, from the same function."""
    from retain.analytics.channels_over_time import period_labels
    from retain.decisions.rules import load_rules

    with TestClient(create_app(settings)) as served:
        body = served.get("/v1/channels", headers=EXPORT).json()
    rules = load_rules(None).channels
    assert body["default_uplift"] == rules.default_uplift
    assert body["prior_messages"] == rules.prior_messages
    periods = tracking.trained.pipeline.channel_measurements.periods
    for row in body["rows"]:
        assert {"period", "uplift", "raw_uplift", "period_label"} <= set(row)
        assert row["raw_uplift"] == pytest.approx(row["response_rate"] - row["control_rate"])
    measured = periods.select("period", "channel", "raw_uplift", "uplift").sort(
        "period", "channel")
    served_rows = pl.DataFrame(body["rows"]).select(
        pl.col("period").str.to_date(), "channel", "raw_uplift", "uplift")
    assert served_rows.sort("period", "channel").equals(measured)
    # The CLI's labels of the same first days (retain channels' own function), dates kept.
    days = periods.select("period").unique().sort("period")
    cli = dict(zip(days["period"].to_list(),
                   period_labels(days, days["period"][0], body["by"])["period"].to_list(),
                   strict=True))
    for row in body["rows"]:
        assert row["period_label"] == cli[date.fromisoformat(row["period"])]
    shape = {"quarter": r"\d{4}-Q[1-4]", "month": r"\d{4}-\d{2}"}[body["by"]]
    assert all(re.fullmatch(shape, label) for label in cli.values())


def test_channels_are_labelled_as_measured_when_the_rules_period_changed_since(
        settings, tracking, tmp_path):
    """The model measured by quarter; rules now saying month must not relabel its quarters
    as months."""
    monthly = tmp_path / "monthly.yaml"
    monthly.write_text("channels:\n  period: month\n", encoding="utf-8")
    with TestClient(create_app(settings.model_copy(update={"rules": str(monthly)}))) as served:
        body = served.get("/v1/channels", headers=EXPORT).json()
    assert tracking.trained.pipeline.channel_measurements.period == "quarter"
    assert body["by"] == "quarter" and body["rows"]
    assert all(re.fullmatch(r"\d{4}-Q[1-4]", row["period_label"]) for row in body["rows"])
