"""Every model earns its place: the per-task choice, its verdicts, the short-history fallback
and the shops too small for any model."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from retain.features.samples import lifetimes_dataset_path
from retain.models.btyd import BTYD_KINDS, InsufficientHistoryError
from retain.training.backtest import (
    TrainConfig,
    apply_choice,
    choice_line,
    choose_models,
    fit_pipeline,
)
from retain.training.metrics import NEGLIGIBLE_DIFFERENCE, PairedDifference, paired_bootstrap
from tests.conftest import make_transactions

ORIGIN = date(2026, 1, 1)
FAST = TrainConfig(n_origins=2, n_estimators=40, learning_rate=0.2)


def backtest_frame(gbm_noise: float, n: int = 3000, seed: int = 1) -> pl.DataFrame:
    """A backtest frame as evaluate_pipeline builds it: a true churn propensity, BTYD reading it
    with some noise, LightGBM with ``gbm_noise`` more (0 = the same scores as BTYD's)."""
    rng = np.random.default_rng(seed)
    propensity = rng.normal(size=n)
    churned = rng.random(n) < 1 / (1 + np.exp(-2 * propensity))
    btyd = propensity + rng.normal(0, 1.0, n)
    revenue = np.where(churned, 0.0, rng.gamma(2, 50, n))
    spend = np.log1p(revenue) + rng.normal(0, 1.0, n)
    return pl.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "ordered_again": ~churned,
        "revenue_h": revenue,
        "days_to_next_order": pl.Series([None] * n, dtype=pl.Int64),
        "next_order_date": pl.Series([ORIGIN] * n),
        "median_interval_days": np.zeros(n),
        "recency_days": propensity + rng.normal(0, 3.0, n),  # a weak rule
        "bgnbd_p_no_order": 1 / (1 + np.exp(-btyd)),
        "pareto_p_no_order": 1 / (1 + np.exp(-(propensity + rng.normal(0, 1.5, n)))),
        "churn_probability": 1 / (1 + np.exp(-(btyd + rng.normal(0, gbm_noise, n)))),
        "formula_revenue": spend + rng.normal(0, 3.0, n),
        "bgnbd_gg_revenue": spend,
        "pareto_gg_revenue": spend + rng.normal(0, 2.0, n),
        "predicted_revenue": np.log1p(revenue) + rng.normal(0, 0.3, n),  # clearly better
    })


def test_a_gbm_within_noise_of_btyd_loses_to_it_and_the_verdict_is_a_tie():
    frame = backtest_frame(gbm_noise=0.05)
    choices = choose_models(frame, ORIGIN)
    churn = choices["churn"]
    assert churn.kind == "btyd" and churn.name == "bgnbd_p_no_order"
    assert churn.alternative == "gbm" and churn.verdict == "tie"
    assert churn.difference.lo <= 0 <= churn.difference.hi
    line = choice_line("churn", churn.as_dict())
    assert "-> tie" in line and "simpler model" in line and "better" not in line
    # Revenue: LightGBM is better beyond noise, so it is kept, and says so.
    value = choices["value"]
    assert value.kind == "gbm" and value.verdict == "better" and value.difference.lo > 0
    assert "-> better" in choice_line("value", value.as_dict())


def test_the_baseline_wins_when_nothing_beats_it_beyond_noise():
    frame = backtest_frame(gbm_noise=0.05).with_columns(
        pl.col("bgnbd_p_no_order").alias("recency_days"))  # the rule ranks as well as BTYD
    assert choose_models(frame, ORIGIN)["churn"].kind == "baseline"


def test_btyd_churn_by_expected_orders_competes_and_wins_when_it_ranks_better():
    frame = backtest_frame(gbm_noise=2.0)
    churned = ~frame["ordered_again"].to_numpy()
    # Fewer expected orders read the propensity better than BG/NBD's P(no order) does.
    better = frame["bgnbd_p_no_order"].to_numpy() + np.where(churned, 0.3, -0.3)
    frame = frame.with_columns(pl.Series("bgnbd_minus_expected_orders", better))
    churn = choose_models(frame, ORIGIN)["churn"]
    assert churn.kind == "btyd" and churn.name == "bgnbd_expected_orders"


def test_a_negligible_difference_is_a_tie_however_narrow():
    tiny = PairedDifference("spearman", 0.4417, 0.4417, -2e-6, -4e-6, -1e-6)
    assert tiny.verdict == "tie"
    assert PairedDifference("auc", 0.76, 0.762, -0.002, -0.003, -0.001).verdict == "worse"


