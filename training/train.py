"""``retain train``: backtest, fit, log to MLflow, register, and move the champion alias.

The only code that opens MLflow runs. Tracking URI from ``MLFLOW_TRACKING_URI``; default the
embedded ``sqlite:///mlflow.db`` in the working directory. The registered model is ``retain``;
a new version becomes ``champion`` only when it beats the current champion on the same backtest,
otherwise ``challenger``, and the reason is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import logging
import math
import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from retain.decisions.channels import measure_channels
from retain.decisions.rules import Rules, default_rules
from retain.decisions.segments import ShopReference
from retain.features.customers import rfm_summary
from retain.features.redaction import mask_credentials
from retain.models.btyd import BTYD_NAMES, BTYDModel, InsufficientHistoryError
from retain.models.pipeline import MODEL_KINDS, TASKS, ScoringPipeline
from retain.models.registry import MODEL_NAME, configure_mlflow
from retain.training import plots
from retain.training.backtest import (
    TASK_LABELS,
    TrainConfig,
    apply_choice,
    backtest,
    best_baseline,
    check_eligibility,
    choice_line,
    customer_sample,
    fit_pipeline,
)
from retain.training.due_product import due_product_choice
from retain.training.sample import CustomerSample
from retain.training.uplift import fit_offer_uplift

log = logging.getLogger(__name__)

EXPERIMENT = "retain"


def data_fingerprint(transactions: pl.DataFrame) -> dict[str, Any]:
    """Rows, customers, date range and a content hash (independent of row order)."""
    row_hashes = transactions.select(
        "customer_id", "order_id", "ts", "amount", "product_id", "quantity", "channel"
    ).hash_rows(seed=0)
    digest = hashlib.sha256(np.sort(row_hashes.to_numpy()).tobytes()).hexdigest()[:16]
    return {
        "rows": transactions.height,
        "customers": transactions["customer_id"].n_unique(),
        "first_ts": str(transactions["ts"].min()),
        "last_ts": str(transactions["ts"].max()),
        "sha256_16": digest,
    }


def git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=False, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def flatten(metrics: dict, prefix: str = "backtest") -> dict[str, float]:
    """``{task: {model: {metric: v}}}`` -> ``{"backtest.churn.retain.auc": v, ...}`` (finite only)."""
    out = {}
    for task, models in metrics.items():
        if task in ("choices", "sample"):
            continue
        for model, values in models.items():
            for name, value in values.items():
                if math.isfinite(value):
                    out[f"{prefix}.{task}.{model}.{name}"] = float(value)
    return out


def selection_score(metrics: dict) -> float:
    """What the champion is chosen by: the mean of churn AUC and revenue Spearman of the
    models scoring uses; NaN without a backtest."""
    if "churn" not in metrics or "value" not in metrics:
        return float("nan")
    return (metrics["churn"]["retain"].get("auc", 0.0) + metrics["value"]["retain"].get("spearman", 0.0)) / 2


BASELINE_NAMES = {"timing": "the customer's own median interval",
                  "due_product": "the customer's most bought product"}


def choice_lines(metrics: dict, pipeline: ScoringPipeline) -> list[str]:
    """Per task: the model scoring uses and, after a backtest, how it compares with the best
    model of another kind (diff [lo, hi] and better / tie / worse)."""
    choices = metrics.get("choices", {})
    lines = []
    for task in (*TASKS, "due_product"):
        kind = pipeline.chosen(task)
        if task in choices:
            line = choice_line(task, choices[task])
            if choices[task]["kind"] != kind:
                line += f"; the final fit scores with {kind} (LightGBM could not be fitted)"
            lines.append(line)
        else:
            name = {"btyd": BTYD_NAMES[pipeline.btyd.model], "gbm": "LightGBM",
                    "baseline": BASELINE_NAMES.get(task, "recency rule")}[kind]
            if task == "churn" and kind == "btyd" and pipeline.orders_churn is not None:
                name += ", ranked by expected orders"
            lines.append(f"{TASK_LABELS.get(task, task)}: {kind} ({name}): not measured (no backtest)")
    return lines


def choice_log(metrics: dict, pipeline: ScoringPipeline) -> tuple[dict, dict, dict]:
    """MLflow params, metrics and tags for the per-task choice: params ``choice.<task>``,
    metrics ``vs_baseline.<task>.diff/.lo/.hi`` (positive = the chosen model is better),
    ``.value``, ``.alternative_value`` and ``choice.<task>`` (the kind's index in
    baseline < btyd < gbm, for readers of metrics alone); tags name the alternative and the
    verdict."""
    params, values, tags = {}, {}, {}
    choices = metrics.get("choices", {})
    for task in (*TASKS, "due_product"):
        kind = pipeline.chosen(task)
        params[f"choice.{task}"] = kind
        values[f"choice.{task}"] = float(MODEL_KINDS.index(kind))
        choice = choices.get(task)
        if choice is None or "diff" not in choice:
            tags[f"choice.{task}.verdict"] = "not measured"
            continue
        for key in ("diff", "lo", "hi", "value", "alternative_value"):
            if math.isfinite(choice[key]):
                values[f"vs_baseline.{task}.{key}"] = float(choice[key])
        tags[f"choice.{task}.name"] = choice["name"]
        tags[f"choice.{task}.alternative"] = str(choice["alternative"])
        tags[f"choice.{task}.verdict"] = choice["verdict"]
    comparison = pipeline.btyd_comparison
    params["btyd.kind"] = pipeline.btyd.model
    for kind, measured in comparison.get("kinds", {}).items():
        for key in ("auc", "spearman"):
            if key in measured and math.isfinite(measured[key]):
                values[f"btyd_choice.{kind}.{key}"] = float(measured[key])
    return params, values, tags


def record_due_product_choice(metrics: dict, choice: dict) -> None:
    """The due product's choice beside the other tasks' (``metrics["choices"]``); when it was
    measured, ``retain`` in the due-product table is the chosen model's hit rate and the
    ranker's own figure sits beside it."""
    metrics.setdefault("choices", {})["due_product"] = choice
    if "value" not in choice:
        return
    table = metrics.setdefault("due_product", {})
    table["retain"] = {"hit_rate": choice["value"]}
    ranker = choice["value"] if choice["name"] == "ranker" else choice["alternative_value"]
    table["ranker"] = {"hit_rate": ranker}


