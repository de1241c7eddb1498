"""Drift in `retain score`, `retain drift` and `retain calibration`, as a user runs them."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.serving.store import ScoreStore

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A simulated shop's whole log (history and what followed), a model trained on it at
    2026-01-02, and three score runs: at 2026-01-02, at 2026-02-01, and at 2026-02-01 again
    on the log with every price tripled."""
    path = tmp_path_factory.mktemp("monitoring")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        patch.setenv("COLUMNS", "200")
        invoke("simulate", "--customers", "2500", "--seed", "4", "--out", "shop")
        whole = pl.concat([pl.read_parquet(path / "shop" / "transactions.parquet"),
                           pl.read_parquet(path / "shop" / "future_transactions.parquet")])
        whole.write_parquet(path / "all.parquet")
        whole.with_columns(pl.col("amount") * 3).write_parquet(path / "tripled.parquet")
        invoke("train", "--transactions", "all.parquet", "--as-of", "2026-01-02",
               "--n-origins", "2", "--n-estimators", "40", "--learning-rate", "0.2")
        outputs = [invoke("score", "--transactions", source, "--as-of", as_of, "--out",
                          f"scores-{n}.parquet").output
                   for n, (source, as_of) in enumerate([("all.parquet", "2026-01-02"),
                                                        ("all.parquet", "2026-02-01"),
                                                        ("tripled.parquet", "2026-02-01")])]
    return path, outputs


@pytest.fixture
def env(workdir, monkeypatch):
    path, _ = workdir
    monkeypatch.chdir(path)
    monkeypatch.setenv("COLUMNS", "200")
    return path


def test_score_prints_drift_against_the_previous_run(workdir):
    _, (first, second, tripled) = workdir
    assert "drift: no earlier run to compare with" in first
    flat = " ".join(second.split())
    assert "drift against the previous run (PSI" in flat and "previous run" in flat
    flat = " ".join(tripled.split())
    assert "shifted" in flat
    # The money features and scores moved; the top lines name them.
    assert "feature revenue" in flat or "feature aov" in flat or "feature monetary_value" in flat


def test_the_store_keeps_one_row_per_run_and_column(env):
    with ScoreStore(f"sqlite:///{env / 'retain.db'}") as store:
        runs = [r for r in store.runs() if r["status"] == "complete"]
        assert len(runs) == 3
        latest = store.drift()
        assert latest["reference_run_id"].unique().to_list() == [runs[1]["run_id"]]
        psi = dict(zip(latest["name"], latest["psi"], strict=True))
        assert psi["aov"] > 0.25 and psi["revenue"] > 0.25
        assert "as_of_month" not in psi  # one value per run, another each month
        assert psi["orders"] < 0.1 and psi["days_since_last_order"] < 0.1
        assert {"feature", "score", "decision"} <= set(latest["kind"])
        same_data = store.drift(runs[1]["run_id"])
        assert same_data.filter(pl.col("name") == "aov")["psi"].item() < 0.1


def test_retain_drift_shows_a_stored_run(env):
    shown = invoke("drift", "--out", "drift.csv").output
    assert "Drift of run" in shown and "shifted" in shown
    saved = pl.read_csv(env / "drift.csv")
    assert {"name", "kind", "psi", "level"} <= set(saved.columns)
    assert "profile" not in saved.columns


def test_calibration_judges_every_run_whose_horizon_passed(env):
    shown = invoke("calibration", "--transactions", "all.parquet", "--out", "calibration.csv")
    flat = " ".join(shown.output.split())
    assert "3 run(s) judged" in flat
    assert "2026-01-02" in flat and "2026-02-01" in flat
    rows = pl.read_csv(env / "calibration.csv")
    assert sorted(rows["decile"].unique().to_list()) == list(range(11))
    whole = rows.filter(pl.col("decile") == 0)
    assert whole["brier"].max() < 0.25  # better than a coin
    with ScoreStore(f"sqlite:///{env / 'retain.db'}") as store:
        assert store.calibration().height == rows.height
    # Transactions through mid-April cover the horizon after 2026-01-02, not after 2026-02-01.
    pl.read_parquet(env / "all.parquet").filter(
        pl.col("ts") < pl.datetime(2026, 4, 15)).write_parquet(env / "april.parquet")
    early = invoke("calibration", "--transactions", "april.parquet")
    flat = " ".join(early.output.split())
    assert "1 run(s) judged" in flat
    assert flat.count("skipped: its 90-day horizon ends 2026-05-02") == 2


def test_drift_of_a_run_scored_before_drift_existed_says_so(tmp_path, monkeypatch):
    from tests.serving.test_store import AS_OF, make_scores

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    with ScoreStore(f"sqlite:///{tmp_path / 'retain.db'}") as store:
        store.write_run(make_scores(5), model_version="1", as_of=AS_OF)
    result = runner.invoke(app, ["drift"])
    flat = " ".join(result.output.split())
    assert result.exit_code == 1 and "has no drift rows" in flat and "next `retain score`" in flat
    missing = runner.invoke(app, ["drift", "--as-of", "2020-01-01"])
    assert missing.exit_code == 1 and "no complete score run for as-of 2020-01-01" in missing.output


def test_calibration_on_an_empty_store_says_there_is_no_run_to_judge(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "tx.csv").write_text("customer_id,order_id,ts,amount\nA,1,2025-01-05,10\n"
                                     "B,2,2025-02-05,20\n", encoding="utf-8")
    shown = invoke("calibration", "--transactions", "tx.csv",
                   "--store-url", f"sqlite:///{tmp_path / 'retain.db'}")
    flat = " ".join(shown.output.split())
    assert "no complete scoring run" in flat and "runs above" not in flat