def test_the_bootstrap_is_paired_and_reproducible():
    frame = backtest_frame(gbm_noise=0.05)
    churned = ~frame["ordered_again"].to_numpy()
    a, b = frame["bgnbd_p_no_order"].to_numpy(), frame["churn_probability"].to_numpy()
    first, again = paired_bootstrap("auc", churned, a, b), paired_bootstrap("auc", churned, a, b)
    assert first == again and first.lo < first.diff < first.hi
    same = paired_bootstrap("auc", churned, a, a)
    assert same.diff == same.lo == same.hi == 0 and same.verdict == "tie"


def test_scoring_uses_the_chosen_model(shop, shop_history):
    small = shop_history.filter(pl.col("customer_id").is_in(
        shop_history["customer_id"].unique().sort().head(1500).implode()))
    pipeline = fit_pipeline(small, shop.as_of, FAST, progress=lambda _: None)
    assert pipeline.eligible and pipeline.recency_rule is not None
    frame, products = pipeline.features(small, shop.as_of)
    gbm = pipeline.score_features(frame, products, shop.as_of)
    pipeline.choice = {"churn": "btyd", "value": "baseline", "timing": "baseline"}
    chosen = pipeline.score_features(frame, products, shop.as_of)
    assert chosen.columns == gbm.columns
    assert np.allclose(chosen["churn_probability"].to_numpy(), frame["btyd_p_no_order"].to_numpy())
    assert set(chosen["score_source"]) == {"btyd"}
    formula = (frame["aov"] * frame["orders"] / (frame["T"] + 1) * 90).to_numpy()
    assert np.allclose(chosen["predicted_revenue"].to_numpy(), formula)
    assert not np.allclose(gbm["predicted_revenue"].to_numpy(), formula)
    pipeline.choice = {"churn": "baseline"}
    rule = pipeline.score_features(frame, products, shop.as_of)["churn_probability"].to_numpy()
    days = frame["days_since_last_order"].to_numpy()
    assert rule.min() >= 0 and rule.max() <= 1
    assert (np.diff(rule[np.argsort(days, kind="stable")]) >= 0).all()  # ranks as the days


def cdnow_39_weeks() -> pl.DataFrame:
    """The first 39 weeks of CDNOW, read directly (the CLI's reader is tested elsewhere)."""
    raw = pl.read_csv(lifetimes_dataset_path("CDNOW_master.txt"), has_header=False, skip_rows=1,
                      new_columns=["line"])
    parts = raw.select(pl.col("line").str.strip_chars().str.extract_all(r"\S+").alias("f"))
    tx = parts.select(
        pl.col("f").list.get(0).alias("customer_id"),
        pl.format("{}-{}", pl.col("f").list.get(0), pl.int_range(pl.len())).alias("order_id"),
        pl.col("f").list.get(1).str.strptime(pl.Datetime("us"), "%Y%m%d").alias("ts"),
        pl.col("f").list.get(3).cast(pl.Float64).alias("amount"),
        pl.lit(None, pl.String).alias("product_id"),
        pl.col("f").list.get(2).cast(pl.Float64).alias("quantity"),
        pl.lit(None, pl.String).alias("channel"),
    )
    return tx.filter(pl.col("ts") < pl.datetime(1997, 10, 1))


def test_a_short_history_falls_back_to_the_btyd_kind_that_wins_its_holdout():
    """CDNOW's 39-week calibration with a 273-day horizon: no origin has a known outcome, so
    the probabilistic model scores, the kind chosen on a holdout inside the history (customers
    first buying on the last day no longer stop lifetimes)."""
    tx = cdnow_39_weeks()
    as_of = date(1997, 10, 1)
    pipeline = fit_pipeline(tx, as_of, TrainConfig(horizon_days=273), progress=lambda _: None)
    comparison = pipeline.btyd_comparison
    assert comparison["chosen"] in BTYD_KINDS and pipeline.btyd.model == comparison["chosen"]
    assert set(comparison["kinds"]) == set(BTYD_KINDS)
    best = max(comparison["kinds"].values(), key=lambda v: v["score"])
    assert comparison["kinds"][comparison["chosen"]] == best
    assert any("calibration/holdout" in note for note in pipeline.notes)
    assert {pipeline.chosen(t) for t in ("churn", "value")} == {"btyd"}
    scores = pipeline.score(tx, as_of)
    # Every customer with a purchase: 70 of CDNOW's have only $0 orders before the as-of date.
    assert scores.height == tx.filter(pl.col("amount") > 0)["customer_id"].n_unique()
    assert scores["p_alive"].is_between(0, 1).all() and scores["churn_probability"].is_between(0, 1).all()
    # Churn is ranked by whichever of P(no order) and expected orders won the chosen kind's
    # holdout; on CDNOW expected orders rank better for every kind.
    chosen = comparison["kinds"][comparison["chosen"]]
    assert chosen["auc"] == max(chosen["auc_p_no_order"], chosen["auc_expected_orders"])
    assert comparison["churn_score"] == "expected_orders" and pipeline.orders_churn is not None
    ranks = scores.select(pl.col("churn_probability").rank(), (-pl.col("expected_orders")).rank())
    assert ranks.to_series(0).equals(ranks.to_series(1), check_names=False)
    assert "churn ranked by expected orders" in comparison["summary"]