def fit_chosen_pipeline(history: pl.DataFrame, as_of: date, config: TrainConfig,
                        progress: Callable[[str], None] = log.info,
                        sample: CustomerSample | None = None, rfm: pl.DataFrame | None = None
                        ) -> tuple[ScoringPipeline, dict, pl.DataFrame]:
    """From the history before ``as_of`` to the pipeline scoring uses: the backtest and its
    per-task choice, the final fit, the choice applied, the due-product choice; progress lines
    name each task's model. Returns the pipeline, the backtest metrics (with ``choices``) and
    the backtest frame (empty without a backtest). ``retain train`` and ``make results`` both
    fit this way, so the results show the models scoring uses. Past ``config.sample_customers``
    customers the backtest, LightGBM and the due-product ranker learn from the stratified
    sample (``training.sample``; ``metrics["sample"]``), the probabilistic models from all.
    ``sample`` given: an engine drew it and ``history`` holds its customers' lines only
    (``retain.spark.training_sample``); ``rfm`` then gives every customer's RFM summary for
    the probabilistic models (``retain.spark.training_rfm``), else they fit the sample."""
    if sample is None:
        sample = customer_sample(history, as_of, config)
        sampled = history if sample is None else sample.of(history)
    else:
        sampled = history
    metrics, frame, _ = backtest(sampled, as_of, config, progress)
    if sample is not None:
        metrics["sample"] = sample.summary()
    progress("final fit on all data before the as-of date")
    pipeline = fit_pipeline(history, as_of, config, progress, sample=sample, rfm=rfm)
    apply_choice(pipeline, metrics.get("choices", {}), history, as_of, config, rfm=rfm)
    progress("due product: a ranker against the customer's most bought product")
    pipeline.due_product, due_choice = due_product_choice(
        sampled, as_of, config.horizon_days, config.n_origins, config.origin_step_days,
        random_state=config.random_state)
    record_due_product_choice(metrics, due_choice)
    for note in pipeline.notes:
        progress(f"WARNING: {note}")
    for line in choice_lines(metrics, pipeline):
        progress(f"model for {line}")
    return pipeline, metrics, frame


@dataclass
class TrainResult:
    run_id: str
    version: str
    alias: str
    reason: str
    metrics: dict
    pipeline: ScoringPipeline
    fingerprint: dict[str, Any]


