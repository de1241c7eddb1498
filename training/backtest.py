"""Rolling-origin training frames, pipeline fitting and the backtest against baselines.

Origins are as-of dates whose horizon outcome is known: for training at ``as_of`` they are
``as_of - H - k * step`` (k = 0, 1, ...), each using only data before itself. The backtest
refits everything at ``as_of - H`` (from origins whose outcome ends by then) and scores the
horizon ``[as_of - H, as_of)``, which no part of it has seen.

Every model earns its place: per task the backtest compares the simple baseline, the
probabilistic (BTYD) model and LightGBM with a paired bootstrap over customers
(:func:`choose_models`); a difference within noise is a tie and a tie goes to the simpler model
(baseline < btyd < gbm). Scoring then uses the chosen model (``ScoringPipeline.choice``).
When the history is too short for any origin with a known outcome, there is no backtest: the
probabilistic model scores, its kind (BG/NBD, MBG/NBD or Pareto/NBD) chosen on a
calibration/holdout split inside the history (:func:`choose_btyd_kind`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from retain.features.customers import customer_features, observed_channels, rfm_summary
from retain.features.labels import labels_lazy
from retain.features.orders import Frame, bought_line, orders, window
from retain.models.btyd import BTYD_KINDS, BTYD_NAMES, BTYDModel, InsufficientHistoryError
from retain.models.churn import ChurnClassifier
from retain.models.pipeline import (
    MODEL_KINDS,
    ExpectedOrdersChurn,
    RecencyChurnRule,
    ScoringPipeline,
    with_btyd,
)
from retain.models.timing import NextOrderRegressor
from retain.models.value import RevenueRegressor
from retain.training.metrics import (
    PairedDifference,
    churn_metrics,
    paired_bootstrap,
    point_metric,
    timing_metrics,
    value_metrics,
)
from retain.training.sample import DEFAULT_SAMPLE_CUSTOMERS, CustomerSample, draw_sample

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
    # LightGBM and the backtest on a stratified sample of about this many customers
    # (training.sample); the probabilistic models fit every customer.
    sample_customers: int = DEFAULT_SAMPLE_CUSTOMERS


@dataclass
class Eligibility:
    repeat_buyers: int
    history_days: int
    eligible: bool
    reasons: list[str] = field(default_factory=list)


def check_eligibility(transactions: Frame, as_of: date,
                      rfm: pl.DataFrame | None = None) -> Eligibility:
    """Enough repeat buyers and history for the LightGBM models? Otherwise the probabilistic
    model alone is used, with a warning. ``rfm``: every customer's RFM summary when
    ``transactions`` are a sample's (``retain.spark.training_rfm``)."""
    rfm = rfm_summary(transactions, as_of) if rfm is None else rfm
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


# BG/NBD and MBG/NBD fit every customer: the fit runs on the distinct histories, whose number
# stops growing with the shop (models.btyd.grouped_rfm). Pareto/NBD's likelihood is far slower
# (Nelder-Mead); as a baseline a sample will do.
MAX_FIT_CUSTOMERS: dict[str, int | None] = {"bgnbd": None, "mbgnbd": None, "pareto": 50_000}
# The calibration/holdout split that picks the BTYD kind on a short history: the holdout is
# the horizon, at most a third of the history, and at least this many days.
MIN_HOLDOUT_DAYS = 14


def fit_btyd(transactions: Frame, as_of: date, config: TrainConfig, model: str = "bgnbd") -> BTYDModel:
    return btyd_model(config, model).fit(rfm_summary(transactions, as_of))


def btyd_model(config: TrainConfig, model: str = "bgnbd") -> BTYDModel:
    return BTYDModel(model=model, annual_discount_rate=config.annual_discount_rate,  # type: ignore[arg-type]
                     max_fit_customers=MAX_FIT_CUSTOMERS[model], random_state=config.random_state)


