"""Rolling-origin training frames, pipeline fitting and the backtest against baselines.

Origins are as-of dates whose horizon outcome is known: for training at ``as_of`` they are
``as_of - H - k * step`` (k = 0, 1, ...), each using only data before itself. The backtest
refits everything at ``as_of - H`` (from origins whose outcome ends by then) and scores the
horizon ``[as_of - H, as_of)``, which no part of it has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from features.customers import customer_features_lazy, observed_channels, rfm_summary
from features.labels import labels_lazy
from features.orders import Frame, bought_line, orders, window
from models.btyd import BTYDModel
from models.churn import ChurnClassifier
from models.pipeline import ScoringPipeline, with_btyd
from models.timing import NextOrderRegressor
from models.value import RevenueRegressor
from training.metrics import churn_metrics, timing_metrics, value_metrics

log = logging.getLogger(__name__)

MIN_REPEAT_BUYERS = 500
MIN_HISTORY_DAYS = 180
MIN_ORIGIN_HISTORY_DAYS = 60
RECENCY_RULES = (30, 60, 90)


@dataclass
class TrainConfig:
    horizon_days: int = 90
    n_origins: int = 4
    origin_step_days: int = 30
    max_train_rows: int = 600_000
    n_estimators: int = 600
    learning_rate: float = 0.05
    num_leaves: int = 31
    annual_discount_rate: float = 0.10
    random_state: int = 0


@dataclass
class Eligibility:
    repeat_buyers: int
    history_days: int
    eligible: bool
    reasons: list[str] = field(default_factory=list)


def check_eligibility(transactions: Frame, as_of: date) -> Eligibility:
    """Enough repeat buyers and history for the LightGBM models? Otherwise the probabilistic
    model alone is used, with a warning."""
    rfm = rfm_summary(transactions, as_of)
    repeat = int((rfm["frequency"] > 0).sum())
    history = int(rfm["T"].max() + 1) if rfm.height else 0
    reasons = []
    if repeat < MIN_REPEAT_BUYERS:
        reasons.append(f"only {repeat} repeat buyers (need {MIN_REPEAT_BUYERS})")
    if history < MIN_HISTORY_DAYS:
        reasons.append(f"only {history} days of history (need {MIN_HISTORY_DAYS})")
    return Eligibility(repeat, history, not reasons, reasons)


def training_origins(transactions: Frame, as_of: date, config: TrainConfig) -> list[date]:
    """Origins whose horizon ends by ``as_of`` and that have some history before them."""
    first = transactions.lazy().select(pl.col("ts").min()).collect().item().date()
    candidates = [as_of - timedelta(days=config.horizon_days + k * config.origin_step_days)
                  for k in range(config.n_origins)]
    return [o for o in candidates if (o - first).days >= MIN_ORIGIN_HISTORY_DAYS]


# Pareto/NBD's likelihood is far slower than BG/NBD's; as a baseline a smaller sample will do.
MAX_FIT_CUSTOMERS = {"bgnbd": 200_000, "pareto": 50_000}


def fit_btyd(transactions: Frame, as_of: date, config: TrainConfig, model: str = "bgnbd") -> BTYDModel:
    return btyd_model(config, model).fit(rfm_summary(transactions, as_of))


def btyd_model(config: TrainConfig, model: str = "bgnbd") -> BTYDModel:
    return BTYDModel(model=model, annual_discount_rate=config.annual_discount_rate,  # type: ignore[arg-type]
                     max_fit_customers=MAX_FIT_CUSTOMERS[model], random_state=config.random_state)


def origin_frame(transactions: Frame, origin: date, channels: Sequence[str], config: TrainConfig) -> pl.DataFrame:
    """Features, BTYD outputs (fitted at the origin) and horizon labels at one origin."""
    features, outcome = pl.collect_all([
        customer_features_lazy(transactions, origin, channels),
        labels_lazy(transactions, origin, config.horizon_days),
    ])
    # The features already hold the RFM summary (identical to rfm_summary, tested): no rebuild.
    btyd = btyd_model(config).fit(features)
    return with_btyd(features, btyd, config.horizon_days, origin).join(
        outcome, on="customer_id", how="left"
    ).with_columns(pl.lit(origin).alias("as_of"))


def stacked_frame(transactions: Frame, origins: Sequence[date], channels: Sequence[str],
                  config: TrainConfig, progress: Callable[[str], None] = log.info) -> pl.DataFrame:
    frames = []
    for origin in origins:
        progress(f"features and labels at origin {origin}")
        frames.append(origin_frame(transactions, origin, channels, config))
    stacked = pl.concat(frames, how="diagonal_relaxed")
    if stacked.height > config.max_train_rows:
        stacked = stacked.sample(config.max_train_rows, seed=config.random_state)
    return stacked


def fit_pipeline(transactions: Frame, as_of: date, config: TrainConfig,
                 progress: Callable[[str], None] = log.info) -> ScoringPipeline:
    """Fit every part with data strictly before ``as_of``; ready to score at ``as_of``."""
    window = transactions.lazy().filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    history = window.collect()
    channels = observed_channels(history)
    progress(f"probabilistic model at {as_of}")
    pipeline = ScoringPipeline(horizon_days=config.horizon_days, channels=channels,
                               btyd=fit_btyd(history, as_of, config), trained_as_of=as_of)
    eligibility = check_eligibility(history, as_of)
    origins = training_origins(history, as_of, config)
    if not eligibility.eligible or not origins:
        reasons = eligibility.reasons or ["no origin with a known outcome before the as-of date"]
        pipeline.notes.append("probabilistic fallback only: " + "; ".join(reasons))
        return pipeline
    stacked = stacked_frame(history, origins, channels, config, progress)
    gbm = {"n_estimators": config.n_estimators, "learning_rate": config.learning_rate,
           "num_leaves": config.num_leaves, "random_state": config.random_state}
    progress(f"churn model on {stacked.height:,} rows from {len(origins)} origins")
    pipeline.churn = ChurnClassifier(**gbm).fit(stacked, ~stacked["ordered_again"].to_numpy())
    progress("revenue model")
    pipeline.value = RevenueRegressor(**gbm).fit(stacked, stacked["revenue_h"].to_numpy())
    progress("timing model")
    days = stacked["days_to_next_order"].cast(pl.Float64).to_numpy()
    pipeline.timing = NextOrderRegressor(**gbm).fit(stacked, days)
    return pipeline


def baseline_scores(frame: pl.DataFrame, products: pl.DataFrame, transactions: Frame,
                    as_of: date, config: TrainConfig) -> pl.DataFrame:
    """The heuristics marketers use today, and the classic probabilistic models."""
    h = config.horizon_days
    pareto = fit_btyd(transactions, as_of, config, model="pareto").predict(frame, h)
    own = (frame["interval_median"] - frame["days_since_last_order"]).clip(lower_bound=0)
    shop_interval = frame["interval_median"].median() or float(h)
    tenure = (frame["T"] + 1).clip(lower_bound=1)
    top_product = frame.select("customer_id", pl.col("top_product_id").alias("top_product"))
    return frame.select(
        "customer_id",
        *[(pl.col("days_since_last_order") >= k).cast(pl.Float64).alias(f"recency_{k}d")
          for k in RECENCY_RULES],
        pl.col("days_since_last_order").alias("recency_days"),
        pl.col("btyd_p_no_order").alias("bgnbd_p_no_order"),
        (-pl.col("btyd_expected_orders")).alias("bgnbd_minus_expected_orders"),
        pl.Series("pareto_p_no_order", pareto["p_no_order"].to_numpy()),
        pl.col("btyd_expected_revenue").alias("bgnbd_gg_revenue"),
        pl.Series("pareto_gg_revenue", pareto["expected_revenue"].to_numpy()),
        # The marketer's formula: AOV x purchase frequency x lifetime (here the horizon).
        (pl.col("aov") * pl.col("orders") / tenure * h).alias("formula_revenue"),
        own.fill_null(shop_interval).alias("median_interval_days"),
    ).join(top_product, on="customer_id")


CHURN_BASELINES = {
    "recency_30d": "recency_30d", "recency_60d": "recency_60d", "recency_90d": "recency_90d",
    "recency_days": "recency_days", "bgnbd_p_no_order": "bgnbd_p_no_order",
    "bgnbd_expected_orders": "bgnbd_minus_expected_orders", "pareto_p_no_order": "pareto_p_no_order",
}
VALUE_BASELINES = ("bgnbd_gg_revenue", "pareto_gg_revenue", "formula_revenue")


def evaluate_pipeline(pipeline: ScoringPipeline, transactions: Frame, origin: date,
                      config: TrainConfig, with_baselines: bool = True) -> tuple[dict, pl.DataFrame]:
    """Score at ``origin`` and compare with what happened in the horizon after it.

    Returns nested metrics ``{task: {model: {metric: value}}}`` and the per-customer frame
    (scores, baselines and outcomes) for plots.
    """
    features, products = pipeline.features(transactions, origin)
    scores = pipeline.score_features(features, products, origin)
    outcome = labels_lazy(transactions, origin, config.horizon_days).collect().join(
        next_basket(transactions, origin, config.horizon_days), on="customer_id", how="left")
    frame = scores.join(outcome, on="customer_id", how="left")
    if with_baselines:
        frame = frame.join(baseline_scores(features, products, transactions, origin, config),
                           on="customer_id", how="left")
    return score_metrics(frame, with_baselines, origin), frame


def score_metrics(frame: pl.DataFrame, with_baselines: bool, origin: date) -> dict:
    churned = (~frame["ordered_again"]).to_numpy()
    revenue = frame["revenue_h"].to_numpy()
    days = frame["days_to_next_order"].cast(pl.Float64).to_numpy()
    as_days = {c: frame.select((pl.col(c) - pl.lit(origin)).dt.total_days().cast(pl.Float64))
               .to_series().to_numpy() for c in ("next_order_date", "next_order_p10", "next_order_p90")}
    due = frame.filter(pl.col("due_product_id").is_not_null() & pl.col("next_basket").is_not_null())
    metrics: dict[str, dict[str, dict[str, float]]] = {
        "churn": {"retain": churn_metrics(churned, frame["churn_probability"].to_numpy())},
        "value": {"retain": value_metrics(revenue, frame["predicted_revenue"].to_numpy())},
        "timing": {"retain": timing_metrics(days, as_days["next_order_date"],
                                            as_days["next_order_p10"], as_days["next_order_p90"])},
        "due_product": {"retain": {"hit_rate": _hit_rate(due, "due_product_id"),
                                   "customers": float(due.height)}},
    }
    if with_baselines:
        for name, column in CHURN_BASELINES.items():
            probabilistic = column.endswith("p_no_order")
            metrics["churn"][name] = churn_metrics(churned, frame[column].to_numpy(),
                                                   probabilities=probabilistic)
        for name in VALUE_BASELINES:
            metrics["value"][name] = value_metrics(revenue, frame[name].fill_null(0).to_numpy())
        metrics["timing"]["median_interval"] = timing_metrics(days, frame["median_interval_days"].to_numpy())
        metrics["due_product"]["top_product"] = {"hit_rate": _hit_rate(due, "top_product"),
                                                 "customers": float(due.height)}
    return metrics


def _hit_rate(frame: pl.DataFrame, column: str) -> float:
    """Share of customers whose next order holds the product named in ``column``."""
    if frame.height == 0:
        return float("nan")
    return float(frame.select(pl.col("next_basket").list.contains(pl.col(column)).mean()).item())


def next_basket(transactions: Frame, origin: date, horizon_days: int) -> pl.DataFrame:
    """``customer_id, next_basket``: the products of each customer's first order in the horizon."""
    lines = window(transactions, origin, origin + timedelta(days=horizon_days))
    first = (orders(lines).filter("is_purchase").sort("ts").group_by("customer_id")
             .first().select("customer_id", "order_id"))
    return (lines.filter(bought_line() & pl.col("product_id").is_not_null())
            .join(first, on=["customer_id", "order_id"])
            .group_by("customer_id").agg(pl.col("product_id").unique().alias("next_basket"))
            .collect())