def check_recent_lines(history: pl.DataFrame, as_of: date, horizon_days: int) -> None:
    """One error line when the horizon before ``as_of`` holds no line at all (an as-of date
    long after the log ends: CDNOW at 2000-07-01). Every outcome there is "no order", so
    nothing can be judged, and LightGBM's revenue model stopped the run with an internal error
    ("[tweedie]: sum of labels is zero"). Scoring such a date is fine: it needs no outcome."""
    last = history.select(pl.col("ts").max()).item()
    if last is not None and last.date() < as_of - timedelta(days=horizon_days):
        raise InsufficientHistoryError(
            f"no line in the {horizon_days} days before the as-of date {as_of} (the last is "
            f"dated {last:%Y-%m-%d}, {(as_of - last.date()).days} days before): no outcome to "
            f"fit or judge a model on. Train at an --as-of at most {horizon_days} days after "
            f"the last line (by default, the day after it); that model scores any later date "
            "(retain score --as-of)")


def train(transactions: pl.DataFrame, as_of: date, config: TrainConfig,
          progress: Callable[[str], None] = log.info, register: bool = True,
          contacts: pl.DataFrame | None = None, rules: Rules | None = None,
          data_report: dict | None = None, sample: CustomerSample | None = None,
          engine: str = "local", rfm: pl.DataFrame | None = None,
          shop_reference: Callable[[ScoringPipeline], ShopReference] | None = None
          ) -> TrainResult:
    """Backtest, fit on everything before ``as_of``, log and register (see module doc).

    ``contacts`` (the contacts log) lets the decisions measure each channel; ``rules`` say how
    (default: the built-in rules); ``data_report`` (``training.data_report``) is logged as
    ``data_report.json``. ``sample`` and ``engine``: ``transactions`` are the lines of a
    sample an engine drew (``retain.spark.training_sample``) and ``rfm`` every customer's RFM
    summary (``retain.spark.training_rfm``), from which the eligibility is judged;
    ``shop_reference`` computes the shop-wide figures of segments from every customer with
    the fitted pipeline (``retain.spark.shop_reference``) instead of from ``transactions``;
    the run's ``engine`` param and tag say which engine built the training data."""
    import mlflow

    configure_mlflow()
    history = transactions.filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    check_recent_lines(history, as_of, config.horizon_days)
    fingerprint = data_fingerprint(history)
    eligibility = check_eligibility(history, as_of, rfm=rfm)
    for reason in eligibility.reasons:
        progress(f"WARNING: {reason}: the probabilistic model alone will score this shop")
    pipeline, metrics, frame = fit_chosen_pipeline(history, as_of, config, progress,
                                                   sample=sample, rfm=rfm)
    fit_decision_inputs(pipeline, history, as_of, contacts, rules or default_rules(), progress,
                        shop_reference=shop_reference)

    if "MLFLOW_RUN_ID" not in os.environ:  # under `mlflow run`, log into the run it made
        mlflow.set_experiment(EXPERIMENT)
    description = run_description(fingerprint, as_of, config, metrics, pipeline)
    with mlflow.start_run(run_name=f"train-{as_of}", tags=source_tags(),
                          description=description) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({**dataclasses.asdict(config), "as_of": str(as_of),
                           "cold_start_max_orders": pipeline.cold_start_max_orders,
                           "engine": engine})
        mlflow.log_params(btyd_params(pipeline))
        if "sample" in metrics:  # the backtest and LightGBM saw a stratified sample
            sample = metrics["sample"]
            mlflow.log_params({"sample.customers": sample["customers"],
                               "sample.of_customers": sample["of_customers"],
                               "sample.strata": sample["strata"],
                               "sample.stratified_by": ",".join(sample["stratified_by"])})
            mlflow.log_dict(sample, "sample_strata.json")
        _log_training_input(history, fingerprint, data_report)
        mlflow.set_tags({"git_commit": git_commit(), "eligible": str(pipeline.eligible),
                         "engine": engine,
                         **({"sample.drawn_by": engine, "btyd.fitted_on":
                             "every customer" if rfm is not None else "sample"}
                            if sample is not None else {}),
                         **{f"data.{k}": str(v) for k, v in fingerprint.items()}})
        mlflow.log_metrics(flatten(metrics))
        choice_params, choice_metrics, choice_tags = choice_log(metrics, pipeline)
        mlflow.log_params(choice_params)
        mlflow.log_metrics(choice_metrics)
        mlflow.set_tags(choice_tags)
        if math.isfinite(selection_score(metrics)):
            mlflow.log_metric("selection_score", selection_score(metrics))
        mlflow.log_dict(metrics, "backtest_metrics.json")
        if data_report is not None:
            mlflow.log_dict(data_report, "data_report.json")
        mlflow.log_dict({"notes": pipeline.notes, "eligibility": dataclasses.asdict(eligibility)},
                        "eligibility.json")
        if frame.height:
            _log_plots(frame, pipeline, Path(tmp))
        _log_diagnostics(pipeline, history, as_of, config, Path(tmp))
        if pipeline.channel_measurements is not None:
            mlflow.log_table(pipeline.channel_measurements.periods.to_pandas(),
                             "channels/periods.json")
        progress("logging the scoring pipeline to MLflow")
        model_info = _log_model(pipeline, history, as_of, Path(tmp))
        version, alias, reason = "", "", "not registered"
        if register:
            version, alias, reason = _register(model_info.model_uri, run.info.run_id, metrics,
                                               config, as_of, fingerprint, history, progress,
                                               description)
        mlflow.set_tag("alias_decision", reason)
        mlflow.set_tag("offer_uplift", "x-learner" if pipeline.offer_uplift is not None
                       else "none: the rules' discount_uplift")
    return TrainResult(run.info.run_id, version, alias, reason, metrics, pipeline, fingerprint)