def test_a_backtest_choice_of_expected_orders_scores_them_as_probabilities(shop, shop_history):
    small = shop_history.filter(pl.col("customer_id").is_in(
        shop_history["customer_id"].unique().sort().head(1500).implode()))
    pipeline = fit_pipeline(small, shop.as_of, FAST, progress=lambda _: None)
    assert pipeline.eligible and pipeline.btyd.model == "bgnbd"
    choices = {"churn": {"kind": "btyd", "name": "pareto_expected_orders"}}
    apply_choice(pipeline, choices, small, shop.as_of, FAST)
    assert pipeline.btyd_variant.model == "pareto" and pipeline.orders_churn.kind == "pareto"
    scores = pipeline.score(small, shop.as_of)
    churn, orders = scores["churn_probability"].to_numpy(), scores["expected_orders"].to_numpy()
    assert ((churn > 0) & (churn < 1)).all()
    order = np.argsort(orders, kind="stable")
    assert (np.diff(churn[order]) <= 0).all()  # fewer expected orders, likelier to churn
    # One customer at a time scores the same: the map is fixed at training.
    one = small.filter(pl.col("customer_id") == scores["customer_id"][0])
    assert pipeline.score(one, shop.as_of)["churn_probability"][0] == pytest.approx(churn[0])


def one_line_shop() -> pl.DataFrame:
    return make_transactions([("c1", "o1", "2024-01-05", 10.0)])


def everyone_bought_once() -> pl.DataFrame:
    return make_transactions([(f"c{i}", f"o{i}", f"2024-0{1 + i % 6}-1{i % 9}", 10.0 + i)
                              for i in range(300)])


@pytest.mark.parametrize("shop_of", [one_line_shop, everyone_bought_once])
def test_a_shop_without_repeat_buyers_gets_one_clear_error(shop_of):
    tx = shop_of()
    as_of = tx["ts"].max().date() + timedelta(days=1)
    with pytest.raises(InsufficientHistoryError, match="repeat buyer") as caught:
        fit_pipeline(tx, as_of, FAST, progress=lambda _: None)
    assert "Singular" not in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)  # the CLI prints ValueErrors as one error: line




def test_nan_backtest_metrics_are_never_registered(tracking):
    from mlflow.exceptions import MlflowException

    from retain.models.registry import MODEL_NAME
    from retain.training.train import _register

    nan = {"auc": math.nan}
    metrics = {"churn": {"retain": nan}, "value": {"retain": {"spearman": math.nan}}}
    version, alias, reason = _register("runs:/none/model", "none", metrics, FAST, date(2024, 1, 1),
                                       {}, pl.DataFrame(), lambda _: None)
    assert (version, alias) == ("", "") and "NaN" in reason
    with pytest.raises(MlflowException):
        tracking.get_registered_model(MODEL_NAME)


def test_train_logs_the_choice_and_prints_verdicts(tracking, shop, shop_history):
    from retain.training.train import choice_lines, train

    small = shop_history.filter(pl.col("customer_id").is_in(
        shop_history["customer_id"].unique().sort().head(1500).implode()))
    said: list[str] = []
    result = train(small, shop.as_of, FAST, progress=said.append)
    run = tracking.get_run(result.run_id)
    for task in ("churn", "value", "timing"):
        assert run.data.params[f"choice.{task}"] == result.pipeline.chosen(task)
        for key in ("diff", "lo", "hi"):
            assert f"vs_baseline.{task}.{key}" in run.data.metrics
        verdict = run.data.tags[f"choice.{task}.verdict"]
        assert verdict in ("better", "tie", "worse")
        lo, hi = (run.data.metrics[f"vs_baseline.{task}.{k}"] for k in ("lo", "hi"))
        assert (verdict == "tie") == (lo <= 0 <= hi or max(abs(lo), abs(hi)) < NEGLIGIBLE_DIFFERENCE)
    lines = choice_lines(result.metrics, result.pipeline)
    assert len(lines) == 4 and all(line in " ".join(said) for line in lines)  # + due product
    assert all(math.isfinite(v) for v in run.data.metrics.values())
