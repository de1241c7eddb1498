"""The due-product ranker earns its place against "the most bought product", or falls back."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from retain.features.products import product_candidates
from retain.models.due_product import MAX_CANDIDATES, DueProductRanker
from retain.simulate import simulate_shop
from retain.training.due_product import (
    choose_due_product,
    due_product_hits,
    fit_due_product_ranker,
)
from tests.conftest import make_transactions

HORIZON = 90


@pytest.fixture(scope="module")
def replenishing_shop():
    """Simulated favourites come back every m-th order (m personal): replenishment cycles."""
    shop = simulate_shop(3000, seed=11)
    return shop, pl.concat([shop.transactions, shop.future_transactions]).with_columns(
        pl.col("quantity").cast(pl.Float64))


def test_the_ranker_beats_the_most_bought_product_on_replenishment_cycles(replenishing_shop):
    shop, tx = replenishing_shop
    origins = [shop.as_of - timedelta(days=HORIZON * k) for k in (4, 3, 2, 1)]
    ranker, figures = choose_due_product(tx, origins, shop.as_of, HORIZON)
    assert figures["verdict"] == "ranker" and isinstance(ranker, DueProductRanker)
    assert figures["lo"] > 0 and figures["diff"] > 0.02
    assert figures["hit_rate_ranker"] > figures["hit_rate_baseline"] + 0.02
    assert figures["customers"] > 500
    # The figures are the hit rates of the same customers, scored apart.
    ranked = due_product_hits(tx, shop.as_of, HORIZON, ranker)
    assert ranked["hit"].mean() == pytest.approx(figures["hit_rate_ranker"])
    assert due_product_hits(tx, shop.as_of, HORIZON)["hit"].mean() == pytest.approx(
        figures["hit_rate_baseline"])


def test_the_ranker_is_deterministic_and_scores_only_candidates(replenishing_shop):
    shop, tx = replenishing_shop
    origins = [shop.as_of - timedelta(days=HORIZON * k) for k in (3, 2)]
    first = fit_due_product_ranker(tx, origins, HORIZON)
    second = fit_due_product_ranker(tx, origins, HORIZON)
    assert first.booster_.model_to_string() == second.booster_.model_to_string()
    products = product_candidates(tx, shop.as_of)
    scores = first.scores(products)
    beyond = products["purchase_rank"].to_numpy() > MAX_CANDIDATES
    assert beyond.any() and np.isnan(scores[beyond]).all()
    assert ((scores[~beyond] > 0) & (scores[~beyond] < 1)).all()
    # One customer alone (the API path, single-row predictions) scores as in the batch.
    one = products.filter(customer_id=products["customer_id"][0])
    assert first.scores(one) == pytest.approx(scores[: one.height], abs=1e-12, nan_ok=True)


def test_without_product_ids_the_baseline_stays():
    """CDNOW: amounts and dates only."""
    rows = [(f"c{c}", f"o{c}-{i}", f"2024-{1 + i:02d}-{1 + c % 20:02d}", 10.0, None)
            for c in range(30) for i in range(10)]
    tx = make_transactions(rows)
    origins = [date(2024, 4, 1), date(2024, 6, 1)]
    with pytest.raises(ValueError, match="product"):
        fit_due_product_ranker(tx, origins, 60)
    ranker, figures = choose_due_product(tx, origins, date(2024, 8, 1), 60)
    assert ranker is None and figures["verdict"].startswith("baseline")
    assert "product" in figures["verdict"]


def test_nothing_to_rank_is_a_clear_error():
    # Everyone bought once, long before: no next basket after any origin.
    tx = make_transactions([(f"c{c}", f"o{c}", "2024-01-05", 10.0, "tea") for c in range(20)])
    with pytest.raises(ValueError, match="nothing to rank"):
        fit_due_product_ranker(tx, [date(2024, 3, 1)], 30)


def test_a_tie_goes_to_the_most_bought_product():
    """Tea in every order, a random extra now and then: the most bought product is always
    right, the ranker can at best equal it."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(150):
        start = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 10)))
        for i in range(30):
            day = (start + timedelta(days=12 * i)).isoformat()
            rows.append((f"c{c:03d}", f"o{c}-{i}", day, 5.0, "tea"))
            if rng.random() < 0.4:
                rows.append((f"c{c:03d}", f"o{c}-{i}", day, 3.0, f"extra{rng.integers(0, 9)}"))
    tx = make_transactions(rows)
    origins = [date(2024, 5, 1), date(2024, 7, 1), date(2024, 9, 1)]
    ranker, figures = choose_due_product(tx, origins, date(2024, 11, 1), 60)
    assert figures["hit_rate_baseline"] == 1.0
    assert figures["diff"] <= 0 and not figures["lo"] > 0
    assert ranker is None and figures["verdict"].startswith("baseline")


def test_fit_origins_whose_horizon_overlaps_the_evaluation_are_refused(replenishing_shop):
    shop, tx = replenishing_shop
    with pytest.raises(ValueError, match="past the evaluation origin"):
        choose_due_product(tx, [shop.as_of - timedelta(days=60)], shop.as_of, HORIZON)


def test_a_pickled_ranker_scores_the_same(replenishing_shop):
    """The ranker travels inside the pickled scoring pipeline (MLflow's pyfunc)."""
    import pickle

    shop, tx = replenishing_shop
    ranker = fit_due_product_ranker(tx, [shop.as_of - timedelta(days=90)], HORIZON)
    products = product_candidates(tx, shop.as_of)
    back = pickle.loads(pickle.dumps(ranker))
    np.testing.assert_array_equal(back.scores(products), ranker.scores(products))
    assert back.product_popularity_ == ranker.product_popularity_