def origin_frame(transactions: Frame, origin: date, channels: Sequence[str], config: TrainConfig) -> pl.DataFrame:
    """Features, BTYD outputs (fitted at the origin) and horizon labels at one origin."""
    features = customer_features(transactions, origin, channels)
    outcome = labels_lazy(transactions, origin, config.horizon_days).collect()
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
                 progress: Callable[[str], None] = log.info,
                 sample: CustomerSample | None = None,
                 rfm: pl.DataFrame | None = None) -> ScoringPipeline:
    """Fit every part with data strictly before ``as_of``; ready to score at ``as_of``.
    ``sample``: the customers LightGBM learns from when an engine drew them already (the
    Spark engine brings only their lines); otherwise drawn here past ``sample_customers``.
    ``rfm``: every customer's ``rfm_summary`` at ``as_of``, computed by that engine, which the
    probabilistic model fits instead of the summary of ``transactions``."""
    window = transactions.lazy().filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    history = window.collect()
    channels = observed_channels(history)
    progress(f"probabilistic model at {as_of}")
    rfm = rfm_summary(history, as_of) if rfm is None else rfm
    pipeline = ScoringPipeline(horizon_days=config.horizon_days, channels=channels,
                               btyd=btyd_model(config).fit(rfm), trained_as_of=as_of)
    eligibility = check_eligibility(history, as_of)
    origins = training_origins(history, as_of, config)
    if not eligibility.eligible or not origins:
        reasons = eligibility.reasons or ["no origin with a known outcome before the as-of date"]
        pipeline.notes.append("probabilistic fallback only: " + "; ".join(reasons))
        progress("choosing the probabilistic model on a calibration/holdout split of the history")
        kind, comparison = choose_btyd_kind(history, as_of, config)
        pipeline.btyd_comparison = comparison
        pipeline.notes.append(comparison["summary"])
        if kind != pipeline.btyd.model:
            pipeline.btyd = btyd_model(config, kind).fit(rfm)
        if comparison.get("churn_score") == "expected_orders":
            pipeline.orders_churn = orders_churn(pipeline.btyd, rfm, config.horizon_days)
        return pipeline
    if sample is None:
        sample = customer_sample(history, as_of, config, progress, "LightGBM on")
    else:
        progress(f"LightGBM on {sample.line()}")
    stacked = stacked_frame(history if sample is None else sample.of(history), origins, channels,
                            config, progress)
    gbm = {"n_estimators": config.n_estimators, "learning_rate": config.learning_rate,
           "num_leaves": config.num_leaves, "random_state": config.random_state}
    progress(f"churn model on {stacked.height:,} rows from {len(origins)} origins")
    pipeline.churn = ChurnClassifier(**gbm).fit(stacked, ~stacked["ordered_again"].to_numpy())
    progress("revenue model")
    pipeline.value = RevenueRegressor(**gbm).fit(stacked, stacked["revenue_h"].to_numpy())
    progress("timing model")
    days = stacked["days_to_next_order"].cast(pl.Float64).to_numpy()
    pipeline.timing = NextOrderRegressor(**gbm).fit(stacked, days)
    pipeline.recency_rule = RecencyChurnRule.fit(stacked["days_since_last_order"].to_numpy(),
                                                 ~stacked["ordered_again"].to_numpy())
    return pipeline