def source_tags() -> dict[str, str]:
    """MLflow's standard source tags, so the UI shows what trained the run and from which
    commit: ``mlflow.source.name`` (this module), ``.type`` (LOCAL), ``.git.commit`` (when
    retain runs from a git checkout) and ``mlflow.user``. MLflow's own guess names the
    interpreter's entry script (the ``retain`` launcher, pytest) and its commit. Under
    ``mlflow run`` the project's tags (PROJECT, its URI and commit) are kept: none here."""
    if "MLFLOW_RUN_ID" in os.environ:
        return {}
    tags = {"mlflow.source.name": str(Path(__file__).resolve()), "mlflow.source.type": "LOCAL"}
    commit = git_commit()
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    try:
        tags["mlflow.user"] = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container: MLflow's default stays
        pass
    return tags


def btyd_params(pipeline: ScoringPipeline) -> dict[str, float]:
    """The probabilistic models' fitted parameters as MLflow params: ``btyd.r``,
    ``btyd.alpha``, ``btyd.a``, ``btyd.b`` (or Pareto/NBD's ``btyd.s``, ``btyd.beta``),
    ``btyd.penalizer``, Gamma-Gamma's ``gg.p``, ``gg.q``, ``gg.v``; the variant the ``btyd``
    choices score with, when it differs, under ``btyd_variant.`` (with ``btyd_variant.kind``)."""
    def prefixed(model, prefix: str) -> dict:
        return {(name if name.startswith("gg.") and prefix == "btyd" else f"{prefix}.{name}"): value
                for name, value in model.fitted_params().items()}

    params: dict[str, Any] = prefixed(pipeline.btyd, "btyd")
    if pipeline.btyd_variant is not None:
        params["btyd_variant.kind"] = pipeline.btyd_variant.model
        params.update(prefixed(pipeline.btyd_variant, "btyd_variant"))
    return params


def run_description(fingerprint: dict[str, Any], as_of: date, config: TrainConfig, metrics: dict,
                    pipeline: ScoringPipeline) -> str:
    """The run's and the registered version's description (Markdown): the data (lines,
    customers, date range, as-of) and which model won each task against which baseline."""
    btyd = pipeline.btyd.fitted_params()
    frequency = ", ".join(f"{k} {v:.4g}" for k, v in btyd.items()
                          if not k.startswith("gg.") and k != "penalizer")
    spend = ", ".join(f"{k[3:]} {v:.4g}" for k, v in btyd.items() if k.startswith("gg."))
    lines = [
        (f"Trained as of {as_of} (horizon {config.horizon_days} days) on "
         f"{fingerprint['rows']:,} transaction lines of {fingerprint['customers']:,} customers, "
         f"{str(fingerprint['first_ts'])[:10]} .. {str(fingerprint['last_ts'])[:10]} "
         f"(data fingerprint {fingerprint['sha256_16']})."),
        "",
        ("Model per task, against the best model of another kind on the backtest "
         "(diff > 0: the chosen one is better; [95% paired bootstrap interval]):"),
        "",
        *(f"- {line}" for line in choice_lines(metrics, pipeline)),
        "",
        *([sample_line(metrics["sample"]), ""] if "sample" in metrics else []),
        f"{BTYD_NAMES[pipeline.btyd.model]}: {frequency} (time unit {pipeline.btyd.time_unit_days:g} days)"
        + (f"; Gamma-Gamma: {spend}" if spend else "; Gamma-Gamma: not fitted (mean order value)"),
    ]
    lines += [f"- note: {note}" for note in pipeline.notes]
    return "\n".join(lines)


