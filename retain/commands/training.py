"""Training commands: ``retain train``, ``retain evaluate`` and ``retain promote``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from retain.commands.common import (
    AsOfOpt,
    CancelledStatusOpt,
    ContactsOpt,
    CustomersOpt,
    DateFormatOpt,
    DropDuplicatesOpt,
    EncodingOpt,
    LangOpt,
    MapOpt,
    OnBadRowsOpt,
    QueryOpt,
    RejectsHereOpt,
    RejectsOpt,
    ReturnedStatusOpt,
    RulesOpt,
    TransactionsOpt,
    example,
    fail,
    load,
    load_side_table,
    rules_or_fail,
    transaction_settings,
    write_json,
)
from retain.commands.engine import (
    EngineOpt,
    PartitionsOpt,
    SparkMasterOpt,
    spark_score,
    spark_training_data,
)
from retain.progress import StepClock, console, print_note

if TYPE_CHECKING:
    import polars as pl
    from rich.table import Table

app = typer.Typer()

ModelVersionOpt = Annotated[
    str | None, typer.Option("--model-version", metavar="<version>", help="Registered version (default: champion).")
]
HorizonOpt = Annotated[
    int | None, typer.Option("--horizon-days", help="Prediction horizon in days. Default 90.")
]


def metrics_table(metrics: dict, title: str) -> Table:
    """Every model beside every baseline, one table per run."""
    shown = {
        "churn": ("auc", "pr_auc", "log_loss", "brier"),
        "value": ("mae", "rmse", "spearman", "gini", "top_decile_capture"),
        "timing": ("mae_days", "coverage_p10_p90"),
        "due_product": ("hit_rate",),
    }
    from rich.table import Table

    table = Table(title=title)
    for column in ("task", "model", "metrics"):
        table.add_column(column)
    for task, names in shown.items():
        for model, values in metrics.get(task, {}).items():
            text = "  ".join(f"{n} {values[n]:.4f}" for n in names if n in values)
            if task == "due_product" and not values.get("customers"):
                # No customer with a due product ordered (CDNOW has no product ids): "nan".
                text = "not measured: no customer with a due product ordered in the horizon"
            table.add_row(task, f"[bold]{model}[/]" if model == "retain" else model, text)
    return table


def registry_or_fail() -> None:
    """Stop in seconds, before any work, when the MLflow tracking server does not answer."""
    from retain.models.registry import RegistryError, check_registry

    try:
        check_registry()
    except RegistryError as exc:
        raise fail(str(exc)) from None


def registered_model(version: str | None):
    """The champion (or ``version``) from the registry, or a clear error and exit 1."""
    from retain.models.registry import load_registered

    registry_or_fail()
    try:
        registered = load_registered(version or None)
    except LookupError as exc:
        raise fail(str(exc)) from None
    for note in registered.environment_notes:
        print_note(note)
    return registered


def _above_zero(value: float) -> float:
    # A negative or zero rate was trained and registered as champion without a word.
    if not value > 0:  # NaN too
        raise typer.BadParameter("must be above 0, e.g. 0.05")
    return value


def _not_negative(value: float) -> float:
    if not value >= 0:
        raise typer.BadParameter("must be 0 or more, e.g. 0.10 for 10% a year")
    return value


@app.command(epilog=example(
    "retain train --transactions data/shop/transactions.parquet \\",
    "    --as-of 2026-07-01 --horizon-days 90"))
def train(
    transactions: TransactionsOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: HorizonOpt = None,
    n_origins: Annotated[int, typer.Option(min=1, help="Stacked training origins.")] = 4,
    origin_step_days: Annotated[int, typer.Option(min=1, help="Days between origins.")] = 30,
    max_train_rows: Annotated[int, typer.Option(min=1000, help="Cap on stacked rows.")] = 600_000,
    n_estimators: Annotated[int, typer.Option(min=10, help="Max boosting rounds.")] = 600,
    learning_rate: Annotated[float, typer.Option(
        help="LightGBM learning rate (above 0).", callback=_above_zero)] = 0.05,
    annual_discount_rate: Annotated[float, typer.Option(
        help="CLV discount rate per year (0 or more; 0.10 is 10%).", callback=_not_negative)
    ] = 0.10,
    sample_customers: Annotated[int, typer.Option(min=1000, help=(
        "Backtest and LightGBM on a stratified sample of about this many customers (by "
        "orders, recency and last-horizon purchase; the same customers every run); the "
        "probabilistic models fit all."))] = 2_000_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    register: Annotated[bool, typer.Option(help="Register in the MLflow model registry.")] = True,
    contacts: ContactsOpt = None,
    rules: RulesOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsHereOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
    partitions: PartitionsOpt = 8,
) -> None:
    """Backtest, fit and register churn, value and timing models.

    Tracked in MLflow. Uses data strictly before --as-of only. The new version becomes the `champion` alias
    when it beats the current champion on the same backtest, else `challenger`.
    """
    from retain.config import settings
    from retain.models.registry import masked_tracking_uri
    from retain.training.backtest import TrainConfig
    from retain.training.data_report import data_report
    from retain.training.train import choice_lines, sample_line
    from retain.training.train import train as run_training

    config = transaction_settings(transactions, as_of, horizon_days, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    decision_rules = rules_or_fail(settings(rules=rules).rules)
    registry_or_fail()
    clock = StepClock()
    clock.switch("load")
    sample = rfm = counts = reference = None
    if engine == "spark":
        # Spark validates every line and draws the stratified sample; only the sampled
        # customers' lines come to this machine, and training runs on them as it does locally;
        # what describes the whole shop is computed on Spark from every customer.
        data = spark_training_data(config, rejects or Path("rejected.csv"), sample_customers,
                                   master=spark_master, partitions=partitions)
        tx, cutoff, loaded, sample, rfm = data.lines, data.as_of, data.report, data.sample, data.rfm
        counts, reference = data.counts, data.shop_reference
    else:
        tx, cutoff, loaded = load(config, rejects or Path("rejected.csv"))
    contacts_log = load_side_table("contacts", contacts, config, rejects or Path("rejected.csv"))
    train_config = TrainConfig(
        horizon_days=config.horizon_days, n_origins=n_origins, origin_step_days=origin_step_days,
        max_train_rows=max_train_rows, n_estimators=n_estimators, learning_rate=learning_rate,
        annual_discount_rate=annual_discount_rate, random_state=seed,
        sample_customers=sample_customers,
    )
    report = data_report(tx, loaded, cutoff, train_config, counts=counts)
    console.print(f"Data: {report.customers:,} customers with a purchase, {report.orders:,} orders, "
                  f"{report.repeat_buyers:,} repeat buyers, {report.first_day} .. "
                  f"{report.last_day}; plan: {report.plan}"
                  + "".join(f"; {reason}" for reason in report.reasons))
    console.print(f"Training at {cutoff} with horizon {config.horizon_days} days; "
                  f"MLflow: {masked_tracking_uri()}")
    try:
        with console.status("Training...") as status:
            def progress(message: str) -> None:
                steps(message)
                status.update(f"Training: {message}...")
                console.print(f"[dim]-[/] {message}")

            steps = TrainingSteps(clock)

            result = run_training(tx, cutoff, train_config, progress=progress, register=register,
                                  contacts=contacts_log, rules=decision_rules,
                                  data_report=report.to_dict(), sample=sample, engine=engine,
                                  rfm=rfm, shop_reference=reference)
    except ValueError as exc:
        raise fail(str(exc)) from None
    clock.stop()
    if any(task in result.metrics for task in ("churn", "value", "timing")):
        console.print(metrics_table(result.metrics, f"Backtest: horizon after {cutoff} minus {config.horizon_days} days"))
        if "sample" in result.metrics:
            console.print(sample_line(result.metrics["sample"]), highlight=False)
    else:
        console.print(f"No backtest: the history before {cutoff} is too short to hold out a "
                      f"{config.horizon_days}-day horizon and still fit a model before it; the "
                      "probabilistic model scores (see the note below)", highlight=False)
    console.print("Model per task, against the best model of another kind on the backtest "
                  "(diff > 0: the chosen one is better; [95% paired bootstrap interval]; a "
                  "difference within noise is a tie and the simpler model is used):",
                  highlight=False)
    for line in choice_lines(result.metrics, result.pipeline):
        console.print(f"  {line}", highlight=False, markup=False)
    for note in result.pipeline.notes:
        print_note(note)
    console.print(f"MLflow run {result.run_id}; model 'retain' version {result.version or '-'} "
                  f"-> {result.alias or 'not registered'} ({result.reason})")
    console.print(f"Time per step: {clock.summary()}", highlight=False)


class TrainingSteps:
    """Charges each progress message of training.train to a step of `retain train`. The run
    goes backtest -> fit -> register (the final fit announces itself, and so does logging to
    MLflow); features are built inside the backtest and the fit, at every origin, and their
    time is counted apart, as the step "features"."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.stage = "backtest"
        clock.switch(self.stage)

    def __call__(self, message: str) -> None:
        if message.startswith("final fit"):
            self.stage = "fit"
        elif message.startswith(("logging the scoring pipeline", "registered ")):
            self.stage = "register"
        features = message.startswith("features and labels at origin")
        self.clock.switch("features" if features else self.stage)


