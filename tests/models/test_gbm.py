"""The LightGBM estimators: churn, value and timing (one shared base, so one module)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from retain.models import _gbm
from retain.models._gbm import NOT_FEATURES, feature_columns, matrix
from retain.models.btyd import NotFittedError
from retain.models.churn import ChurnClassifier, _calibrated
from retain.models.timing import NextOrderRegressor
from retain.models.value import RevenueRegressor

FAST = {"n_estimators": 80, "learning_rate": 0.1}


def test_labels_and_ids_are_never_model_inputs(training_frame):
    columns = feature_columns(training_frame)
    assert not set(columns) & NOT_FEATURES
    assert "frequency" in columns and "btyd_p_alive" in columns


def test_churn_probabilities_are_calibrated_and_indexed_by_customer(training_frame):
    churned = ~training_frame["ordered_again"].to_numpy()
    model = ChurnClassifier(**FAST).fit(training_frame, churned)
    p = model.predict_churn_probability(training_frame)
    assert p.index.name == "customer_id" and len(p) == training_frame.height
    assert p.between(0, 1).all()
    assert abs(p.mean() - churned.mean()) < 0.02  # calibrated on average
    high, low = p.to_numpy() > 0.8, p.to_numpy() < 0.2
    assert churned[high].mean() > 0.7 and churned[low].mean() < 0.3


def test_calibration_shortcut_equals_sklearns_predict(training_frame):
    churned = ~training_frame["ordered_again"].to_numpy()
    model = ChurnClassifier(**FAST).fit(training_frame, churned)
    raw = np.random.default_rng(0).uniform(-0.1, 1.1, 5_000)  # out of bounds too: clipped
    assert np.array_equal(_calibrated(model.calibrator_, raw), model.calibrator_.predict(raw))


def test_small_frames_give_the_same_matrix_row_wise(training_frame):
    columns = [*feature_columns(training_frame), "not_a_column"]
    few = training_frame.head(_gbm._ROW_WISE_MAX_ROWS)
    assert few["interval_median"].null_count() > 0  # nulls become NaN on both paths
    column_wise = matrix(training_frame.head(_gbm._ROW_WISE_MAX_ROWS + 1), columns)[:-1]
    row_wise = matrix(few, columns)
    assert row_wise.dtype == np.float32 and np.isnan(row_wise[:, -1]).all()
    assert np.array_equal(row_wise, column_wise, equal_nan=True)
    assert matrix(few.head(0), columns).shape == (0, len(columns))


def test_revenue_predictions_are_non_negative_and_rank_spenders(training_frame):
    revenue = training_frame["revenue_h"].to_numpy()
    model = RevenueRegressor(**FAST).fit(training_frame, revenue)
    predicted = model.predict_revenue(training_frame).to_numpy()
    assert (predicted >= 0).all()
    top = predicted >= np.quantile(predicted, 0.9)
    assert revenue[top].mean() > 3 * revenue.mean()


def test_timing_quantiles_are_ordered(training_frame):
    days = training_frame["days_to_next_order"].cast(pl.Float64).to_numpy()
    out = NextOrderRegressor(**FAST).fit(training_frame, days).predict_days_to_next_order(training_frame)
    assert list(out.columns) == ["p10", "p50", "p90"]
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    known = ~np.isnan(days)
    inside = (days[known] >= out["p10"].to_numpy()[known]) & (days[known] <= out["p90"].to_numpy()[known])
    assert 0.6 < inside.mean() < 0.95


@pytest.mark.parametrize("model", [ChurnClassifier(), RevenueRegressor(), NextOrderRegressor()])
def test_predicting_before_fit_fails_loudly(model, training_frame):
    predict = next(getattr(model, name) for name in dir(model) if name.startswith("predict_"))
    with pytest.raises(NotFittedError, match="not been fit"):
        predict(training_frame)


def test_init_only_stores_parameters():
    assert vars(RevenueRegressor(tweedie_variance_power=1.5, num_leaves=15))["num_leaves"] == 15
    assert not any(name.endswith("_") for name in vars(ChurnClassifier()))
