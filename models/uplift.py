"""Offer uplift: how many extra orders a discount brings one customer, from past random offers.

A meta-learner on LightGBM (Kuenzel, Sekhon, Bickel and Yu, "Metalearners for estimating
heterogeneous treatment effects using machine learning", PNAS 2019):

* T-learner: one Poisson model of the orders in the window after a message with a discount,
  one after a message without; the uplift is their difference.
* X-learner (the default): the T-learner's two models impute each contact's own effect
  (observed orders minus the other arm's prediction), a second pair of models learns those
  effects, and the two are blended by the share of messages that carried a discount
  (equation (4) of the paper with a constant propensity, as the offers were assigned at random).
  It is steadier than the T-learner when one arm is much smaller than the other.

Calibration (``calibration="isotonic"``, the default): boosted effect models on a noisy
outcome stop early and stay near the average effect, so the raw uplift is shrunk, or, where a
few trees overfit, stretched; the decisions compare it with a discount's cost in money, so its
size matters, not only its order. The messages are cut into ``calibration_folds`` groups of
customers; a model fitted without each group predicts that group's uplift (cross-fitting: no
message judges its own prediction), the predictions are cut into bins, and in each bin the
observed difference between messages with and without a discount (orders minus the predicted
orders without one, which narrows the noise) is the bin's true uplift, as the discounts were
assigned at random. An isotonic fit of those differences on the bins' mean prediction maps a
raw uplift to a calibrated one (``calibration_in_``, ``calibration_out_``; linear between
points, flat beyond them), applied to the model fitted on all messages.

``fit(features, treated, orders)`` takes one row per past message (the customer's features as
of the message, ``training.uplift.offer_training_set``); ``predict(features)`` returns the
expected extra orders in ``window_days`` as a Series ``offer_uplift`` indexed by
``customer_id``; ``predict_arrays`` gives the uplift and the orders expected without a discount
as arrays, for the decisions.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import polars as pl

from retain.models._gbm import feature_columns, index, matrix, validation_mask
from retain.models.btyd import NotFittedError

__all__ = ["OfferUpliftModel"]

LEARNERS = ("t", "x")
CALIBRATIONS = ("isotonic", "none")


class OfferUpliftModel:
    """Expected extra orders in ``window_days`` from a discount, per customer (see module doc).

    Parameters
    ----------
    learner : "x" or "t"
        The meta-learner.
    window_days : int
        The outcome's window after a message; recorded for the decisions, which read the
        uplift as extra orders in that window.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM's; early stopping on
        a split of customers (``validation_fraction``) picks the number of trees.
    calibration : "isotonic" or "none"
        Map the raw uplift to the observed one on held-out messages (see module doc).
    calibration_folds, calibration_bins : the cross-fitting's groups of customers and the
        bins of predicted uplift (each needs messages with and without a discount).
    num_threads : int
        LightGBM's threads (0: all cores). One by default: these small trees on a few hundred
        thousand rows finish sooner alone than with OpenMP threads contending with other work
        (28,711 messages: 8 s on one thread against 104 s on all of a busy 2-core machine).
    """

    def __init__(
        self,
        learner: str = "x",
        window_days: int = 30,
        n_estimators: int = 300,
        learning_rate: float = 0.08,
        num_leaves: int = 15,
        min_child_samples: int = 200,
        validation_fraction: float = 0.2,
        early_stopping_rounds: int = 30,
        calibration: str = "isotonic",
        calibration_folds: int = 3,
        calibration_bins: int = 20,
        num_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.learner = learner
        self.window_days = window_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.calibration_bins = calibration_bins
        self.num_threads = num_threads
        self.random_state = random_state

    def fit(self, features: pl.DataFrame, treated: np.ndarray, orders: np.ndarray) -> OfferUpliftModel:
        """``features``: one row per past message, with ``customer_id``; ``treated``: the
        message carried a discount; ``orders``: orders in the window after it."""
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, not {self.learner!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, "
                             f"not {self.calibration!r}")
        treated = np.asarray(treated, dtype=bool)
        y = np.asarray(orders, dtype=float)
        if not features.height == len(treated) == len(y):
            raise ValueError(f"{features.height} feature rows, {len(treated)} treatment flags "
                             f"and {len(y)} outcomes")
        if treated.all() or not treated.any():
            raise ValueError("need messages both with and without a discount to learn its uplift")
        self.feature_names_ = feature_columns(features)
        X = matrix(features, self.feature_names_)
        valid = validation_mask(features["customer_id"], self.validation_fraction,
                                f"uplift{self.random_state}")
        self.treated_share_ = float(treated.mean())
        self.with_offer_ = self._boost(X[treated], y[treated], valid[treated], "poisson")
        self.without_offer_ = self._boost(X[~treated], y[~treated], valid[~treated], "poisson")
        self.effect_treated_: lgb.Booster | None = None
        self.effect_untreated_: lgb.Booster | None = None
        if self.learner == "x":
            # Each message's own effect, imputed with the other arm's model.
            imputed_treated = y[treated] - self.without_offer_.predict(X[treated])
            imputed_untreated = self.with_offer_.predict(X[~treated]) - y[~treated]
            self.effect_treated_ = self._boost(X[treated], imputed_treated, valid[treated],
                                               "regression")
            self.effect_untreated_ = self._boost(X[~treated], imputed_untreated,
                                                 valid[~treated], "regression")
        self.calibration_in_: np.ndarray | None = None
        self.calibration_out_: np.ndarray | None = None
        if self.calibration == "isotonic":
            self._calibrate(features, treated, y)
        return self

    def _calibrate(self, features: pl.DataFrame, treated: np.ndarray, y: np.ndarray) -> None:
        """Cross-fitted isotonic map from raw to observed uplift (see module doc)."""
        from sklearn.isotonic import IsotonicRegression

        fold = (features["customer_id"].cast(pl.String).hash(seed=self.random_state + 7)
                % max(self.calibration_folds, 2)).to_numpy()
        raw, base = np.zeros(len(y)), np.zeros(len(y))
        # The same settings, uncalibrated (sklearn's get_params, without depending on it).
        params = {name: getattr(self, name)
                  for name in inspect.signature(OfferUpliftModel.__init__).parameters
                  if name != "self"}
        for k in np.unique(fold):
            held = fold == k
            part = OfferUpliftModel(**{**params, "calibration": "none"}).fit(
                features.filter(pl.Series(~held)), treated[~held], y[~held])
            raw[held], base[held] = part.predict_arrays(features.filter(pl.Series(held)))
        residual = y - base
        self.heldout_qini_ = _observed_qini(raw, treated, residual)
        edges = np.unique(np.quantile(raw, np.linspace(0, 1, self.calibration_bins + 1)))
        bins = np.clip(np.searchsorted(edges, raw, side="right") - 1, 0, max(edges.size - 2, 0))
        count = np.bincount(bins, minlength=edges.size)
        with_offer = np.bincount(bins, treated, minlength=edges.size)
        keep = (with_offer > 0) & (count - with_offer > 0)
        if keep.sum() < 2:
            return  # too few messages to calibrate: the raw uplift stands
        mean_raw = np.bincount(bins, raw, minlength=edges.size)[keep] / count[keep]
        observed = (np.bincount(bins, residual * treated, minlength=edges.size)[keep]
                    / with_offer[keep]
                    - np.bincount(bins, residual * ~treated, minlength=edges.size)[keep]
                    / (count - with_offer)[keep])
        iso = IsotonicRegression(out_of_bounds="clip").fit(mean_raw, observed,
                                                           sample_weight=count[keep])
        self.calibration_in_ = mean_raw
        self.calibration_out_ = iso.predict(mean_raw)

    def _boost(self, X: np.ndarray, y: np.ndarray, valid: np.ndarray, objective: str) -> lgb.Booster:
        params: dict[str, Any] = {
            "objective": objective, "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
            "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8,
            "num_threads": self.num_threads, "seed": self.random_state, "verbosity": -1,
            "max_bin": 63,  # coarse bins: the effects are small against the noise
        }
        if valid.all() or not valid.any():
            valid = np.zeros(len(y), dtype=bool)
        train_set = lgb.Dataset(X[~valid], y[~valid], feature_name=self.feature_names_)
        valid_sets, callbacks = [], []
        if valid.any():
            valid_sets = [lgb.Dataset(X[valid], y[valid], reference=train_set)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        return lgb.train(params, train_set, num_boost_round=self.n_estimators,
                         valid_sets=valid_sets, callbacks=callbacks)

    def predict_arrays(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(uplift, baseline)`` in row order: the extra orders a discount brings in the
        window, and the orders expected in it without one."""
        if not hasattr(self, "feature_names_"):
            raise NotFittedError("Model has not been fit yet: call fit(features, treated, "
                                 "orders) first.")
        if features.height == 0:
            return np.zeros(0), np.zeros(0)
        X = matrix(features, self.feature_names_)
        baseline = self.without_offer_.predict(X, num_threads=self.num_threads)
        if self.effect_treated_ is None or self.effect_untreated_ is None:
            uplift = self.with_offer_.predict(X, num_threads=self.num_threads) - baseline
        else:
            share = self.treated_share_
            # Weight each arm's effect model by the other arm's share (the propensity).
            uplift = (share * self.effect_untreated_.predict(X, num_threads=self.num_threads)
                      + (1 - share) * self.effect_treated_.predict(X, num_threads=self.num_threads))
        if getattr(self, "calibration_in_", None) is not None:  # absent from older pickles
            # Isotonic steps tie many customers; a thousandth of the raw uplift keeps the raw
            # ranking inside a step (the Qini) without changing a size that matters.
            uplift = (np.interp(uplift, self.calibration_in_, self.calibration_out_)
                      + 1e-3 * uplift)
        return uplift, baseline

    def predict(self, features: pl.DataFrame) -> pd.Series:
        """Expected extra orders in ``window_days`` from a discount, indexed by customer_id."""
        return pd.Series(self.predict_arrays(features)[0], index=index(features),
                         name="offer_uplift")


def _observed_qini(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> float:
    """The held-out Qini area of a ranking on randomised messages, per message: the extra
    outcome of the top k by ``score`` (treated sum minus untreated sum scaled to as many
    treated), less the straight line of random targeting, averaged over k. Comparable between
    models on the same messages (for choosing settings), not between data sets."""
    order = np.argsort(-score, kind="stable")
    t, o = treated[order], outcome[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(o * t), np.cumsum(o * ~t)
    curve = y_t - y_c * n_t / np.maximum(n_c, 1)
    line = np.linspace(0.0, curve[-1], curve.size)
    return float((curve - line).mean() / curve.size)
