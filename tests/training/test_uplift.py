"""The offer uplift model's training set (orders after each past message, features from before
it) and its place in training: fitted when the contacts log has offers, said when it has not,
and the decisions it drives agree for one customer and for the whole shop."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from retain.decisions.decide import NO_OFFER, score_and_decide
from retain.decisions.rules import default_rules
from retain.simulate import simulate_shop
from retain.training.train import fit_decision_inputs
from retain.training.uplift import fit_offer_uplift, offer_training_set

AS_OF = date(2026, 7, 1)


def _lines(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"customer_id": c, "order_id": f"O{i}", "ts": datetime.fromisoformat(ts),
          "amount": 100.0, "product_id": "P1", "quantity": 1.0, "channel": "web"}
         for i, (c, ts) in enumerate(rows)])


def _contacts(rows: list[tuple[str, str, bool, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"customer_id": c, "ts": datetime.fromisoformat(ts), "channel": "email",
          "campaign": "x", "cost": 0.1, "control": control, "offer": offer}
         for c, ts, control, offer in rows])


def test_training_set_counts_the_orders_after_each_message_and_sees_only_before_it():
    lines = _lines([
        ("A", "2026-01-01 12:00"), ("A", "2026-02-10 09:00"), ("A", "2026-02-20 12:00"),
        ("A", "2026-03-30 12:00"),
        ("B", "2026-01-03 12:00"), ("B", "2026-02-11 12:00"),
        ("C", "2026-01-05 12:00"), ("C", "2026-03-05 12:00"), ("C", "2026-03-06 12:00"),
        ("C", "2026-06-25 12:00"),
    ])
    contacts = _contacts([
        ("A", "2026-02-10 10:00", False, "discount_10"),  # an order that morning: not after it
        ("B", "2026-02-10 10:00", True, NO_OFFER),  # the control group received nothing
        ("C", "2026-03-01 10:00", False, NO_OFFER),
        ("C", "2026-06-20 10:00", False, "discount_10"),  # its window is not over at as-of
        ("D", "2026-03-01 10:00", False, "discount_10"),  # no purchase before it
    ])
    data = offer_training_set(lines, contacts, AS_OF)
    rows = data.features.with_columns(treated=pl.Series(data.treated),
                                      orders_after=pl.Series(data.orders)).sort("customer_id")
    assert rows["customer_id"].to_list() == ["A", "C"]
    assert rows["treated"].to_list() == [True, False]
    assert rows["orders_after"].to_list() == [1.0, 2.0]
    # Features as of the message's day: A's order that morning is not among them.
    assert rows["orders"].to_list() == [1, 1]
    assert rows["days_since_last_order"].to_list() == [40.0, 55.0]


def test_without_an_offer_column_or_with_too_few_offers_no_model_and_it_says_why():
    lines = _lines([("A", "2026-01-01 12:00"), ("A", "2026-02-20 12:00")])
    contacts = _contacts([("A", "2026-02-10 10:00", False, "discount_10")])
    said: list[str] = []
    assert fit_offer_uplift(lines, contacts.drop("offer"), AS_OF, progress=said.append) is None
    assert "no offer column" in said[-1] and "discount_uplift" in said[-1]
    assert fit_offer_uplift(lines, contacts, AS_OF, progress=said.append) is None
    assert "too few past messages" in said[-1] and "1 with a discount, 0 without" in said[-1]
    assert fit_offer_uplift(lines, None, AS_OF, progress=said.append) is None


@pytest.fixture(scope="module")
def offer_shop():
    shop = simulate_shop(4000, seed=31, offer_share=0.5)
    return shop, shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))


@pytest.fixture(scope="module")
def fitted(offer_shop):
    """A probabilistic-only pipeline with the decisions' inputs fitted from the shop's log."""
    from retain.features.customers import customer_features
    from retain.models.btyd import BTYDModel
    from retain.models.pipeline import ScoringPipeline

    shop, tx = offer_shop
    pipeline = ScoringPipeline(horizon_days=90, channels=[],
                               btyd=BTYDModel().fit(customer_features(tx, shop.as_of)))
    said: list[str] = []
    fit_decision_inputs(pipeline, tx, shop.as_of, shop.contacts, default_rules(), said.append)
    return pipeline, said


def test_training_fits_the_uplift_model_when_the_log_has_offers(fitted, offer_shop):
    pipeline, said = fitted
    assert pipeline.offer_uplift is not None
    assert any(line.startswith("offer uplift model") for line in said)
    shop, tx = offer_shop
    # Without offers in the log, the same training keeps the rules' rule and says so.
    bare = type(pipeline)(horizon_days=90, channels=[], btyd=pipeline.btyd)
    said = []
    fit_decision_inputs(bare, tx, shop.as_of, shop.contacts.drop("offer"), default_rules(),
                        said.append)
    assert bare.offer_uplift is None and any("no offer column" in line for line in said)


def test_offers_by_uplift_are_decided_alike_for_one_customer_and_the_shop(fitted, offer_shop):
    pipeline, _ = fitted
    shop, tx = offer_shop
    rules = default_rules()
    batch = score_and_decide(pipeline, tx, shop.as_of, rules=rules, consents=shop.customers)
    offered = batch.filter(pl.col("offer") != NO_OFFER)["customer_id"].to_list()
    assert offered, "the uplift model should find someone a discount pays for"
    some = offered[:5] + batch.filter(pl.col("offer") == NO_OFFER)["customer_id"].to_list()[:5]
    for customer in some:
        own = pl.col("customer_id") == customer
        alone = score_and_decide(pipeline, tx.filter(own), shop.as_of, rules=rules,
                                 consents=shop.customers.filter(own))
        expected = batch.filter(own)
        assert alone["offer"].to_list() == expected["offer"].to_list()
        assert alone["expected_incremental_revenue"].to_list() == pytest.approx(
            expected["expected_incremental_revenue"].to_list())


def test_qini_is_one_for_the_best_ranking_zero_for_random_and_negative_reversed():
    import numpy as np

    from retain.training.uplift import qini_coefficient, qini_curve

    true = np.array([0.3, 0.3, 0.0, 0.0, -0.2, 0.1, 0.0, -0.4])
    best = qini_curve(true, true)
    assert best[0] == 0 and best[-1] == pytest.approx(true.sum())
    assert best[2] == pytest.approx(0.6)  # the two persuadables first
    assert qini_coefficient(best, best) == pytest.approx(1.0)
    assert qini_coefficient(qini_curve(true, -true), best) < 0
    rng = np.random.default_rng(0)
    many = rng.choice([0.3, 0.0, -0.2], size=50_000)
    assert abs(qini_coefficient(qini_curve(many, rng.random(many.size)),
                                qini_curve(many, many))) < 0.02


def test_targeting_evidence_on_small_shops_is_consistent(offer_shop):
    from retain.training.uplift import offer_targeting_evidence

    shop, _ = offer_shop
    evidence = offer_targeting_evidence(shop, simulate_shop(3000, seed=32), n_boot=50)
    assert evidence["at_rule_k"]["best possible"] >= max(evidence["at_rule_k"].values()) - 1e-9
    # Knowing the truth, discounts earn at least what any policy earns.
    assert evidence["best_money"] >= max(evidence["money_at_rule_k"].values())
    assert evidence["best_money"] >= evidence["decision_rule"]["money"]
    low, high = evidence["retain_minus_rule_ci"]
    assert low <= high
    assert evidence["customers"] > 2500
    # The calibrated uplift, by fifths: the top fifth's customers truly respond more than the
    # bottom's, and the prediction orders the fifths as the truth does at the ends.
    fifths = {f: (p, t) for f, _, p, t in evidence["by_fifth"]}
    assert sorted(fifths) == [1, 2, 3, 4, 5]
    assert fifths[5][1] > fifths[1][1] and fifths[5][0] > fifths[1][0]
    assert evidence["heldout_qini"] is not None


def test_a_large_log_is_sampled_at_random_within_its_messages(offer_shop):
    shop, tx = offer_shop
    whole = offer_training_set(tx, shop.contacts, shop.as_of)
    part = offer_training_set(tx, shop.contacts, shop.as_of, max_messages=5000)
    assert part.features.height <= 5000 < whole.features.height
    # Random: the share of messages with a discount stays.
    assert part.treated.mean() == pytest.approx(whole.treated.mean(), abs=0.03)
