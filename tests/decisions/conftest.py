"""What the decisions tests share: the simulated shop scored once, quickly.

Scores come from the pipeline with the probabilistic model only (no LightGBM), which gives every
column the decisions read.
"""

from __future__ import annotations

import polars as pl
import pytest

from retain.decisions.segments import ShopReference


@pytest.fixture(scope="session")
def pipeline(shop):
    """A scoring pipeline with the probabilistic model only, fitted on the shop."""
    from retain.features.customers import customer_features
    from retain.models.btyd import BTYDModel
    from retain.models.pipeline import ScoringPipeline

    tx = shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))
    return ScoringPipeline(horizon_days=90, channels=[],
                           btyd=BTYDModel().fit(customer_features(tx, shop.as_of)))


@pytest.fixture(scope="session")
def scored(shop, pipeline):
    """(transactions, scores, features) of the shop at its as-of date."""
    tx = shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))
    pipe = pipeline
    features, products = pipe.features(tx, shop.as_of)
    return tx, pipe.score_features(features, products, shop.as_of), features


@pytest.fixture(scope="session")
def scores(scored):
    return scored[1]


@pytest.fixture(scope="session")
def features(scored):
    return scored[2]


@pytest.fixture(scope="session")
def reference(scores, features):
    return ShopReference.fit(scores, features)
