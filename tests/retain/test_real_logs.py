"""Real public logs through the CLI, as a new user runs them: the whole file, ``--map``, an
as-of date in the middle of it, no preprocessing.

CDNOW ships inside lifetimes exactly as its authors published it: a header line, whitespace
separated, CRLF, dates as 19970101, repeated lines (a customer buying the same amount twice in
a day) and zero-dollar lines.
"""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.features.samples import lifetimes_dataset_path

runner = CliRunner()
CDNOW = str(lifetimes_dataset_path("CDNOW_master.txt"))
CDNOW_MAP = ["--map", "ts=date", "--map", "amount=dollar_value", "--map", "quantity=number_of_cds"]
# 20,573 of the 69,659 lines fall on or after 1997-10-01.
LINES_AFTER = "20,573"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("real-logs")


@pytest.fixture
def env(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    return workdir


def run(*args: str):
    result = runner.invoke(app, [*args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_cdnow_as_shipped_gives_features_and_labels(env):
    out = run("features", "--transactions", CDNOW, "--as-of", "1997-10-01", *CDNOW_MAP,
              "--labels", "--out", "cdnow-features.parquet")
    # The lines after the 90-day horizon are outside the window: counted, never rejected.
    assert "not used" in out and "the horizon end" in out and "rejected" not in out
    assert "70 customers have no purchase before the as-of date 1997-10-01" in out
    features = pl.read_parquet(env / "cdnow-features.parquet")
    assert features.height == 23_500 and features["customer_id"].is_unique().all()
    assert 0 < features["ordered_again"].mean() < 0.5 and "revenue_h" in features.columns
    # The log ends on 1998-06-30: a horizon after 1998-06-01 is a third observed, and said so.
    late = run("features", "--transactions", CDNOW, "--as-of", "1998-06-01", *CDNOW_MAP,
               "--labels", "--out", "cdnow-late.parquet")
    assert ("note: the transactions end 1998-06-30, 60 days before the last day of the 90-day "
            "horizon after 1998-06-01 (1998-08-29): orders after 1998-06-30 are unknown and "
            "count as none; --as-of 1998-04-02 or earlier is fully covered") in late


def test_cdnow_as_shipped_trains_scores_and_evaluates(env):
    trained = run("train", "--transactions", CDNOW, "--as-of", "1997-10-01", *CDNOW_MAP,
                  "--n-estimators", "80", "--learning-rate", "0.15", "--n-origins", "2")
    assert LINES_AFTER in trained and "1997-10-01" in trained
    assert "version 1 -> champion" in trained
    for task in ("churn", "revenue", "timing"):
        assert task in trained

    scored = run("score", "--transactions", CDNOW, "--as-of", "1997-10-01", *CDNOW_MAP,
                 "--out", "cdnow-scores.parquet")
    assert LINES_AFTER in scored
    scores = pl.read_parquet(env / "cdnow-scores.parquet")
    # 23,570 customers; 70 of them bought only zero-dollar lines (no purchase to score), and
    # the command says so rather than dropping them silently.
    assert scores.height == 23_500 and scores["customer_id"].is_unique().all()
    assert ("70 customers have no purchase before the as-of date 1997-10-01" in scored
            and "they get no scores" in scored)
    assert scores["churn_probability"].is_between(0, 1).all()
    assert scores["predicted_revenue"].is_finite().all()

    evaluated = run("evaluate", "--transactions", CDNOW, "--as-of", "1997-10-01", *CDNOW_MAP)
    assert "retain" in evaluated and "auc" in evaluated.lower()
    assert "churn auc: retain" in evaluated and "vs the best baseline" in evaluated
    assert "in-sample" not in evaluated and "count as none" not in evaluated

    # Judged on a horizon its training lines held: in-sample, and said so.
    earlier = run("evaluate", "--transactions", CDNOW, "--as-of", "1997-04-01", *CDNOW_MAP)
    assert ("note: model version 1 was trained on lines before 1997-10-01, so it has seen this "
            "horizon (1997-04-01 .. 1997-06-29): these figures are in-sample and flatter it"
            ) in earlier
    # After the log's end there is nothing to judge on: one error line, no warning, no nan.
    after = runner.invoke(app, ["evaluate", "--transactions", CDNOW, "--as-of", "2000-07-01",
                                *CDNOW_MAP])
    assert after.exit_code == 1 and "Traceback" not in after.output
    assert " ".join(after.output.split()).endswith(
        "error: no transactions in the 90-day horizon after the as-of date 2000-07-01 (they "
        "end 1998-06-30): the outcomes are what customers did in it; choose --as-of 1998-04-02 "
        "or earlier, or a shorter --horizon-days")


def test_cdnow_39_week_calibration_falls_back_to_the_chosen_probabilistic_model(env):
    trained = run("train", "--transactions", CDNOW, "--as-of", "1997-10-01", "--horizon-days",
                  "273", *CDNOW_MAP)
    assert "probabilistic" in trained.lower()
    assert any(kind in trained for kind in ("BG/NBD", "Pareto/NBD", "MBG/NBD"))
    scored = run("score", "--transactions", CDNOW, "--as-of", "1997-10-01", *CDNOW_MAP,
                 "--out", "cdnow-273.csv")
    assert LINES_AFTER in scored
    assert pl.read_csv(env / "cdnow-273.csv")["p_alive"].is_between(0, 1).all()
