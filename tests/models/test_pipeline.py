"""The scoring pipeline: a customer scored alone, or a request of a few, scores exactly as in the
batch (one implementation of the features and the due products at any size)."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sklearn.metrics import roc_auc_score

from retain.features.labels import labels_lazy
from retain.models.pipeline import ExpectedOrdersChurn, due_products
from retain.training.backtest import TrainConfig, fit_pipeline

REQUEST = 64  # customers in a "small" request


@pytest.fixture(scope="module")
def pipeline(shop, shop_history):
    config = TrainConfig(n_origins=2, n_estimators=40, learning_rate=0.2)
    return fit_pipeline(shop_history, shop.as_of, config, progress=lambda _: None)


def customers(history: pl.DataFrame, n: int, offset: int = 0) -> list[str]:
    return history["customer_id"].unique().sort().slice(offset, n).to_list()


def of(history: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    return history.filter(pl.col("customer_id").is_in(ids))


def assert_alone_equals_batch(pipeline, history: pl.DataFrame, ids: list[str], as_of) -> None:
    batch = pipeline.score(of(history, ids), as_of)
    one_at_a_time = [pipeline.score(of(history, [customer_id]), as_of) for customer_id in ids]
    assert_frame_equal(pl.concat(one_at_a_time), batch, check_exact=False, rel_tol=0,
                       abs_tol=1e-9)


@pytest.mark.parametrize("days_before", [0, 60])
def test_customers_scored_one_at_a_time_equal_the_batch(pipeline, shop, shop_history,
                                                         days_before):
    # Some of these customers bought only after the earlier as-of date: no row for them.
    ids = customers(shop_history, REQUEST + 40, offset=100)
    as_of = shop.as_of - timedelta(days=days_before)
    assert_alone_equals_batch(pipeline, shop_history, ids, as_of)


def test_small_groups_equal_the_batch(pipeline, shop, shop_history):
    ids = customers(shop_history, 4 * REQUEST, offset=500)
    groups = [ids[i:i + REQUEST] for i in range(0, len(ids), REQUEST)]
    scored = pl.concat([pipeline.score(of(shop_history, group), shop.as_of) for group in groups])
    assert_frame_equal(scored, pipeline.score(of(shop_history, ids), shop.as_of),
                       check_exact=False, rel_tol=0, abs_tol=1e-9)


def test_probabilistic_fallback_scores_small_requests_as_the_batch(pipeline, shop, shop_history):
    # Its one-timers' timing falls back on the request's median interval, so compare whole
    # requests: a lazy frame is the same request.
    fallback = dataclasses.replace(pipeline, churn=None, value=None, timing=None)
    assert not fallback.eligible
    for offset in (0, 300, 600):
        request = of(shop_history, customers(shop_history, REQUEST, offset))
        assert_frame_equal(fallback.score(request, shop.as_of),
                           fallback.score(request.lazy(), shop.as_of),
                           check_exact=False, rel_tol=0, abs_tol=1e-9)


def test_churn_by_expected_orders_is_a_probability_ranked_as_the_orders(pipeline, shop,
                                                                       shop_history, shop_all):
    frame, _ = pipeline.features(shop_history, shop.as_of)
    orders = frame["btyd_expected_orders"].to_numpy()
    p_no_order = frame["btyd_p_no_order"].to_numpy()
    fitted = ExpectedOrdersChurn.fit("bgnbd", orders, p_no_order)
    churn = fitted.churn_probability(orders)
    assert fitted.slope < 0 and ((churn > 0) & (churn < 1)).all()
    # Strictly decreasing in the orders, even for the long gone (1e-44 expected orders): the
    # AUC is exactly the expected orders' ranking.
    grid = np.sort(np.unique(orders))
    assert grid[0] < 1e-30 and (np.diff(fitted.churn_probability(grid)) < 0).all()
    churned = frame.join(labels_lazy(shop_all, shop.as_of, 90).collect(), on="customer_id",
                         how="left")["ordered_again"].fill_null(False).not_().to_numpy()
    assert roc_auc_score(churned, churn) == pytest.approx(roc_auc_score(churned, -orders), abs=1e-12)
    # Close to the model's own probability: the map only changes the order of the ranks.
    assert abs(churn.mean() - p_no_order.mean()) < 0.05
    assert np.corrcoef(churn, p_no_order)[0, 1] > 0.9
    assert pickle.loads(pickle.dumps(fitted)) == fitted


def test_a_fallback_ranking_churn_by_expected_orders_scores_small_requests_as_the_batch(
        pipeline, shop, shop_history):
    frame, _ = pipeline.features(shop_history, shop.as_of)
    fitted = ExpectedOrdersChurn.fit("bgnbd", frame["btyd_expected_orders"].to_numpy(),
                                     frame["btyd_p_no_order"].to_numpy())
    fallback = dataclasses.replace(pipeline, churn=None, value=None, timing=None,
                                   orders_churn=fitted)
    ids = customers(shop_history, REQUEST + 10, offset=200)
    scores = fallback.score(of(shop_history, ids), shop.as_of)
    # One customer at a time, the same probabilities (the fallback's timing reads the
    # request's median interval, so only churn is compared here).
    one_at_a_time = pl.concat([fallback.score(of(shop_history, [c]), shop.as_of) for c in ids])
    assert np.allclose(one_at_a_time["churn_probability"].to_numpy(),
                       scores["churn_probability"].to_numpy(), rtol=0, atol=1e-12)
    assert np.allclose(scores["churn_probability"].to_numpy(),
                       fitted.churn_probability(scores["expected_orders"].to_numpy()))
    # A LightGBM churn choice ignores the map.
    assert_frame_equal(
        dataclasses.replace(pipeline, orders_churn=fitted).score(of(shop_history, ids), shop.as_of),
        pipeline.score(of(shop_history, ids), shop.as_of), rel_tol=1e-9, abs_tol=1e-12)


@pytest.fixture(scope="module")
def due_ranker(shop_history, shop):
    from retain.training.due_product import fit_due_product_ranker

    origins = [shop.as_of - timedelta(days=90 * k) for k in (3, 2, 1)]
    return fit_due_product_ranker(shop_history, origins, 90)


@pytest.mark.parametrize("with_ranker", [False, True])
def test_due_products_aligned_to_the_scored_customers_equal_the_join(
        pipeline, due_ranker, shop, shop_history, with_ranker):
    ranked = dataclasses.replace(pipeline, due_product=due_ranker if with_ranker else None)
    ranker = ranked.due_product_ranker
    for ids in (customers(shop_history, 12), customers(shop_history, 300, offset=40)):
        frame, products = ranked.features(of(shop_history, ids), shop.as_of)
        per_customer = due_products(products, shop.as_of, ranker)
        assert per_customer["customer_id"].is_unique().all()
        assert per_customer.height == products["customer_id"].n_unique()
        expected = frame.select("customer_id").join(per_customer, on="customer_id", how="left")
        # Ids without products (and ids past the last one) get nulls.
        ids_in = pl.Series("customer_id", ["", *frame["customer_id"].to_list(), "~"])
        aligned = due_products(products, shop.as_of, ranker, ids_in)
        assert_frame_equal(aligned.slice(1, frame.height), expected)
        assert aligned.row(0) == ("", None, None) and aligned.row(-1) == ("~", None, None)
        assert expected["due_product_id"].null_count() < len(ids)
        if ranker is None:  # the most bought product
            top = products.filter(pl.col("purchase_rank") == 1)
            assert per_customer["due_product_id"].to_list() == top["product_id"].to_list()
        dated = per_customer.join(products, left_on=["customer_id", "due_product_id"],
                                  right_on=["customer_id", "product_id"]).filter(
            pl.col("due_product_date").is_not_null())
        assert dated.height > 0 and (dated["due_product_date"] >= shop.as_of).all()
        assert (dated["overdue_ratio"] <= 3.0).all()


def test_a_pipeline_with_a_due_product_ranker_scores_small_requests_as_the_batch(
        pipeline, due_ranker, shop, shop_history):
    ranked = dataclasses.replace(pipeline, due_product=due_ranker)
    ids = customers(shop_history, REQUEST + 10, offset=200)
    assert_alone_equals_batch(ranked, shop_history, ids, shop.as_of)
    # The ranker changes some choices: it is not the most-bought rule under another name.
    plain = pipeline.score(of(shop_history, ids), shop.as_of)["due_product_id"]
    assert (ranked.score(of(shop_history, ids), shop.as_of)["due_product_id"] != plain).any()


def test_a_lazy_input_scores_as_the_frame(pipeline, shop, shop_history):
    request = of(shop_history, customers(shop_history, 30, offset=900))
    assert_frame_equal(pipeline.score(request.lazy(), shop.as_of),
                       pipeline.score(request, shop.as_of))


def test_without_product_ids_there_is_no_due_product(pipeline, due_ranker, shop, shop_history):
    """CDNOW has amounts and dates only: every due product is null, on both paths."""
    ranked = dataclasses.replace(pipeline, due_product=due_ranker)
    no_products = shop_history.with_columns(pl.lit(None, pl.String).alias("product_id"))
    ids = customers(shop_history, REQUEST + 5)
    for scorer in (pipeline, ranked):
        scores = scorer.score(of(no_products, ids), shop.as_of)
        assert scores.height > 0
        assert scores["due_product_id"].null_count() == scores.height
        assert scores["due_product_date"].null_count() == scores.height
        assert_alone_equals_batch(scorer, no_products, ids, shop.as_of)


def test_the_ranker_scores_only_the_candidates_of_a_customer_with_many_products(
        pipeline, due_ranker, shop, shop_history):
    from retain.models.due_product import MAX_CANDIDATES

    ids = customers(shop_history, 400)
    _, products = pipeline.features(of(shop_history, ids), shop.as_of)
    counts = products.group_by("customer_id").len()
    many = counts.filter(pl.col("len") > MAX_CANDIDATES)["customer_id"].sort().to_list()
    assert many, "the simulated shop has customers with more products than candidates"
    rows = products.filter(pl.col("customer_id") == many[0])
    scores = due_ranker.scores(rows)
    kept = (rows["purchase_rank"] <= MAX_CANDIDATES).to_numpy()
    assert np.isnan(scores[~kept]).all() and not np.isnan(scores[kept]).any()
    # The candidates score as they do alone.
    np.testing.assert_array_equal(scores[kept], due_ranker.scores(rows.filter(pl.Series(kept))))
