"""Value: revenue in the next H days, from a LightGBM Tweedie regressor (most customers spend
nothing in a horizon; Tweedie models that mass at zero and the skewed rest)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from retain.models._gbm import GBMEstimator, index


class RevenueRegressor(GBMEstimator):
    """``fit(features, revenue)``; ``predict_revenue(features)`` -> Series by ``customer_id``.
    Negative revenue (net refunds) is treated as zero."""

    objective = "tweedie"

    def __init__(self, tweedie_variance_power: float = 1.3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tweedie_variance_power = tweedie_variance_power

    def _init_score(self, features: pl.DataFrame) -> np.ndarray | None:
        if "btyd_expected_revenue" not in features.columns:
            return None
        # Tweedie's log link; the floor keeps near-zero expectations from dominating.
        return np.log(np.clip(features["btyd_expected_revenue"].to_numpy(), 1.0, None))

    def fit(self, features: pl.DataFrame, revenue: np.ndarray) -> RevenueRegressor:
        y = np.clip(np.asarray(revenue, dtype=float), 0, None)
        self.booster_, _ = self._train(features, y, tweedie_variance_power=self.tweedie_variance_power)
        return self

    def predict_revenue(self, features: pl.DataFrame) -> pd.Series:
        return pd.Series(self.revenue(features), index=index(features), name="predicted_revenue")

    def revenue(self, features: pl.DataFrame, X: np.ndarray | None = None) -> np.ndarray:
        """``predict_revenue`` as an array in row order (``X``: ``inputs(features)`` if
        already built)."""
        return np.exp(self._raw_predict(getattr(self, "booster_", None), features, X))

    def _booster(self):
        return self.booster_