def sample_line(sample: dict) -> str:
    """Says the backtest and LightGBM are on a sample, of how many customers."""
    return (f"Backtest, LightGBM and the due-product ranker on a stratified sample of "
            f"{sample['customers']:,} of {sample['of_customers']:,} customers ({sample['strata']} "
            f"strata by {', '.join(sample['stratified_by'])}); the probabilistic models on all.")


def _log_training_input(history: pl.DataFrame, fingerprint: dict[str, Any],
                        data_report: dict | None) -> None:
    """The training data as the run's input (context ``training``), its digest the data
    fingerprint, so runs on the same data show the same dataset in the MLflow UI. Only the
    schema and row count are stored, not the data."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    where = mask_credentials(str((data_report or {}).get("source") or ""))
    # A file the data came from, or a URL MLflow knows a source kind for; anything else (a
    # query, a database) is named in the code source's tags.
    source: DatasetSource = CodeDatasetSource({"source": where} if where else {})
    if where and "://" not in where and Path(where).exists():
        where = str(Path(where).resolve())
    if where and ("://" in where or Path(where).exists()):
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "can be interpreted in multiple ways": a file
            source = resolve_dataset_source(where)
    dataset = mlflow.data.from_polars(history, source=source, name="transactions",
                                      digest=fingerprint["sha256_16"])
    mlflow.log_input(dataset, context="training")


def fit_decision_inputs(pipeline: ScoringPipeline, history: pl.DataFrame, as_of: date,
                        contacts: pl.DataFrame | None, rules: Rules,
                        progress: Callable[[str], None] = log.info,
                        shop_reference: Callable[[ScoringPipeline], ShopReference] | None = None
                        ) -> None:
    """Fit what the decisions need beside the models: the shop-wide figures segments compare
    with (from every customer's scores at ``as_of``; ``shop_reference``: an engine computes
    them over every customer when ``history`` is a sample's), the channels' measurements and,
    when the contacts log has past offers, the offer uplift model."""
    if shop_reference is not None:
        progress("shop-wide figures for segments, from every customer")
        pipeline.reference = shop_reference(pipeline)
    else:
        progress("shop-wide figures for segments")
        frame, products = pipeline.features(history, as_of)
        pipeline.reference = ShopReference.fit(pipeline.score_features(frame, products, as_of),
                                               frame)
    if contacts is not None:
        progress("measuring each channel from the contacts log")
        pipeline.channel_measurements = measure_channels(contacts, history, as_of, rules.channels)
        pipeline.offer_uplift = fit_offer_uplift(history, contacts, as_of,
                                                 channels=pipeline.channels, progress=progress)


# Logged under plots/ with the PNGs (serving.report reads it back).
BACKTEST_POINTS = "backtest_points.json"


def _log_plots(frame: pl.DataFrame, pipeline: ScoringPipeline, tmp: Path) -> None:
    import mlflow

    # The points beside the pictures: the report redraws them in the reader's language.
    points = plots.backtest_points(frame)
    points.write_json(tmp / BACKTEST_POINTS)
    paths = [plots.reliability(frame, tmp / "reliability.png", points),
             plots.gains(frame, tmp / "gains.png", points),
             plots.predicted_vs_actual(frame, tmp / "predicted_vs_actual.png"),
             tmp / BACKTEST_POINTS]
    if pipeline.churn is not None:
        paths.append(plots.feature_importance(pipeline.churn.feature_importance(),
                                              tmp / "feature_importance.png"))
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path="plots")


def holdout_days(history: pl.DataFrame, as_of: date, horizon_days: int) -> int:
    """The calibration/holdout split of the diagnostics: the last ``min(horizon, history / 3)``
    days, as the BTYD choice splits it."""
    first = history["ts"].min()
    days = (as_of - first.date()).days if first is not None else 0  # type: ignore[union-attr]
    return max(1, min(horizon_days, days // 3))


def _log_diagnostics(pipeline: ScoringPipeline, history: pl.DataFrame, as_of: date,
                     config: TrainConfig, tmp: Path) -> None:
    """The probabilistic model's diagnostics under ``diagnostics/``: expected purchases and
    P(alive) by frequency and recency, the observed repeat counts against the model's, and
    calibration vs holdout purchases (the same kind of model refitted on the history before
    the holdout: on a history too short for that, that plot is left out)."""
    import mlflow

    model = pipeline.btyd
    rfm = rfm_summary(history, as_of)
    paths = [
        plots.frequency_recency_matrix(model, rfm, config.horizon_days,
                                       tmp / "frequency_recency_matrix.png"),
        plots.probability_alive_matrix(model, rfm, tmp / "probability_alive_matrix.png"),
        plots.period_transactions(rfm["frequency"].to_numpy(), model.simulate_frequency(
            rfm["T"].to_numpy(), config.random_state), tmp / "period_transactions.png"),
    ]
    holdout = holdout_days(history, as_of, config.horizon_days)
    calibration_end = date.fromordinal(as_of.toordinal() - holdout)
    calibration = rfm_summary(history, calibration_end)
    try:
        refit = BTYDModel(model.model, model.penalizer_coef, model.time_unit_days,
                          model.max_fit_customers, model.annual_discount_rate,
                          model.random_state).fit(calibration)
    except InsufficientHistoryError:
        refit = None
    if refit is not None:
        # Repeat purchase days in the holdout: lifetimes' frequency_holdout.
        actual = calibration.join(rfm.select("customer_id", pl.col("frequency").alias("full")),
                                  on="customer_id", how="left")
        paths.append(plots.calibration_vs_holdout(
            calibration["frequency"].to_numpy(),
            (actual["full"] - actual["frequency"]).to_numpy(),
            refit.predict_expected_orders(calibration, holdout).to_numpy(), holdout,
            tmp / "calibration_vs_holdout.png"))
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path="diagnostics")


def _log_model(pipeline: ScoringPipeline, history: pl.DataFrame, as_of: date, tmp: Path):
    import mlflow
    from mlflow.models import ModelSignature, infer_signature

    from retain.models import pyfunc_model
    from retain.models.pyfunc import (
        PIPELINE_ARTIFACT,
        code_paths,
        input_schema,
        model_requirements,
        save_pipeline,
        transactions_frame,
    )

    path = save_pipeline(pipeline, tmp / "pipeline.pkl")
    example_ids = history["customer_id"].unique().sort().head(3)
    example = transactions_frame(history.filter(pl.col("customer_id").is_in(example_ids.implode())))
    example_pd = example.to_pandas()
    output = pipeline.score(example, as_of).to_pandas()
    inferred = infer_signature(example_pd, output, params={"as_of": str(as_of)})
    signature = ModelSignature(inputs=input_schema(), outputs=inferred.outputs,
                               params=inferred.params)
    return mlflow.pyfunc.log_model(
        name="model", python_model=str(Path(pyfunc_model.__file__)),
        artifacts={PIPELINE_ARTIFACT: str(path)},
        signature=signature, input_example=(example_pd, {"as_of": str(as_of)}),
        # retain's own code travels with the model and its requirements are the real packages
        # (inferred ones would name `retain==0.1.0`, which no index has).
        code_paths=code_paths(tmp / "code"), pip_requirements=model_requirements(),
    )


def _register(model_uri: str, run_id: str, metrics: dict, config: TrainConfig, as_of: date,
              fingerprint: dict, history: pl.DataFrame, progress: Callable[[str], None],
              description: str = "") -> tuple[str, str, str]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    score = selection_score(metrics)
    backtested = "churn" in metrics or "value" in metrics
    if backtested and not math.isfinite(score):
        # A champion must have been judged: NaN metrics (e.g. no customer both churned and
        # stayed in the backtest) judge nothing.
        reason = "not registered: the backtest metrics are NaN (nothing to judge the model by)"
        progress(reason)
        return "", "", reason
    version = mlflow.register_model(model_uri, MODEL_NAME).version
    try:
        champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    except MlflowException:
        champion = None
    if champion is None:
        alias, reason = "champion", ("first version: becomes champion" if backtested else
                                     "first version: becomes champion (no backtest: the history "
                                     "is too short, the probabilistic model scores)")
    elif not backtested:
        alias, reason = "challenger", ("no backtest (the history is too short): it cannot be "
                                       f"judged against champion v{champion.version}")
    else:
        alias, reason = _compare(client, champion, score, config, as_of, fingerprint, history, progress)
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    client.update_model_version(MODEL_NAME, version,
                                description=f"{description}\n\nAlias: {alias} ({reason})".strip())
    client.set_model_version_tag(MODEL_NAME, version, "alias_decision", reason)
    client.set_model_version_tag(MODEL_NAME, version, "as_of", str(as_of))
    if math.isfinite(score):
        client.set_model_version_tag(MODEL_NAME, version, "selection_score", f"{score:.6f}")
    client.set_model_version_tag(MODEL_NAME, version, "run_id", run_id)
    progress(f"registered {MODEL_NAME} version {version} as {alias}: {reason}")
    return str(version), alias, reason


def _compare(client, champion, score: float, config: TrainConfig, as_of: date, fingerprint: dict,
             history: pl.DataFrame, progress: Callable[[str], None]) -> tuple[str, str]:
    """Champion or challenger, judged on the same backtest (this run's data and window).

    The champion's recipe (its logged parameters) is re-run on this backtest unless it equals
    ours; an identical recipe on identical data is a tie and does not move the alias, and an
    identical recipe on newer data moves it (same method, fresher data).
    """
    champion_run = client.get_run(champion.run_id)
    params = champion_run.data.params
    champion_config = _config_from_params(params)
    champion_as_of = date.fromisoformat(params.get("as_of", "1970-01-01"))
    same_recipe = champion_config == config
    if same_recipe:
        if champion_run.data.tags.get("data.sha256_16") == fingerprint["sha256_16"] and champion_as_of == as_of:
            return "challenger", (f"same recipe and same data as champion v{champion.version}: "
                                  "nothing to gain, the champion stays")
        if as_of > champion_as_of:
            return "champion", (f"same recipe as champion v{champion.version}, newer data "
                                f"({as_of} > {champion_as_of}); backtest score {score:.4f}")
        if as_of == champion_as_of:
            # Another log at the same date (a corrected export, another shop): nothing here
            # says it is better, so the champion stays; a person who knows says so.
            return "challenger", (f"same recipe and as-of date ({as_of}) as champion "
                                  f"v{champion.version} on different data: the champion stays; "
                                  "`retain promote --version <this version>` if this data "
                                  "replaces it")
        return "challenger", (f"same recipe as champion v{champion.version} on older data "
                              f"({as_of} < {champion_as_of})")
    progress(f"re-running champion v{champion.version}'s recipe on this backtest")
    champion_metrics, _, _ = backtest(history, as_of, champion_config, progress)
    champion_score = selection_score(champion_metrics)
    if not math.isfinite(champion_score) or score > champion_score:
        return "champion", (f"beats champion v{champion.version} on the same backtest: "
                            f"{score:.4f} > {champion_score:.4f}")
    return "challenger", (f"does not beat champion v{champion.version} on the same backtest: "
                          f"{score:.4f} <= {champion_score:.4f}")


def _config_from_params(params: dict[str, str]) -> TrainConfig:
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    for name, kind in fields.items():
        if name in params:
            values[name] = float(params[name]) if "float" in str(kind) else int(params[name])
    return TrainConfig(**values)


def beats_baselines(metrics: dict) -> dict[str, tuple[str, float, float]]:
    """For each headline metric: (best baseline, its value, retain's value)."""
    out = {}
    for task, metric, higher in (("churn", "auc", True), ("value", "spearman", True),
                                 ("timing", "mae_days", False)):
        if task not in metrics or metrics[task]["retain"].get(metric) is None:
            continue
        name, value = best_baseline(metrics, task, metric, higher)
        out[f"{task}.{metric}"] = (name, value, metrics[task]["retain"][metric])
    return out
