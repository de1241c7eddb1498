"""``make results``: the decisions' evidence on the simulated shop's true future."""

from __future__ import annotations

import pytest

from retain.training.backtest import TrainConfig, fit_pipeline
from retain.training.results import decision_evidence, decisions_section

CONFIG = TrainConfig(n_origins=2, n_estimators=60, learning_rate=0.2)


@pytest.fixture(scope="module")
def pipeline(shop, shop_history):
    return fit_pipeline(shop_history, shop.as_of, CONFIG, progress=lambda _: None)


@pytest.fixture(scope="module")
def section(shop, shop_history, pipeline) -> str:
    return decisions_section(shop, shop_history, pipeline, CONFIG.horizon_days)


def test_decisions_beat_the_month_rule_at_the_same_number_of_contacts(shop, section, pipeline):
    from retain.decisions.decide import score_and_decide
    from retain.decisions.rules import default_rules

    decided = score_and_decide(pipeline, shop.transactions, shop.as_of, rules=default_rules(),
                               consents=shop.customers, contacts=shop.contacts)
    features, _ = pipeline.features(shop.transactions, shop.as_of)
    decided = decided.join(features.select("customer_id", "days_since_last_order"),
                           on="customer_id")
    evidence = decision_evidence(decided, shop.truth, shop.as_of, CONFIG.horizon_days)
    ours, lapsed = evidence.row(0, named=True), evidence.row(1, named=True)
    assert ours["contacts"] == lapsed["contacts"] > 0
    assert ours["precision_leaving_or_due"] > lapsed["precision_leaving_or_due"]
    assert ours["discounts_wasted"] < lapsed["discounts_wasted"]
    assert ours["discounts"] < lapsed["discounts"]


def test_the_section_shows_the_table_goals_and_channels(section):
    assert "| retain decisions |" in section and "-> discount |" in section
    assert "Goals: " in section and "control" in section
    assert "| email |" in section and ("active" in section or "maintenance" in section)
