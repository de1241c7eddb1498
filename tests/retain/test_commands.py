"""The data scientist's loop through the CLI: simulate, train, score, evaluate, promote."""

from __future__ import annotations

import json
import re

import mlflow
import polars as pl
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from retain.cli import app
from retain.serving.store import ScoreStore

runner = CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture
def env(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    if not (workdir / "shop" / "transactions.parquet").exists():
        invoke("simulate", "--customers", "3000", "--seed", "11", "--out", "shop")
    return workdir


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_simulate_writes_the_shop(env):
    result = invoke("simulate", "--customers", "3000", "--seed", "11", "--out", "csv-shop", "--format", "csv")
    assert "transactions" in result.output
    for name in ("transactions", "future_transactions", "customers", "contacts", "truth"):
        assert (env / "csv-shop" / f"{name}.csv").exists()
    assert pl.read_parquet(env / "shop" / "truth.parquet").height == 3000


def test_simulate_refuses_an_unknown_format(env):
    result = runner.invoke(app, ["simulate", "--out", "x", "--format", "xlsx"])
    # A usage error (exit 2) naming the choices, before any work.
    assert result.exit_code == 2 and "--format" in result.output and "'parquet', 'csv'" in result.output


def test_score_before_any_training_says_what_to_do(env):
    result = runner.invoke(app, ["score", "--transactions", "shop/transactions.parquet", "--out", "s.csv"])
    assert result.exit_code == 1 and "retain train" in result.output


def test_train_score_evaluate_promote(env):
    trained = invoke("train", "--transactions", "shop/transactions.parquet", "--as-of", "2026-04-02",
                     "--n-origins", "2", "--n-estimators", "60", "--learning-rate", "0.15")
    assert "version 1 -> champion" in trained.output.replace("\n", " ")
    assert "rows on or after the as-of date 2026-04-02 are not used" in trained.output
    flat = trained.output.replace("\n", " ")
    assert "churn: " in flat and " auc " in flat  # the model chosen per task and its verdict
    assert any(f"-> {verdict}" in flat for verdict in ("better", "tie", "worse"))
    # Wall time per step, in the order they began (features are built inside the backtest).
    steps = flat.split("Time per step:", 1)[1]
    names = ["load", "backtest", "features", "fit", "register"]
    assert sorted(names, key=steps.index) == names and "(total " in steps
    took = r"(\d+\.\d s|\d+ min \d\d s)"
    assert re.search(rf"load {took}, backtest {took}, features {took}", steps), steps

    invoke("score", "--transactions", "shop/transactions.parquet", "--as-of", "2026-04-02",
           "--out", "scores.parquet", "--on-bad-rows", "skip")
    scores = pl.read_parquet(env / "scores.parquet")
    assert scores["customer_id"].is_unique().all() and set(scores["model_version"]) == {"1"}
    with ScoreStore(f"sqlite:///{env / 'retain.db'}") as store:  # the default store
        stored = store.latest(scores["customer_id"][0])
        assert stored is not None and stored["model_version"] == "1"
        assert stored["churn_probability"] == pytest.approx(scores["churn_probability"][0])
    for column in ("p_alive", "churn_probability", "expected_orders", "predicted_revenue", "clv_12m",
                   "next_order_date", "next_order_p10", "next_order_p90", "overdue_days",
                   "due_product_id", "due_product_date"):
        assert column in scores.columns

    evaluated = invoke("evaluate", "--transactions", "shop/transactions.parquet", "--as-of",
                       "2026-01-02", "--out", "evaluation.json")
    assert "recency_90d" in evaluated.output and "retain" in evaluated.output
    report = json.loads((env / "evaluation.json").read_text())
    # Trained at 2026-04-02, the model has seen the horizon after 2026-01-02: said, not hidden.
    assert ("model version 1 was trained on lines before 2026-04-02, so it has seen this "
            "horizon (2026-01-02 .. 2026-04-01): these figures are in-sample") in " ".join(
        evaluated.output.split())
    # The in-sample note's verdict is in the file too.
    assert report["in_sample"] is True and report["trained_as_of"] == "2026-04-02"
    churn = report["versus_best_baseline"]["churn"]
    assert churn["metric"] == "auc" and churn["lo"] <= churn["diff"] <= churn["hi"]
    assert f"-> {churn['verdict']}" in evaluated.output.replace("\n", " ")
    assert report["metrics"]["churn"]["retain"]["auc"] == pytest.approx(churn["retain"])
    assert report["horizon_days"] == 90 and report["model_version"] == "1"
    assert set(report["choices"]) == {"churn", "value", "timing", "due_product"}
    # A horizon past the log's end (2026-06-30) has no outcome: one error, not NaN verdicts.
    past = runner.invoke(app, ["evaluate", "--transactions", "shop/transactions.parquet",
                               "--as-of", "2026-07-01"])
    flat = " ".join(past.output.split())
    assert past.exit_code == 1 and "no transactions in the 90-day horizon" in flat, flat
    assert "--as-of 2026-04-02 or earlier" in flat and "nan" not in flat
    # The run logged the data report beside the model.
    runs = mlflow.search_runs(experiment_names=["retain"])
    artifacts = {a.path for a in MlflowClient().list_artifacts(runs["run_id"].iloc[-1])}
    assert "data_report.json" in artifacts

    invoke("train", "--transactions", "shop/transactions.parquet", "--as-of", "2026-04-02",
           "--n-origins", "2", "--n-estimators", "60", "--learning-rate", "0.15")
    promoted = invoke("promote", "--version", "2")
    assert "champion -> version 2" in promoted.output or "retain@champion -> version 2" in promoted.output
    missing = runner.invoke(app, ["promote", "--version", "99"])
    assert missing.exit_code == 1 and "no model 'retain' version 99" in missing.output


def test_an_online_retail_export_through_features_train_and_score(env):
    from tests.fixtures import ONLINE_RETAIL_MAP, write_online_retail

    retail = write_online_retail(env / "retail" / "Online Retail.csv", customers=400, seed=3)
    path = str(retail.path)
    refused = runner.invoke(app, ["features", "--transactions", path, "--as-of", "2011-12-01",
                                  *ONLINE_RETAIL_MAP, "--out", "retail-features.parquet"])
    assert refused.exit_code == 1 and "guest orders" in refused.output
    assert "Traceback" not in refused.output
    common = ["--transactions", path, *ONLINE_RETAIL_MAP, "--on-bad-rows", "skip"]
    built = invoke("features", *common, "--as-of", "2011-12-01", "--labels", "--horizon-days", "90",
                   "--out", "retail-features.parquet", "--rejects", "retail-rejects.csv")
    output = " ".join(built.output.split())
    # Guest lines are rejected, but only inside the window: later ones are simply not used.
    rejected = pl.read_csv(env / "retail-rejects.csv", infer_schema=False)
    assert f"{rejected.height} of {retail.lines} rows rejected" in output
    assert 0 < rejected.height <= retail.guest_lines
    assert set(rejected["reason"]) == {"customer_id: missing customer id"}
    assert "guest orders" in output
    assert "amount = price x quantity" in output and "read as integers" in output
    assert "duplicated lines" in output and "kept" in output
    assert "rows on or after the horizon end 2012-02-29 are not used" in output
    features = pl.read_parquet(env / "retail-features.parquet")
    assert features["customer_id"].is_unique().all() and "12347" in features["customer_id"]
    assert features["ordered_again"].any() and (features["orders"] >= 1).all()

    trained = invoke("train", *common, "--as-of", "2011-12-01", "--n-origins", "2",
                     "--n-estimators", "40", "--learning-rate", "0.2", "--no-register")
    text = " ".join(trained.output.split())
    assert "rows on or after the as-of date 2011-12-01 are not used" in text
    assert "churn" in text


def test_read_options_from_flags_and_environment(env, monkeypatch):
    from tests.fixtures import CDNOW_MAP, CP1251_MAP, write_cdnow_like, write_cp1251

    russian = write_cp1251(env / "exports" / "1c.csv")
    detected = invoke("features", "--transactions", str(russian), *CP1251_MAP,
                      "--out", "ru.csv", "--products-out", "none")
    assert "read as cp1251" in detected.output
    assert sorted(pl.read_csv(env / "ru.csv")["customer_id"]) == ["Иван", "Петр"]
    monkeypatch.setenv("RETAIN_ENCODING", "utf-8")
    refused = runner.invoke(app, ["features", "--transactions", str(russian), *CP1251_MAP,
                                  "--out", "ru.csv"])
    assert refused.exit_code == 1 and "not valid utf-8" in refused.output
    monkeypatch.delenv("RETAIN_ENCODING")

    cdnow = write_cdnow_like(env / "exports" / "cdnow.txt")
    kept = invoke("features", "--transactions", str(cdnow), *CDNOW_MAP, "--as-of", "1997-10-01",
                  "--out", "cd.csv", "--products-out", "none")
    assert "1 duplicated lines" in kept.output and "kept" in kept.output
    monkeypatch.setenv("RETAIN_DROP_DUPLICATES", "true")
    dropped = invoke("features", "--transactions", str(cdnow), *CDNOW_MAP, "--as-of", "1997-10-01",
                     "--out", "cd.csv", "--products-out", "none")
    assert "dropped (--drop-duplicates)" in dropped.output
    assert "1 rows on or after the as-of date 1997-10-01 are not used" in dropped.output
    monkeypatch.setenv("RETAIN_DATE_FORMAT", "%d.%m.%Y")
    wrong = runner.invoke(app, ["features", "--transactions", str(cdnow), *CDNOW_MAP,
                                "--out", "cd.csv"])
    assert wrong.exit_code == 1 and "--date-format %d.%m.%Y" in wrong.output


def test_customers_without_a_purchase_are_counted_never_dropped_silently(tmp_path, monkeypatch):
    """CDNOW has 70 customers whose only line is zero dollars: no purchase, so no features and
    no scores; the user is told how many, as the API answers each with an error entry."""
    from datetime import date

    from retain.commands.common import no_purchase_candidates, note_no_purchase
    from tests.conftest import make_transactions

    monkeypatch.chdir(tmp_path)
    lines = [
        ("buyer", "1", "2024-01-05", 20.0), ("buyer", "2", "2024-03-05", 15.0),
        ("free", "3", "2024-02-01", 0.0),                       # a free line only
        ("netted", "4", "2024-02-02", 10.0), ("netted", "4", "2024-02-02", -10.0),
        ("refund", "5", "2024-02-03", -5.0),                    # a refund of an older order
        ("late", "6", "2024-01-10", 30.0), ("late", "7", "2024-07-01", 0.0),
        ("after", "8", "2024-07-02", 0.0),                      # outside the window
    ]
    tx = make_transactions(lines)
    path = tmp_path / "tx.csv"
    tx.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d")).write_csv(path)
    built = invoke("features", "--transactions", str(path), "--as-of", "2024-06-01",
                   "--out", "features.parquet")
    output = " ".join(built.output.split())
    assert ("3 customers have no purchase before the as-of date 2024-06-01 (only orders "
            "netting to zero or less: free lines, refunds, cancellations): they get no "
            "features") in output
    assert sorted(pl.read_parquet(tmp_path / "features.parquet")["customer_id"]) == ["buyer", "late"]
    # The count the score command prints, from the same two helpers.
    candidates = no_purchase_candidates(tx, date(2024, 6, 1))
    assert note_no_purchase(candidates, pl.Series(["buyer", "late"]), date(2024, 6, 1),
                            "scores") == 3
    assert note_no_purchase(candidates, pl.Series(["buyer", "late", "free", "netted", "refund"]),
                            date(2024, 6, 1), "scores") == 0


def test_a_status_column_through_features_with_values_from_flags_and_environment(
        tmp_path, monkeypatch):
    """An Ozon-like export: --map status=Статус, the defaults leave Отменён out and read
    Возврат as a refund; --cancelled-status (or RETAIN_CANCELLED_STATUSES) adds a value."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "ozon.csv"
    path.write_text("Покупатель;Заказ;Дата;Сумма;Статус\n"
                    "A;1;01.02.2026;100;Доставлен\nA;2;01.03.2026;60;Доставлен\n"
                    "A;3;05.03.2026;500;Отменён\nA;2;06.03.2026;60;Возврат\n"
                    "A;4;01.04.2026;40;Не выкуплен\n", encoding="utf-8")
    columns = ["--map", "customer_id=Покупатель", "--map", "order_id=Заказ", "--map", "ts=Дата",
               "--map", "amount=Сумма", "--map", "status=Статус"]
    common = ["features", "--transactions", str(path), *columns, "--as-of", "2026-06-01",
              "--products-out", "none"]
    built = invoke(*common, "--out", "plain.csv")
    output = " ".join(built.output.split())
    assert "1 cancelled lines (status column) left out" in output
    assert "1 returned lines (status column) read as refunds" in output
    plain = pl.read_csv(tmp_path / "plain.csv").row(0, named=True)
    # Orders 1 and 4 are purchases, order 2 nets to zero, order 3 never happened.
    assert (plain["orders"], plain["revenue"]) == (2, 140.0)
    extended = invoke(*common, "--cancelled-status", "не выкуплен", "--out", "ext.csv")
    assert "2 cancelled lines" in " ".join(extended.output.split())
    assert pl.read_csv(tmp_path / "ext.csv").row(0, named=True)["revenue"] == 100.0
    monkeypatch.setenv("RETAIN_CANCELLED_STATUSES", '["Не выкуплен"]')
    from_env = invoke(*common, "--out", "env.csv")
    assert "2 cancelled lines" in " ".join(from_env.output.split())
    assert pl.read_csv(tmp_path / "env.csv").equals(pl.read_csv(tmp_path / "ext.csv"))


def test_score_summary_calls_btyd_a_fallback_only_when_it_is_one(capsys):
    """A churn score the backtest chose (a tie with LightGBM) is no fallback: saying so after
    `retain train` fitted LightGBM would read as a failure."""
    from types import SimpleNamespace

    from retain.commands.training import print_score_summary

    scores = pl.DataFrame({"goal": ["none", "reactivate"], "score_source": ["btyd", "btyd"]})
    print_score_summary(scores, 2, "run1", SimpleNamespace(eligible=True))
    chosen = " ".join(capsys.readouterr().err.split())
    assert ("2 customers are scored by the probabilistic model, which the backtest chose for "
            "churn (score_source = btyd)") in chosen
    assert "fallback" not in chosen
    print_score_summary(scores, 2, "run1", SimpleNamespace(eligible=False))
    assert "scored by the probabilistic fallback" in " ".join(capsys.readouterr().err.split())


def test_a_due_product_with_nothing_to_judge_reads_not_measured_rather_than_nan():
    """CDNOW has no product ids: train and evaluate printed "hit_rate nan" for both rows."""
    from rich.console import Console

    from retain.commands.training import metrics_table

    nan = float("nan")
    metrics = {"churn": {"retain": {"auc": 0.7734}},
               "due_product": {"retain": {"hit_rate": nan, "customers": 0.0},
                               "top_product": {"hit_rate": nan, "customers": 0.0}}}
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(metrics_table(metrics, "Backtest"))
    text = console.export_text()
    assert "nan" not in text and "auc 0.7734" in text
    assert text.count("not measured: no customer with a due product ordered in the horizon") == 2
    measured = {"due_product": {"retain": {"hit_rate": 0.7088, "customers": 120.0}}}
    console.print(metrics_table(measured, "Evaluation"))
    assert "hit_rate 0.7088" in console.export_text()
