"""Repurchase timing: days until the next order, with a p10-p90 range (LightGBM quantiles)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from retain.models._gbm import GBMEstimator, index

QUANTILES = (0.1, 0.5, 0.9)


class NextOrderRegressor(GBMEstimator):
    """Quantile regressors for the days from the as-of date to the next order, fitted on the
    customers who did order again within the label horizon (so predictions answer "when, if
    they come back"). ``predict_days_to_next_order`` -> frame ``p10, p50, p90`` by customer."""

    objective = "quantile"

    def fit(self, features: pl.DataFrame, days_to_next_order: np.ndarray) -> NextOrderRegressor:
        y = np.asarray(days_to_next_order, dtype=float)
        known = ~np.isnan(y)
        frame = features.filter(pl.Series(known))
        # log1p: intervals are skewed; quantiles are preserved by the monotone transform.
        target = np.log1p(y[known])
        self.boosters_ = {q: self._train(frame, target, alpha=q)[0] for q in QUANTILES}
        return self

    def predict_days_to_next_order(self, features: pl.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.days_to_next_order(features), index=index(features),
                            columns=[f"p{int(q * 100)}" for q in QUANTILES])

    def days_to_next_order(self, features: pl.DataFrame, X: np.ndarray | None = None) -> np.ndarray:
        """``predict_days_to_next_order`` as an array, one row per customer and one column per
        quantile (``X``: ``inputs(features)`` if already built)."""
        boosters = getattr(self, "boosters_", {})
        days = np.column_stack([np.expm1(self._raw_predict(boosters.get(q), features, X))
                                for q in QUANTILES])
        # Quantile models are fitted apart; sort each row so p10 <= p50 <= p90 always holds.
        return np.sort(np.maximum(days, 0.0), axis=1)

    def _booster(self):
        return self.boosters_[0.5]
