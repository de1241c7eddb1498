"""LightGBM's single-row C API gives exactly Booster.predict's raw scores."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from retain.models import _lightgbm_rows
from retain.models._gbm import matrix
from retain.models.churn import ChurnClassifier
from retain.models.timing import NextOrderRegressor

FAST = {"n_estimators": 60, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def fitted(training_frame):
    churn = ChurnClassifier(**FAST).fit(training_frame, ~training_frame["ordered_again"].to_numpy())
    days = training_frame["days_to_next_order"].cast(float).to_numpy()
    timing = NextOrderRegressor(**FAST).fit(training_frame, days)
    return [churn.booster_, *timing.boosters_.values()]


def test_raw_scores_equal_booster_predict_row_by_row(fitted, training_frame):
    X = matrix(training_frame, fitted[0].feature_name())
    assert np.isnan(X).any()  # missing values take the trees' default branches on both paths
    for booster in fitted:
        assert booster.best_iteration > 0  # early-stopped: only the best iterations count
        expected = booster.predict(X[:2000], raw_score=True, num_threads=1)
        got = np.concatenate([_lightgbm_rows.raw_scores(booster, X[start:start + 50])
                              for start in range(0, 2000, 50)])
        np.testing.assert_array_equal(got, expected)


def test_column_major_and_float64_inputs_too(fitted, training_frame):
    X = matrix(training_frame.head(_lightgbm_rows.MAX_ROWS), fitted[0].feature_name())
    expected = fitted[0].predict(X, raw_score=True, num_threads=1)
    for variant in (np.asfortranarray(X), X[:0]):
        got = _lightgbm_rows.raw_scores(fitted[0], variant)
        np.testing.assert_array_equal(got, expected[:len(variant)])
    # float64 goes to Booster.predict, which compares it unrounded with the thresholds.
    wide = X.astype(np.float64) + 1e-9
    np.testing.assert_array_equal(_lightgbm_rows.raw_scores(fitted[0], wide),
                                  fitted[0].predict(wide, raw_score=True, num_threads=1))


def test_a_booster_keeping_more_than_its_best_iteration_goes_to_predict(training_frame):
    import lightgbm as lgb

    X = matrix(training_frame.head(500), ["frequency", "recency", "T"])
    y = training_frame.head(500)["orders"].cast(float).to_numpy()
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(X, y), num_boost_round=30, keep_training_booster=True)
    booster.best_iteration = 5
    assert booster.current_iteration() == 30
    few = X[:10]
    np.testing.assert_array_equal(_lightgbm_rows.raw_scores(booster, few),
                                  booster.predict(few, raw_score=True, num_threads=1))
    # Predicting with all iterations in between must not change what the best one gives.
    booster.predict(few, num_iteration=-1)
    np.testing.assert_array_equal(_lightgbm_rows.raw_scores(booster, few),
                                  booster.predict(few, raw_score=True, num_threads=1))


def test_an_unpickled_booster_predicts_the_same(fitted, training_frame):
    X = matrix(training_frame.head(10), fitted[0].feature_name())
    again = pickle.loads(pickle.dumps(fitted[0]))
    np.testing.assert_array_equal(_lightgbm_rows.raw_scores(again, X),
                                  _lightgbm_rows.raw_scores(fitted[0], X))


def test_when_the_c_api_refuses_it_falls_back_on_predict(fitted, training_frame, monkeypatch,
                                                          caplog):
    from lightgbm import basic

    X = matrix(training_frame.head(5), fitted[0].feature_name())
    expected = fitted[0].predict(X, raw_score=True, num_threads=1)
    fresh = pickle.loads(pickle.dumps(fitted[0]))
    monkeypatch.setattr(basic._LIB, "LGBM_BoosterPredictForMatSingleRowFastInit",
                        lambda *args: -1, raising=False)
    np.testing.assert_array_equal(_lightgbm_rows.raw_scores(fresh, X), expected)
    assert "unavailable" in caplog.text


def test_threads_sharing_one_booster_get_their_own_rows_scores(fitted, training_frame):
    from concurrent.futures import ThreadPoolExecutor

    X = matrix(training_frame.head(640), fitted[0].feature_name())
    expected = fitted[0].predict(X, raw_score=True, num_threads=1)
    chunks = [X[start:start + 64] for start in range(0, 640, 64)]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            got = np.concatenate(list(pool.map(
                lambda chunk: _lightgbm_rows.raw_scores(fitted[0], chunk), chunks)))
            np.testing.assert_array_equal(got, expected)