@app.command(epilog=example(
    "retain evaluate --transactions data/shop/transactions.parquet \\",
    "    --as-of 2026-04-01 --out evaluation.json"))
def evaluate(
    transactions: TransactionsOpt = None,
    as_of: AsOfOpt = None,
    model_version: ModelVersionOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsHereOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the metrics, the comparison with "
                                  "the best baseline per task and the model's choices as JSON.")
    ] = None,
) -> None:
    """Judge a registered model on the horizon after --as-of.

    Scores at --as-of and compares with what happened in the horizon after it (the
    transactions must cover that horizon), beside the baselines."""
    from datetime import timedelta

    from retain.models.pipeline import TASKS
    from retain.training.backtest import (
        TrainConfig,
        evaluate_pipeline,
        versus_best_baseline,
        versus_line,
    )

    config = transaction_settings(transactions, as_of, None, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    if config.as_of is None:
        raise fail("--as-of is required: the horizon after it is what the model is judged on")
    registered = registered_model(model_version)
    pipeline, version = registered.pipeline, registered.version
    horizon = pipeline.horizon_days
    tx, cutoff, _ = load(config, rejects or Path("rejected.csv"), horizon)
    trained = pipeline.trained_as_of
    if trained is not None and cutoff < trained:
        # The model learnt from lines before its own as-of: a horizon before that is one it
        # has seen, and its figures flatter it.
        seen_until = min(trained, cutoff + timedelta(days=horizon)) - timedelta(days=1)
        console.print(
            f"[yellow]note:[/] model version {version} was trained on lines before {trained}, "
            f"so it has seen this horizon ({cutoff} .. {seen_until}): these figures are "
            f"in-sample and flatter it; judge it with --as-of {trained} or later, or train a "
            f"model with --as-of {cutoff}", soft_wrap=True)
    metrics, frame = evaluate_pipeline(pipeline, tx, cutoff, TrainConfig(horizon_days=horizon))
    console.print(metrics_table(metrics, f"Model version {version} at {cutoff}, horizon {horizon} days"))
    versus = versus_best_baseline(frame, metrics, cutoff)
    for task, row in versus.items():
        console.print(versus_line(task, row))
    if out is not None:
        report = {"model_version": version, "as_of": str(cutoff), "horizon_days": horizon,
                  "trained_as_of": None if trained is None else str(trained),
                  "in_sample": trained is not None and cutoff < trained,
                  "customers": frame.height, "choices": {task: pipeline.chosen(task) for task in (*TASKS, "due_product")},
                  "versus_best_baseline": versus, "metrics": metrics}
        write_json(out, report)
        console.print(f"Metrics written to {out}")


@app.command(epilog=example(
    "retain score --transactions data/shop/transactions.parquet \\",
    "    --customers data/shop/customers.parquet --out scores.csv"))
def score(
    out: Annotated[Path, typer.Option("--out", help="Scores: .csv or .parquet.")],
    transactions: TransactionsOpt = None,
    as_of: AsOfOpt = None,
    model_version: ModelVersionOpt = None,
    store_url: Annotated[
        str | None,
        typer.Option("--store-url", metavar="<url>", help="Score store database URL. Env: RETAIN_STORE_URL; "
                     "default sqlite:///retain.db in the working directory."),
    ] = None,
    customers: CustomersOpt = None,
    contacts: ContactsOpt = None,
    rules: RulesOpt = None,
    lang: LangOpt = None,
    column_map: MapOpt = None,
    on_bad_rows: OnBadRowsOpt = None,
    rejects: RejectsOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    date_format: DateFormatOpt = None,
    drop_duplicates: DropDuplicatesOpt = None,
    cancelled_status: CancelledStatusOpt = None,
    returned_status: ReturnedStatusOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
    partitions: PartitionsOpt = 8,
) -> None:
    """Score every customer and decide what to do for each.

    With the champion (or --model-version) at --as-of: segment, goal, channel (with consent from --customers), send_at,
    offer and reason.

    Writes --out (CSV or Parquet by extension) and always the score store, where the new run
    becomes visible all at once; a run that fails leaves the previous scores untouched.
    """
    import polars as pl

    from retain.commands.common import (
        no_purchase_candidates,
        note_log_ends_early,
        note_no_purchase,
        say_no_purchase,
        write_frame,
    )
    from retain.config import settings
    from retain.decisions.decide import ORDER_HISTORY_COLUMNS, score_decide_and_features
    from retain.progress import step
    from retain.serving.store import ScoreStore

    config = transaction_settings(transactions, as_of, None, on_bad_rows, column_map, query,
                                  encoding=encoding, date_format=date_format,
                                  drop_duplicates=drop_duplicates,
                                  cancelled_statuses=cancelled_status, returned_statuses=returned_status)
    try:
        options = settings(store_url=store_url, rules=rules, lang=lang)
        store = ScoreStore(options.store_url)
    except ValueError as exc:
        raise fail(str(exc)) from None
    decision_rules = rules_or_fail(options.rules)
    with step("Loading the model from the registry"):
        registered = registered_model(model_version)
    rejected = rejects or out.with_name(out.stem + ".rejected.csv")
    if engine == "spark":
        run_id, rows, scores, cutoff, unbought = spark_score(
            config, out, rejected, registered, decision_rules, options.lang, store, customers,
            contacts, master=spark_master, partitions=partitions)
        print_score_summary(scores, rows, run_id, registered.pipeline)
        say_no_purchase(unbought, cutoff, "scores")
        # Spark's features stay in its partitions: the scores and decisions are watched.
        from retain.analytics.drift import DECISION_CATEGORIES, DECISION_NUMBERS, SCORE_COLUMNS

        watched = [*SCORE_COLUMNS, *DECISION_NUMBERS, *DECISION_CATEGORIES]
        written = pl.scan_parquet(f"{out}/*.parquet")
        names = written.collect_schema().names()
        with store.open() as opened:
            previous = next((r for r in opened.runs(limit=50)
                             if r["status"] == "complete" and r["run_id"] != run_id), None)
            drift = store_drift(opened, run_id, previous,
                                written.select([c for c in watched if c in names]).collect(),
                                None)
        print_drift_summary(drift, previous)
        return
    tx, cutoff, _ = load(config, rejected)
    note_log_ends_early(tx["ts"].max() if tx.height else None,  # type: ignore[arg-type]
                        cutoff, registered.pipeline.horizon_days)
    trained = registered.pipeline.trained_as_of
    if trained is not None and (cutoff - trained).days > STALE_MODEL_DAYS:
        # Scores still come (CDNOW at 2000-07-01 with a 1997 model: everyone lost, rightly),
        # but the shop-wide figures segments compare with are that old: a wrong --as-of or a
        # forgotten retrain should not pass unseen.
        console.print(f"[yellow]note:[/] model version {registered.version} was trained as of "
                      f"{trained}, {(cutoff - trained).days:,} days before the as-of date "
                      f"{cutoff}: retrain it on recent lines (retain train)")
    consents = load_side_table("customers", customers, config, rejected)
    contacts_log = load_side_table("contacts", contacts, config, rejected)
    if consents is None:
        console.print("[yellow]note:[/] no --customers table: no consent is known, so no "
                      "customer gets a channel")
    with step(f"Scoring and deciding at {cutoff} with model version {registered.version}"):
        scores, features = score_decide_and_features(
            registered.pipeline, tx, cutoff, rules=decision_rules, consents=consents,
            contacts=contacts_log, lang=options.lang,
        )
        scores = scores.with_columns(pl.lit(registered.version).alias("model_version"))
        # The order history goes last, after model_version: new columns are added at the end.
        scores = scores.select(pl.exclude(ORDER_HISTORY_COLUMNS), *ORDER_HISTORY_COLUMNS)
    if consents is not None:
        note_unmatched(scores["customer_id"], consents["customer_id"], customers)
    with step(f"Writing {out}"):
        write_frame(scores, out)
    try:
        with step(f"Writing the score store {store.url}"), store.open() as opened:
            previous = opened.latest_run()
            run_id = opened.write_run(scores, model_version=registered.version, as_of=cutoff)
            drift = store_drift(opened, run_id, previous, scores, features)
    except (ValueError, OSError) as exc:
        raise fail(f"score store: {exc}") from None
    print_score_summary(scores, scores.height, run_id, registered.pipeline)
    note_no_purchase(no_purchase_candidates(tx, cutoff), scores["customer_id"], cutoff, "scores")
    print_drift_summary(drift, previous)


def note_unmatched(scored: pl.Series, listed: pl.Series, source: str | None) -> None:
    """Say how many scored customers the customers table does not list: no consent is known
    for them, so none gets a channel (ids written differently in the two files, e.g. a phone
    as +7 (912) ... in one and 8912... in the other, match nobody)."""
    missing = int((~scored.is_in(listed.implode())).sum())
    if not missing:
        return
    hint = ("; no id matches: check that both files write the customer id the same way"
            if missing == scored.len() else "")
    console.print(f"[yellow]note:[/] {missing:,} of {scored.len():,} scored customers are not "
                  f"in {source}: no consent is known for them, so they get no channel{hint}",
                  soft_wrap=True)


def store_drift(store, run_id: str, previous: dict | None, scores, features):
    """The new run's drift against the previous complete run, kept in the store (its
    ``drift`` table); None, with a note, when it could not be measured or kept: the run
    itself is stored and stands."""
    from retain.analytics.drift import record_run_drift
    from retain.progress import step

    try:
        with step("Measuring drift against the previous run"):
            return record_run_drift(store, run_id, previous["run_id"] if previous else None,
                                    scores, features)
    except (ValueError, OSError) as exc:
        console.print(f"[yellow]note:[/] drift was not measured: {exc}", soft_wrap=True)
        return None


def print_drift_summary(drift, previous: dict | None) -> None:
    """The most shifted columns against the previous run (``retain drift`` shows them all)."""
    from retain.analytics.drift import summary_lines

    if drift is None:
        return
    lines = summary_lines(drift)
    if previous is not None:
        lines[0] += f" (previous run {previous['run_id']}, as of {previous['as_of']})"
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


# A model older than this at the scoring date gets a note (the retrain recipe is monthly).
STALE_MODEL_DAYS = 365


def print_score_summary(scores, rows: int, run_id: str, pipeline=None) -> None:
    """What a score run decided, in a few lines (``scores``: at least goal and score_source;
    ``pipeline``: the model that scored, to say why the probabilistic model did)."""
    console.print(f"{rows:,} customers scored; store run {run_id}")
    goals = scores.group_by("goal").len().sort("len", descending=True)
    console.print("goals: " + ", ".join(f"{goal} {n:,}" for goal, n in goals.iter_rows()))
    sources = dict(scores["score_source"].value_counts().iter_rows())
    if sources.get("gbm_one_order"):
        console.print(f"[yellow]note:[/] {sources['gbm_one_order']:,} customers have a single order: "
                      "their scores rest on little history (score_source = gbm_one_order)")
    if sources.get("baseline"):
        console.print(f"[yellow]note:[/] {sources['baseline']:,} customers' churn is scored by the "
                      "recency rule, which the backtest found as good as the models "
                      "(score_source = baseline)")
    if sources.get("btyd"):
        # A fallback only when LightGBM could not be trained; on CDNOW at a 90-day horizon the
        # backtest chose the probabilistic model (a tie with LightGBM goes to the simpler one).
        why = ("probabilistic fallback" if pipeline is None or not pipeline.eligible else
               "probabilistic model, which the backtest chose for churn")
        console.print(f"[yellow]note:[/] {sources['btyd']:,} customers are scored by the "
                      f"{why} (score_source = btyd)")


@app.command(epilog=example("retain promote --version 1 --alias champion"))
def promote(
    version: Annotated[str, typer.Option("--version", metavar="<version>", help="Model version to promote.")],
    alias: Annotated[str, typer.Option("--alias", metavar="<alias>", help="Alias to point at it.")] = "champion",
) -> None:
    """Point an alias at a registered version, by hand.

    The alias is `champion` unless --alias names another."""
    from retain.models.registry import set_alias

    registry_or_fail()
    try:
        set_alias(version, alias)
    except LookupError as exc:
        raise fail(str(exc)) from None
    console.print(f"retain@{alias} -> version {version}")
