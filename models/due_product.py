"""Which of a customer's products is in their next order: a LightGBM ranker over candidates.

Candidates are each customer's ``MAX_CANDIDATES`` most bought products (``purchase_rank``,
``features.products.product_candidates``); the model is a binary classifier of "this product is
in the customer's next purchase order", trained on the customers who did order (the due product
is only judged on them) and read as a score per candidate: the due product is the candidate with
the highest one. The simple rule it must beat is the candidate ranked first (the most bought).
Learned state besides the trees: each product's share of customers at training
(``product_popularity_``), so one customer's request is scored with the shop's popularity.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from retain.features.segments import float_column
from retain.models._gbm import matrix, validation_mask
from retain.models._lightgbm_rows import raw_scores
from retain.models.btyd import NotFittedError

MAX_CANDIDATES = 20
FEATURES = (
    "purchases", "lines", "basket_days", "basket_share", "days_since_last", "interval_median",
    "interval_mean", "overdue_ratio", "orders_since_last", "order_gap_median", "order_overdue",
    "purchase_rank", "customer_products", "customer_days_since_last", "product_popularity",
)


def candidates(products: pl.DataFrame) -> pl.DataFrame:
    """The rows the ranker scores: each customer's ``MAX_CANDIDATES`` most bought products."""
    return products.filter(pl.col("purchase_rank") <= MAX_CANDIDATES)


class DueProductRanker:
    """``fit(products, basket)``: ``products`` from ``features.products.product_candidates``
    (stacked over origins with an ``as_of`` column, or one origin), ``basket`` the
    ``customer_id, product_id`` (and ``as_of``) of the next purchase orders
    (``features.labels.next_purchase_basket``). ``scores(products)``: one probability per row,
    NaN outside the candidates."""

    def __init__(self, n_estimators: int = 400, learning_rate: float = 0.05,
                 num_leaves: int = 31, min_child_samples: int = 50,
                 validation_fraction: float = 0.2, early_stopping_rounds: int = 30,
                 random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        # One thread and LightGBM's deterministic mode: the same data give the same trees.
        return {"objective": "binary", "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "num_threads": 1, "deterministic": True, "force_row_wise": True,
                "seed": self.random_state, "verbosity": -1}

    def fit(self, products: pl.DataFrame, basket: pl.DataFrame) -> DueProductRanker:
        keys = [k for k in ("as_of", "customer_id") if k in products.columns and k in basket.columns]
        ordered = basket.select(keys).unique()
        rows = candidates(products).join(ordered, on=keys, how="semi")
        if rows.height == 0:
            raise ValueError("no candidate products of customers who ordered again: nothing to rank")
        y = rows.join(basket.select(*keys, "product_id").unique().with_columns(
            pl.lit(True).alias("_in")), on=[*keys, "product_id"], how="left")["_in"].is_not_null()
        y = y.to_numpy().astype(np.float32)
        if y.min() == y.max():
            raise ValueError("every candidate product has the same outcome: nothing to rank")
        self.product_popularity_ = popularity(products)
        self.feature_names_ = list(FEATURES)
        X = matrix(self._with_popularity(rows), self.feature_names_)
        valid = validation_mask(rows["customer_id"], self.validation_fraction, str(self.random_state))
        if valid.all() or not valid.any() or y[valid].min() == y[valid].max():
            valid = np.zeros(len(y), dtype=bool)
        train = lgb.Dataset(X[~valid], y[~valid], feature_name=self.feature_names_)
        sets, callbacks = [], []
        if valid.any():
            sets = [lgb.Dataset(X[valid], y[valid], reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        booster = lgb.train(self._params(), train, num_boost_round=self.n_estimators,
                            valid_sets=sets, callbacks=callbacks)
        if 0 < booster.best_iteration < booster.current_iteration():
            # Keep only the best trees: the single-row predictor then serves the API path.
            booster = lgb.Booster(model_str=booster.model_to_string(
                num_iteration=booster.best_iteration))
        self.booster_ = booster
        self.n_rows_ = len(y)
        return self

    def scores(self, products: pl.DataFrame) -> np.ndarray:
        """P(in the next order) per row of ``products``; NaN beyond ``MAX_CANDIDATES``."""
        if not hasattr(self, "booster_"):
            raise NotFittedError("DueProductRanker has not been fit yet: call fit(products, basket).")
        out = np.full(products.height, np.nan)
        if products.height == 0:
            return out
        rank = products.get_column("purchase_rank").to_numpy()
        kept = rank <= MAX_CANDIDATES
        if kept.any():
            # Rows by position, not DataFrame.filter: a filter runs as a query, ~0.5 ms on a
            # request's few rows (a customer with more than MAX_CANDIDATES products).
            rows = products if kept.all() else products[np.flatnonzero(kept)]
            raw = raw_scores(self.booster_,
                             matrix(self._with_popularity(rows), self.feature_names_))
            out[kept] = 1.0 / (1.0 + np.exp(-raw))
        return out

    def _with_popularity(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with ``product_popularity`` from training (0 for a product it never saw)."""
        shares = self.product_popularity_
        ids = rows.get_column("product_id")
        if rows.height <= 64:  # the API's requests: a dict lookup, no polars query
            # float_column, not pl.Series(list): no per-value checks (shares are never NaN).
            values = float_column("product_popularity", np.fromiter(
                (shares.get(p, 0.0) for p in ids.to_list()), dtype=np.float64, count=rows.height))
        else:
            values = ids.replace_strict(shares, default=0.0, return_dtype=pl.Float64)
        # hstack, not with_columns: no query to plan (~0.3 ms on a request's few rows).
        if "product_popularity" in rows.columns:
            rows = rows.drop("product_popularity")
        return rows.hstack([values.alias("product_popularity")])


def popularity(products: pl.DataFrame) -> dict[str, float]:
    """Share of customers who bought each product, at the latest origin of ``products``: how
    likely any basket is to hold it (a favourite of many is bought again by many)."""
    if "as_of" in products.columns:
        products = products.filter(pl.col("as_of") == pl.col("as_of").max())
    customers = max(products.get_column("customer_id").n_unique(), 1)
    counts = products.group_by("product_id").agg(pl.col("customer_id").n_unique().alias("n"))
    return dict(zip(counts["product_id"].to_list(),
                    (counts["n"].cast(pl.Float64) / customers).to_list(), strict=True))


__all__ = ["FEATURES", "MAX_CANDIDATES", "DueProductRanker", "candidates"]
