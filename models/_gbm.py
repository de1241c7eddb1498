"""What the LightGBM estimators share: the feature matrix, a customer-level validation split,
and early stopping."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import polars as pl

from retain.models._lightgbm_rows import raw_scores
from retain.models.btyd import NotFittedError

# Identifiers, dates, text and outcomes are never model inputs.
NOT_FEATURES = frozenset({
    "customer_id", "as_of", "first_purchase", "last_purchase", "top_product_id", "top_channel",
    "ordered_again", "orders_h", "revenue_h", "days_to_next_order", "next_product_id",
})


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """Numeric and boolean columns that may be model inputs, in frame order."""
    return [
        name for name, dtype in frame.schema.items()
        if name not in NOT_FEATURES and (dtype.is_numeric() or dtype == pl.Boolean)
    ]


def matrix(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """float32 matrix in ``columns`` order; a column the frame lacks is all-missing."""
    if frame.height <= _ROW_WISE_MAX_ROWS:
        return _matrix_from_rows(frame, columns)
    # Column by column: Series casts run at once, a frame-wide select is planned first (about
    # 0.5 ms on a one-row frame). Column-major, as LightGBM reads it without a copy.
    out = np.full((frame.height, len(columns)), np.nan, dtype=np.float32, order="F")
    present = set(frame.columns)
    for i, name in enumerate(columns):
        if name in present:
            out[:, i] = frame.get_column(name).cast(pl.Float32).to_numpy()
    return out


# A few rows (the API's requests) are read as Python tuples: ~10 us for one customer against
# ~130 us for one polars cast per column.
_ROW_WISE_MAX_ROWS = 64


def _matrix_from_rows(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    position = {name: i for i, name in enumerate(frame.columns)}
    where = [position.get(name) for name in columns]
    nan = math.nan
    return np.array(
        [[nan if i is None or row[i] is None else row[i] for i in where] for row in frame.rows()],
        dtype=np.float32,
    ).reshape(frame.height, len(columns))


def validation_mask(customer_ids: pl.Series, fraction: float, salt: str) -> np.ndarray:
    """A stable pseudo-random split by customer, so one customer's stacked rows stay together."""
    digest = customer_ids.cast(pl.String).hash(seed=int(hashlib.md5(salt.encode()).hexdigest()[:8], 16))
    return ((digest % 10_000).to_numpy() < fraction * 10_000)


class GBMEstimator:
    """Base for the LightGBM estimators: ``fit(frame, y)`` on a features frame with
    ``customer_id``; predictions are indexed by ``customer_id``."""

    objective: str = "regression"

    def __init__(
        self,
        n_estimators: int = 600,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        validation_fraction: float = 0.2,
        early_stopping_rounds: int = 40,
        num_threads: int = 0,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads
        self.random_state = random_state

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {
            "objective": self.objective, "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
            "subsample": self.subsample, "subsample_freq": 1,
            "colsample_bytree": self.colsample_bytree, "num_threads": self.num_threads,
            "seed": self.random_state, "verbosity": -1, **extra,
        }

    def _init_score(self, frame: pl.DataFrame) -> np.ndarray | None:
        """Where to start boosting from, in the objective's raw (link) scale; None = from a
        constant. Subclasses start from the probabilistic model, so the trees learn what it
        misses and early stopping keeps them from undoing what it gets right."""
        return None

    def _train(self, frame: pl.DataFrame, y: np.ndarray, **extra: Any) -> tuple[lgb.Booster, np.ndarray]:
        """Fit with early stopping on a customer split; returns the booster and the
        validation mask (for calibration)."""
        if frame.height != len(y):
            raise ValueError(f"{frame.height} feature rows but {len(y)} targets")
        self.feature_names_ = feature_columns(frame)
        X = matrix(frame, self.feature_names_)
        init = self._init_score(frame)
        valid = validation_mask(frame["customer_id"], self.validation_fraction, str(self.random_state))
        if valid.all() or not valid.any():
            valid = np.zeros(len(y), dtype=bool)
        train_set = lgb.Dataset(X[~valid], y[~valid], feature_name=self.feature_names_,
                                init_score=None if init is None else init[~valid], free_raw_data=True)
        callbacks = []
        valid_sets = []
        if valid.any():
            valid_sets = [lgb.Dataset(X[valid], y[valid], reference=train_set,
                                      init_score=None if init is None else init[valid])]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        booster = lgb.train(self._params(**extra), train_set, num_boost_round=self.n_estimators,
                            valid_sets=valid_sets, callbacks=callbacks)
        return booster, valid

    def inputs(self, frame: pl.DataFrame) -> np.ndarray:
        """The model's input matrix of ``frame`` (its feature columns, float32)."""
        if not hasattr(self, "feature_names_"):
            raise NotFittedError("Model has not been fit yet: call fit(features, y) first.")
        return matrix(frame, self.feature_names_)

    def _raw_predict(self, booster: lgb.Booster | None, frame: pl.DataFrame,
                     X: np.ndarray | None = None) -> np.ndarray:
        """Predictions in the raw (link) scale, including the initial score. ``X``: the
        frame's ``inputs`` when the caller has them already (models sharing features)."""
        if booster is None or not hasattr(self, "feature_names_"):
            raise NotFittedError("Model has not been fit yet: call fit(features, y) first.")
        if X is None:
            X = matrix(frame, self.feature_names_)
        if len(X) < 5_000:
            # One thread for small batches: OpenMP start-up stalls tiny predictions on busy
            # cores.
            raw = raw_scores(booster, X)
        else:
            raw = booster.predict(X, raw_score=True, num_threads=self.num_threads)
        init = self._init_score(frame)
        return raw if init is None else raw + init

    def feature_importance(self) -> pd.Series:
        booster = self._booster()
        gain = booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_, name="gain").sort_values(ascending=False)

    def _booster(self) -> lgb.Booster:
        raise NotImplementedError


def index(frame: pl.DataFrame) -> pd.Index:
    return pd.Index(frame["customer_id"].to_list(), name="customer_id")
