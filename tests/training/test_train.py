"""retain train end to end against a real (embedded SQLite) MLflow tracking server and registry."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest

from retain.models.btyd import InsufficientHistoryError
from retain.models.registry import MODEL_NAME, load_registered
from retain.training.backtest import TrainConfig
from retain.training.train import data_fingerprint, train

FAST = TrainConfig(n_origins=2, n_estimators=60, learning_rate=0.15)




def quiet(_: str) -> None:
    pass


def test_train_logs_everything_and_the_first_version_is_champion(tracking, shop, shop_history):
    result = train(shop_history, shop.as_of, FAST, progress=quiet)
    assert (result.version, result.alias) == ("1", "champion")
    run = tracking.get_run(result.run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    for name in ("auc", "pr_auc", "log_loss", "brier"):
        assert f"backtest.churn.retain.{name}" in metrics
    for name in ("mae", "rmse", "spearman", "gini", "top_decile_capture"):
        assert f"backtest.value.retain.{name}" in metrics
    assert "backtest.churn.recency_90d.auc" in metrics and "backtest.value.formula_revenue.spearman" in metrics
    assert "backtest.timing.retain.mae_days" in metrics and "backtest.timing.median_interval.mae_days" in metrics
    assert params["horizon_days"] == "90" and params["as_of"] == str(shop.as_of)
    assert tags["data.rows"] == str(shop_history.height) and len(tags["git_commit"]) >= 7
    artifacts = {a.path for a in tracking.list_artifacts(result.run_id, "plots")}
    assert {"plots/reliability.png", "plots/gains.png", "plots/predicted_vs_actual.png",
            "plots/feature_importance.png", "plots/backtest_points.json"} <= artifacts
    assert str(tracking.get_model_version_by_alias(MODEL_NAME, "champion").version) == "1"
    # The due product: the ranker against the most bought product, judged and logged like a task.
    due = result.metrics["choices"]["due_product"]
    assert params["choice.due_product"] == due["kind"] in ("gbm", "baseline")
    assert tags["choice.due_product.verdict"] == due["verdict"] in ("better", "tie", "worse")
    assert due["lo"] <= due["diff"] <= due["hi"] and due["customers"] > 100
    assert (result.pipeline.due_product is not None) == (due["kind"] == "gbm")
    assert metrics["backtest.due_product.retain.hit_rate"] == pytest.approx(due["value"])
    assert metrics["vs_baseline.due_product.diff"] == pytest.approx(due["diff"])


def test_registered_pyfunc_scores_raw_transactions_like_the_pipeline(tracking, shop, shop_history):
    result = train(shop_history, shop.as_of, FAST, progress=quiet)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    assert model.metadata.signature is not None and model.metadata.signature.params is not None
    some = shop_history.filter(shop_history["customer_id"].is_in(shop_history["customer_id"].unique().head(50).implode()))
    via_mlflow = model.predict(some.to_pandas(), params={"as_of": str(shop.as_of)})
    direct = result.pipeline.score(some, shop.as_of).to_pandas()
    assert list(via_mlflow.columns) == list(direct.columns)
    np.testing.assert_allclose(via_mlflow["churn_probability"], direct["churn_probability"], atol=1e-9)
    np.testing.assert_allclose(via_mlflow["predicted_revenue"], direct["predicted_revenue"], atol=1e-9)
    registered = load_registered()
    assert registered.version == result.version
    # Trained and loaded in one environment: every pin of the logged model holds.
    assert registered.environment_notes == []

    # The README's snippet in a fresh process, on `retain simulate`'s own Parquet (integer
    # quantities) and on a file with only the required contract columns.
    ids = shop.transactions["customer_id"].unique().sort().head(20).implode()
    raw = shop.transactions.filter(pl.col("customer_id").is_in(ids))
    assert raw["quantity"].dtype.is_integer()
    raw.write_parquet(Path.cwd() / "simulated.parquet")
    raw.select("customer_id", "ts", "amount").write_parquet(Path.cwd() / "required.parquet")
    snippet = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/retain@champion')\n"
        "for name in sys.argv[2:]:\n"
        "    scores = model.predict(pd.read_parquet(name), params={'as_of': sys.argv[1]})\n"
        "    print(name, len(scores), scores['churn_probability'].between(0, 1).all())\n"
    )
    done = subprocess.run([sys.executable, "-c", snippet, str(shop.as_of), "simulated.parquet",
                           "required.parquet"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["simulated.parquet", "20", "True", "required.parquet", "20", "True"]


def test_same_data_same_recipe_stays_challenger_newer_data_becomes_champion(tracking, shop, shop_history):
    first = train(shop_history, shop.as_of, FAST, progress=quiet)
    again = train(shop_history, shop.as_of, FAST, progress=quiet)
    assert again.alias == "challenger" and "same recipe and same data" in again.reason
    assert str(tracking.get_model_version_by_alias(MODEL_NAME, "champion").version) == first.version
    later = shop.as_of + timedelta(days=30)
    newer = train(shop_history, later, FAST, progress=quiet)
    assert newer.alias == "champion" and "newer data" in newer.reason
    decision = tracking.get_model_version(MODEL_NAME, again.version).tags["alias_decision"]
    assert "same recipe" in decision
    # Another log at the champion's date is not "older": it is different, and said so.
    other = train(shop_history.with_columns(pl.col("amount") * 2), later, FAST, progress=quiet)
    assert other.alias == "challenger" and "on different data" in other.reason
    assert f"as-of date ({later})" in other.reason and "retain promote" in other.reason
    older = train(shop_history, shop.as_of, FAST, progress=quiet)
    assert older.alias == "challenger"
    assert f"on older data ({shop.as_of} < {later})" in older.reason


def test_a_different_recipe_is_judged_on_the_same_backtest(tracking, shop, shop_history):
    train(shop_history, shop.as_of, FAST, progress=quiet)
    weak = TrainConfig(n_origins=2, n_estimators=10, learning_rate=0.01)
    result = train(shop_history, shop.as_of, weak, progress=quiet)
    assert "on the same backtest" in result.reason
    assert (result.alias == "champion") == ("beats" in result.reason)


def test_fingerprint_ignores_row_order_but_not_content(shop_history):
    a = data_fingerprint(shop_history)
    b = data_fingerprint(shop_history.reverse())
    c = data_fingerprint(shop_history.with_columns(shop_history["amount"] + 1))
    assert a == b and a["sha256_16"] != c["sha256_16"]


def test_fit_chosen_pipeline_scores_with_what_the_backtest_chose(shop, shop_history):
    """What ``retain train`` and ``make results`` both fit: the backtest's choice applied to
    the final fit, the due product chosen too, and a progress line per task."""
    from retain.training.train import choice_lines, fit_chosen_pipeline

    small = shop_history.filter(pl.col("customer_id").is_in(
        shop_history["customer_id"].unique().sort().head(1500).implode()))
    said: list[str] = []
    pipeline, metrics, frame = fit_chosen_pipeline(small, shop.as_of, FAST, progress=said.append)
    assert frame.height > 0 and pipeline.trained_as_of == shop.as_of
    assert set(metrics["choices"]) == {"churn", "value", "timing", "due_product"}
    for task in ("churn", "value", "timing"):
        assert pipeline.chosen(task) == metrics["choices"][task]["kind"]
    assert [f"model for {line}" for line in choice_lines(metrics, pipeline)] == [
        line for line in said if line.startswith("model for ")]
    # Scoring follows the churn choice: a btyd choice is not LightGBM's probability.
    scores = pipeline.score(small, shop.as_of)
    sources = set(scores["score_source"])
    assert sources <= ({"gbm", "gbm_one_order"} if pipeline.chosen("churn") == "gbm"
                       else {pipeline.chosen("churn")})


def test_an_as_of_date_long_after_the_last_line_is_one_error_before_any_work(tracking, shop,
                                                                            shop_history):
    """CDNOW at 2000-07-01: every outcome in the horizon was "no order", and LightGBM's
    revenue model stopped the run with an internal error ("sum of labels is zero")."""
    last = shop_history["ts"].max().date()
    far = last + timedelta(days=731)
    with pytest.raises(InsufficientHistoryError) as err:
        train(shop_history, far, FAST, progress=quiet)
    assert str(err.value).startswith(
        f"no line in the 90 days before the as-of date {far} (the last is dated {last}, "
        "731 days before): no outcome to fit or judge a model on.")
    assert not tracking.search_registered_models()  # refused before anything was logged