def choose_btyd_kind(history: Frame, as_of: date, config: TrainConfig) -> tuple[str, dict]:
    """BG/NBD, MBG/NBD or Pareto/NBD for a history too short for a backtest, as lifetimes
    users choose: fit each on a calibration period, predict the holdout period after it (the
    last ``min(horizon, history / 3)`` days) and keep the best by the mean of churn AUC and
    revenue Spearman there. Churn is ranked either by P(no order) or by (fewer) expected
    orders in the horizon, whichever ranks the holdout better for that kind (a tie keeps
    P(no order)); ``comparison["churn_score"]`` says which. Returns the kind and what was
    measured (``summary``: one line)."""
    first = history.lazy().select(pl.col("ts").min()).collect().item().date()
    span = (as_of - first).days
    holdout = min(config.horizon_days, span // 3)
    comparison: dict = {"holdout_days": holdout, "kinds": {}}
    if holdout < MIN_HOLDOUT_DAYS:
        comparison["summary"] = (f"BTYD model: BG/NBD (history of {span} days too short for a "
                                 "calibration/holdout comparison)")
        return "bgnbd", comparison
    calibration_end = as_of - timedelta(days=holdout)
    rfm = rfm_summary(history, calibration_end)
    outcome = rfm.select("customer_id").join(
        labels_lazy(history, calibration_end, holdout).collect(), on="customer_id", how="left")
    churned = ~outcome["ordered_again"].fill_null(False).to_numpy()
    revenue = outcome["revenue_h"].fill_null(0.0).to_numpy()
    for kind in BTYD_KINDS:
        try:
            predicted = btyd_model(config, kind).fit(rfm).predict_arrays(rfm, holdout)
        except InsufficientHistoryError as exc:
            comparison["kinds"][kind] = {"error": str(exc)}
            continue
        by_p = churn_metrics(churned, predicted["p_no_order"]).get("auc", np.nan)
        by_orders = churn_metrics(churned, -predicted["expected_orders"],
                                  probabilities=False).get("auc", np.nan)
        churn_score = "expected_orders" if by_orders > by_p else "p_no_order"
        churn = by_orders if churn_score == "expected_orders" else by_p
        value = value_metrics(revenue, predicted["expected_revenue"])["spearman"]
        comparison["kinds"][kind] = {"auc": churn, "auc_p_no_order": by_p,
                                     "auc_expected_orders": by_orders, "churn_score": churn_score,
                                     "spearman": value, "score": float(np.nanmean([churn, value]))}
    scored = {k: v["score"] for k, v in comparison["kinds"].items()
              if "score" in v and np.isfinite(v["score"])}
    if not scored:
        comparison["summary"] = "BTYD model: BG/NBD (no kind could be compared on the holdout)"
        return "bgnbd", comparison
    kind = max(scored, key=lambda k: (scored[k], -BTYD_KINDS.index(k)))  # ties: the first kind
    measured = ", ".join(
        f"{BTYD_NAMES[k]} AUC {v['auc_p_no_order']:.4f} by P(no order), "
        f"{v['auc_expected_orders']:.4f} by expected orders, Spearman {v['spearman']:.4f}"
        for k, v in comparison["kinds"].items() if "score" in v)
    comparison["chosen"] = kind
    comparison["churn_score"] = comparison["kinds"][kind]["churn_score"]
    ranked_by = ("expected orders" if comparison["churn_score"] == "expected_orders"
                 else "P(no order)")
    comparison["summary"] = (f"BTYD model chosen on a calibration/holdout split (holdout the last "
                             f"{holdout} days before {as_of}): {BTYD_NAMES[kind]}, churn ranked "
                             f"by {ranked_by}; {measured}")
    return kind, comparison


def orders_churn(btyd: BTYDModel, rfm: pl.DataFrame, horizon_days: int) -> ExpectedOrdersChurn:
    """The churn probability map by ``btyd``'s expected orders, fitted to its own
    P(no order) on the customers at hand (no outcome is used)."""
    predicted = btyd.predict_arrays(rfm, horizon_days)
    return ExpectedOrdersChurn.fit(btyd.model, predicted["expected_orders"], predicted["p_no_order"])


def baseline_scores(frame: pl.DataFrame, products: pl.DataFrame, transactions: Frame,
                    as_of: date, config: TrainConfig, btyd_kind: str = "bgnbd") -> pl.DataFrame:
    """The heuristics marketers use today, and the classic probabilistic models.
    ``btyd_kind``: the kind the frame's ``btyd_*`` columns come from (BG/NBD is refitted when
    it is another one)."""
    h = config.horizon_days
    pareto = fit_btyd(transactions, as_of, config, model="pareto").predict(frame, h)
    if btyd_kind != "bgnbd":
        bgnbd = fit_btyd(transactions, as_of, config).predict_arrays(frame, h)
        frame = frame.with_columns(
            pl.Series("btyd_p_no_order", bgnbd["p_no_order"]),
            pl.Series("btyd_expected_orders", bgnbd["expected_orders"]),
            pl.Series("btyd_expected_revenue", bgnbd["expected_revenue"]))
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
        pl.Series("pareto_minus_expected_orders", -pareto["expected_orders"].to_numpy()),
        pl.col("btyd_expected_revenue").alias("bgnbd_gg_revenue"),
        pl.Series("pareto_gg_revenue", pareto["expected_revenue"].to_numpy()),
        # The marketer's formula: AOV x purchase frequency x lifetime (here the horizon).
        (pl.col("aov") * pl.col("orders") / tenure * h).alias("formula_revenue"),
        # In whole days, as scoring gives it (a date, rounded half to even: models.pipeline):
        # judged in fractions of a day, the same rule scored as a date beat itself "beyond
        # noise" (CDNOW, 273 days: 75.4155 vs 75.4194, "better"), and LightGBM's dates had
        # that edge over it in the model choice.
        own.fill_null(shop_interval).round(0, mode="half_to_even").alias("median_interval_days"),
    ).join(top_product, on="customer_id")