def best_baseline(metrics: dict, task: str, metric: str, higher_is_better: bool = True) -> tuple[str, float]:
    candidates = {k: v[metric] for k, v in metrics[task].items() if k != "retain" and metric in v}
    pick = max if higher_is_better else min
    name = pick(candidates, key=lambda k: candidates[k])
    return name, candidates[name]


def backtest(transactions: Frame, as_of: date, config: TrainConfig,
             progress: Callable[[str], None] = log.info) -> tuple[dict, pl.DataFrame, ScoringPipeline]:
    """Refit at ``as_of - H`` and evaluate on ``[as_of - H, as_of)`` beside the baselines."""
    origin = as_of - timedelta(days=config.horizon_days)
    progress(f"backtest: fitting at {origin}")
    pipeline = fit_pipeline(transactions, origin, config, progress)
    progress(f"backtest: scoring the horizon {origin} .. {as_of - timedelta(days=1)}")
    window = transactions.lazy().filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    metrics, frame = evaluate_pipeline(pipeline, window.collect(), origin, config)
    return metrics, frame, pipeline


def summary_line(metrics: dict) -> str:
    churn = metrics["churn"]["retain"].get("auc", np.nan)
    value = metrics["value"]["retain"].get("spearman", np.nan)
    return f"churn AUC {churn:.3f}, revenue Spearman {value:.3f}"
