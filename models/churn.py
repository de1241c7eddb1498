"""Churn: the probability of no order in the next H days, from LightGBM, calibrated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
from sklearn.isotonic import IsotonicRegression

from retain.models._gbm import GBMEstimator, index

PROBABILITY_FLOOR = 0.005


class ChurnClassifier(GBMEstimator):
    """LightGBM binary classifier for "no order in the horizon", with isotonic calibration fit
    on a held-out split of customers (so the probabilities can be read as probabilities).

    ``fit(features, churned)``: ``features`` is a per-customer features frame (several as-of
    dates may be stacked), ``churned`` a boolean array. ``predict_churn_probability(features)``
    returns a Series indexed by ``customer_id``.
    """

    objective = "binary"

    def _init_score(self, features: pl.DataFrame) -> np.ndarray | None:
        if "btyd_p_no_order" not in features.columns:
            return None
        p = np.clip(features["btyd_p_no_order"].to_numpy(), 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    def fit(self, features: pl.DataFrame, churned: np.ndarray) -> ChurnClassifier:
        y = np.asarray(churned, dtype=float)
        self.booster_, valid = self._train(features, y)
        self.calibrator_: IsotonicRegression | None = None
        if valid.sum() >= 200 and 0 < y[valid].mean() < 1:
            raw = _sigmoid(self._raw_predict(self.booster_, features.filter(pl.Series(valid))))
            # Never 0 or 1: an isotonic step with no churner in the held-out split is not
            # a certainty, and one wrong "certain" customer costs log loss ~14.
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=PROBABILITY_FLOOR,
                                                  y_max=1 - PROBABILITY_FLOOR)
            self.calibrator_.fit(raw, y[valid])
        return self

    def predict_churn_probability(self, features: pl.DataFrame) -> pd.Series:
        return pd.Series(self.churn_probability(features), index=index(features),
                         name="churn_probability")

    def churn_probability(self, features: pl.DataFrame, X: np.ndarray | None = None) -> np.ndarray:
        """``predict_churn_probability`` as an array in row order (``X``: ``inputs(features)``
        if already built)."""
        p = _sigmoid(self._raw_predict(getattr(self, "booster_", None), features, X))
        if self.calibrator_ is not None:
            # Isotonic steps tie many customers; a sliver of the raw score keeps their order.
            p = np.clip(_calibrated(self.calibrator_, p) * (1 - 1e-6) + p * 1e-6, 0.0, 1.0)
        return p

    def _booster(self):
        return self.booster_


def _calibrated(calibrator: IsotonicRegression, p: np.ndarray) -> np.ndarray:
    """``calibrator.predict(p)`` (fitted with ``out_of_bounds="clip"``) without sklearn's input
    checks, which cost ~50 us a call: the same clip and linear interpolation between its
    thresholds."""
    clipped = np.clip(p, calibrator.X_min_, calibrator.X_max_)
    return np.interp(clipped, calibrator.X_thresholds_, calibrator.y_thresholds_)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