CHURN_BASELINES = {
    "recency_30d": "recency_30d", "recency_60d": "recency_60d", "recency_90d": "recency_90d",
    "recency_days": "recency_days", "bgnbd_p_no_order": "bgnbd_p_no_order",
    "bgnbd_expected_orders": "bgnbd_minus_expected_orders", "pareto_p_no_order": "pareto_p_no_order",
    "pareto_expected_orders": "pareto_minus_expected_orders",
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
        frame = frame.join(baseline_scores(features, products, transactions, origin, config,
                                           pipeline.btyd.model),
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
    candidates = {k: v[metric] for k, v in metrics[task].items()
                  if k not in ("retain", "gbm") and metric in v}
    pick = max if higher_is_better else min
    name = pick(candidates, key=lambda k: candidates[k])
    return name, candidates[name]


def versus_best_baseline(frame: pl.DataFrame, metrics: dict, origin: date,
                         seed: int = 0) -> dict[str, dict]:
    """Per task, what scoring output (``retain``) against the best baseline on the same
    customers, with a paired-bootstrap interval: ``metric, retain, baseline, baseline_value,
    diff, lo, hi, verdict`` (positive diff = retain better; a tie when the interval holds zero).
    Needs :func:`evaluate_pipeline`'s frame and metrics (with baselines)."""
    outcomes = _outcomes(frame, origin)
    columns = {"churn": ("churn_probability", CHURN_BASELINES),
               "value": ("predicted_revenue", {n: n for n in VALUE_BASELINES}),
               "timing": ("next_order_days", {"median_interval": "median_interval_days"})}
    out = {}
    for task, (ours, baselines) in columns.items():
        metric = TASK_METRIC[task]
        actual, data = outcomes[task]
        if task not in metrics or len(actual) < 2 or (task == "churn" and len(np.unique(actual)) < 2):
            continue
        name, _ = best_baseline(metrics, task, "mae_days" if task == "timing" else metric,
                                    higher_is_better=task != "timing")
        if ours not in data.columns:
            data = data.with_columns((pl.col("next_order_date") - pl.lit(origin)).dt.total_days()
                                     .cast(pl.Float64).alias(ours))
        d = paired_bootstrap(metric, actual, data[ours].cast(pl.Float64).fill_null(0.0).to_numpy(),
                             data[baselines[name]].cast(pl.Float64).fill_null(0.0).to_numpy(),
                             seed=seed)
        out[task] = {"metric": metric, "retain": d.a, "baseline": name, "baseline_value": d.b,
                     "diff": d.diff, "lo": d.lo, "hi": d.hi, "verdict": d.verdict}
    due = frame.filter(pl.col("due_product_id").is_not_null() & pl.col("next_basket").is_not_null())
    if due.height >= 2 and "top_product" in due.columns:
        hits = due.select(pl.col("next_basket").list.contains(pl.col(c)).fill_null(False).alias(c)
                          for c in ("due_product_id", "top_product"))
        ours, base = (hits[c].to_numpy().astype(float) for c in ("due_product_id", "top_product"))
        d = paired_bootstrap("hit_rate", ours, ours, base, seed=seed)
        out["due_product"] = {"metric": "hit_rate", "retain": d.a, "baseline": "top_product",
                              "baseline_value": d.b, "diff": d.diff, "lo": d.lo, "hi": d.hi,
                              "verdict": d.verdict}
    return out


def versus_line(task: str, row: dict) -> str:
    return (f"{task} {row['metric']}: retain {row['retain']:.4f} vs the best baseline "
            f"{row['baseline']} {row['baseline_value']:.4f}: {row['diff']:+.4f} "
            f"[{row['lo']:+.4f}, {row['hi']:+.4f}] -> {row['verdict']}")


# Per task, the candidates in the backtest frame: kind -> [(name, score column)], and the
# outcome and metric they are judged by. "retain" columns are the LightGBM pipeline's scores.
CANDIDATES = {
    "churn": {"baseline": [("recency_days", "recency_days")],
              # By P(no order) or by fewer expected orders in the horizon: scoring outputs the
              # latter as a probability too (models.pipeline.ExpectedOrdersChurn).
              "btyd": [("bgnbd_p_no_order", "bgnbd_p_no_order"),
                       ("pareto_p_no_order", "pareto_p_no_order"),
                       ("bgnbd_expected_orders", "bgnbd_minus_expected_orders"),
                       ("pareto_expected_orders", "pareto_minus_expected_orders")],
              "gbm": [("gbm", "churn_probability")]},
    "value": {"baseline": [("formula_revenue", "formula_revenue")],
              "btyd": [("bgnbd_gg_revenue", "bgnbd_gg_revenue"),
                       ("pareto_gg_revenue", "pareto_gg_revenue")],
              "gbm": [("gbm", "predicted_revenue")]},
    "timing": {"baseline": [("median_interval", "median_interval_days")],
               "gbm": [("gbm", "next_order_days")]},
}
TASK_METRIC = {"churn": "auc", "value": "spearman", "timing": "mae_days"}
TASK_LABELS = {"churn": "churn", "value": "revenue", "timing": "timing"}


@dataclass
class TaskChoice:
    """The model a task is scored by and how it compares with the best model of another kind
    (``difference``: chosen minus alternative, positive = chosen better, with its interval)."""

    task: str
    kind: str
    name: str
    alternative: str | None = None
    difference: PairedDifference | None = None
    reason: str = ""

    @property
    def verdict(self) -> str:
        return self.difference.verdict if self.difference is not None else "not measured"

    def as_dict(self) -> dict:
        """Plain values (JSON, MLflow): kind, name, reason, verdict and, when measured, metric,
        value, alternative, alternative_value, diff, lo, hi."""
        out = {"kind": self.kind, "name": self.name, "reason": self.reason, "verdict": self.verdict}
        d = self.difference
        if d is not None:
            out.update(metric=d.metric, value=d.a, alternative=self.alternative,
                       alternative_value=d.b, diff=d.diff, lo=d.lo, hi=d.hi)
        return out


def choice_line(task: str, choice: dict) -> str:
    """One summary line: chosen model, metric vs the best alternative, diff [lo, hi], verdict.
    ``diff`` is signed so that positive means the chosen model is better (an error too)."""
    head = f"{TASK_LABELS.get(task, task)}: {choice['kind']} ({choice['name']})"
    if "diff" not in choice:
        return f"{head}: {choice.get('reason') or 'not measured'}"
    return (f"{head}: {choice['metric']} {choice['value']:.4f} vs {choice['alternative']} "
            f"{choice['alternative_value']:.4f}, diff {choice['diff']:+.4f} "
            f"[{choice['lo']:+.4f}, {choice['hi']:+.4f}] -> {choice['verdict']}"
            + (f" ({choice['reason']})" if choice.get("reason") else ""))


def _outcomes(frame: pl.DataFrame, origin: date) -> dict[str, tuple[np.ndarray, pl.DataFrame]]:
    churned = ~frame["ordered_again"].fill_null(False).to_numpy()
    timing = frame.filter(pl.col("days_to_next_order").is_not_null()).with_columns(
        (pl.col("next_order_date") - pl.lit(origin)).dt.total_days().cast(pl.Float64)
        .alias("next_order_days"))
    return {"churn": (churned, frame), "value": (frame["revenue_h"].fill_null(0).to_numpy(), frame),
            "timing": (timing["days_to_next_order"].cast(pl.Float64).to_numpy(), timing)}


def choose_models(frame: pl.DataFrame, origin: date, with_gbm: bool = True,
                  resamples: int = 200, seed: int = 0) -> dict[str, TaskChoice]:
    """Per task, the model scoring uses: the best on the backtest unless a simpler kind is
    within noise of it (its paired-bootstrap interval of the difference holds zero), then the
    simplest such. Needs :func:`evaluate_pipeline`'s frame (scores, baselines, outcomes)."""
    outcomes = _outcomes(frame, origin)
    choices = {}
    for task, kinds in CANDIDATES.items():
        actual, data = outcomes[task]
        metric = TASK_METRIC[task]
        higher = metric != "mae_days"
        if len(actual) < 2 or (task == "churn" and len(np.unique(actual)) < 2):
            continue
        columns = {k: [(n, c) for n, c in v if c in data.columns and (k != "gbm" or with_gbm)]
                   for k, v in kinds.items()}
        scores = {n: data[c].cast(pl.Float64).fill_null(0.0).to_numpy()
                  for v in columns.values() for n, c in v}
        kind_of = {n: k for k, v in columns.items() for n, _ in v}
        point = {n: point_metric(metric, actual, s) for n, s in scores.items()}
        point = {n: v for n, v in point.items() if np.isfinite(v)}
        if not point:
            continue
        ranked = sorted(point, key=lambda n: point[n], reverse=higher)
        # The best of each kind stands for it.
        best_of = {}
        for n in ranked:
            best_of.setdefault(kind_of[n], n)
        leader = ranked[0]
        chosen, reason = leader, ""
        for kind in MODEL_KINDS:
            if kind not in best_of or MODEL_KINDS.index(kind) >= MODEL_KINDS.index(kind_of[leader]):
                continue
            candidate = best_of[kind]
            d = paired_bootstrap(metric, actual, scores[candidate], scores[leader], resamples, seed)
            if d.hi >= 0:  # not significantly worse than the best: a tie, the simpler wins
                chosen = candidate
                reason = f"within noise of {leader}: the simpler model is used"
                break
        others = [best_of[k] for k in MODEL_KINDS if k in best_of and k != kind_of[chosen]]
        choice = TaskChoice(task, kind_of[chosen], chosen, reason=reason)
        if others:
            alternative = max(others, key=lambda n: point[n] if higher else -point[n])
            choice.alternative = alternative
            choice.difference = paired_bootstrap(metric, actual, scores[chosen], scores[alternative],
                                                  resamples, seed)
        choices[task] = choice
    return choices


def apply_choice(pipeline: ScoringPipeline, choices: dict[str, dict], history: Frame,
                 as_of: date, config: TrainConfig,
                 rfm: pl.DataFrame | None = None) -> ScoringPipeline:
    """Make ``pipeline`` (fitted at ``as_of``) score each task with the chosen kind. A kind the
    final fit could not provide (LightGBM on a shop now too small for it) keeps its default.
    ``rfm``: as :func:`fit_pipeline`'s (every customer's summary, from an engine)."""
    def summary() -> pl.DataFrame:  # built only when a variant or the orders map needs it
        return rfm_summary(history, as_of) if rfm is None else rfm

    for task, choice in choices.items():
        if choice["kind"] == "gbm" and not pipeline.eligible:
            continue
        pipeline.choice[task] = choice["kind"]
    wanted = {c["name"].split("_")[0] for c in choices.values() if c["kind"] == "btyd"}
    kind = "pareto" if "pareto" in wanted else "bgnbd" if "bgnbd" in wanted else None
    if kind is not None and kind != pipeline.btyd.model:
        pipeline.btyd_variant = btyd_model(config, kind).fit(summary())
    if pipeline.choice.get("churn") == "baseline" and pipeline.recency_rule is None:
        pipeline.choice.pop("churn")  # no origin to learn the rule's rates from: keep the default
    churn = choices.get("churn", {})
    if pipeline.choice.get("churn") == "btyd" and churn.get("name", "").endswith("_expected_orders"):
        # The model btyd choices score with (the variant when there is one).
        scoring = pipeline.btyd_variant or pipeline.btyd
        pipeline.orders_churn = orders_churn(scoring, summary(), config.horizon_days)
    return pipeline


def customer_sample(transactions: Frame, as_of: date, config: TrainConfig,
                    progress: Callable[[str], None] = log.info,
                    what: str = "") -> CustomerSample | None:
    """``training.sample.draw_sample`` of ``config.sample_customers`` customers, or None (at
    once, from a count of ids) when the shop has no more customers than that."""
    ids = transactions.lazy().select(pl.col("customer_id").n_unique()).collect().item()
    if ids <= config.sample_customers:
        return None
    sample = draw_sample(transactions, as_of, config.horizon_days, config.sample_customers)
    if sample is not None and what:
        progress(f"{what} {sample.line()}")
    return sample


def backtest_origin(transactions: Frame, as_of: date, config: TrainConfig) -> date | None:
    """``as_of - H``, or None when the history before it is too short to fit anything."""
    origin = as_of - timedelta(days=config.horizon_days)
    first = transactions.lazy().select(pl.col("ts").min()).collect().item()
    if first is None or (origin - first.date()).days < MIN_ORIGIN_HISTORY_DAYS:
        return None
    return origin


def backtest(transactions: Frame, as_of: date, config: TrainConfig,
             progress: Callable[[str], None] = log.info) -> tuple[dict, pl.DataFrame, ScoringPipeline | None]:
    """Refit at ``as_of - H`` and evaluate on ``[as_of - H, as_of)`` beside the baselines.

    Metrics: ``{task: {model: {metric: value}}}`` where ``retain`` is the model chosen for the
    task (``metrics["choices"]``: :meth:`TaskChoice.as_dict` per task) and ``gbm``
    the LightGBM model. Empty metrics (and no pipeline) when the history holds no backtest.
    Past ``config.sample_customers`` customers, everything here (fits, baselines, metrics) is
    on the stratified sample (``training.sample``), and ``metrics["sample"]`` says so.
    """
    before = transactions.lazy().filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    sample = customer_sample(before, as_of, config, progress, "backtest on")
    if sample is not None:
        transactions = sample.of(transactions)
    origin = backtest_origin(transactions, as_of, config)
    if origin is None:
        progress(f"no backtest: the history before {as_of} minus the {config.horizon_days}-day "
                 "horizon is too short to fit and judge a model")
        return {"choices": {}}, pl.DataFrame(), None
    progress(f"backtest: fitting at {origin}")
    pipeline = fit_pipeline(transactions, origin, config, progress)
    progress(f"backtest: scoring the horizon {origin} .. {as_of - timedelta(days=1)}")
    window = transactions.lazy().filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    metrics, frame = evaluate_pipeline(pipeline, window.collect(), origin, config)
    progress("backtest: choosing the model per task (paired bootstrap over customers)")
    choices = choose_models(frame, origin, with_gbm=pipeline.eligible,
                            seed=config.random_state)
    outcomes = _outcomes(frame, origin)
    for task, choice in choices.items():
        if pipeline.eligible:
            metrics[task]["gbm"] = metrics[task]["retain"]
        column = {n: c for pairs in CANDIDATES[task].values() for n, c in pairs}[choice.name]
        actual, data = outcomes[task]
        predicted = data[column].cast(pl.Float64).fill_null(0.0).to_numpy()
        probabilities = choice.kind != "baseline"
        if task == "churn" and choice.kind == "baseline" and pipeline.recency_rule is not None:
            # What scoring would output: the rule's rates, ranked exactly as the days.
            predicted = pipeline.recency_rule.churn_probability(predicted)
            probabilities = True
        if task == "churn" and choice.name.endswith("_expected_orders"):
            # What scoring would output: the expected orders mapped to a probability.
            kind = choice.name.split("_")[0]
            expected = -predicted
            own = data[f"{kind}_p_no_order"].cast(pl.Float64).fill_null(1.0).to_numpy()
            predicted = ExpectedOrdersChurn.fit(kind, expected, own).churn_probability(expected)
        metrics[task]["retain"] = (
            churn_metrics(actual, predicted, probabilities=probabilities)
            if task == "churn" else value_metrics(actual, predicted) if task == "value"
            else timing_metrics(actual, predicted))
    metrics["choices"] = {task: choice.as_dict() for task, choice in choices.items()}
    if sample is not None:
        metrics["sample"] = sample.summary()
    return metrics, frame, pipeline


def summary_line(metrics: dict) -> str:
    churn = metrics.get("churn", {}).get("retain", {}).get("auc", np.nan)
    value = metrics.get("value", {}).get("retain", {}).get("spearman", np.nan)
    return f"churn AUC {churn:.3f}, revenue Spearman {value:.3f}"
