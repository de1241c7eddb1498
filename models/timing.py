"""Repurchase timing: days until the next order, with a p10-p90 range (LightGBM quantiles)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from models._gbm import GBMEstimator, index

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
        boosters = getattr(self, "boosters_", {})
        raw = {f"p{int(q * 100)}": np.expm1(self._raw_predict(boosters.get(q), features))
               for q in QUANTILES}
        out = pd.DataFrame(raw, index=index(features)).clip(lower=0)
        # Quantile models are fitted apart; sort each row so p10 <= p50 <= p90 always holds.
        out[:] = np.sort(out.to_numpy(), axis=1)
        return out

    def _booster(self):
        return self.boosters_[0.5]
