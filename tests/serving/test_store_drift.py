"""The score store's drift and calibration tables (migration 4) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from retain.analytics.drift import Profile, run_drift
from retain.serving.store import CALIBRATION_SCHEMA, ScoreStore
from tests.serving.test_store import AS_OF, make_scores


@pytest.fixture
def store(store_db_url):
    with ScoreStore(store_db_url) as opened:
        yield opened


def test_a_runs_drift_round_trips_with_its_profiles(store):
    first = make_scores(200, seed=1)
    first_run = store.write_run(first, model_version="1", as_of=AS_OF)
    table, profiles = run_drift(first, None, None)
    kept = table.with_columns(
        pl.col("name").replace_strict({n: p.to_json() for n, p in profiles.items()})
        .alias("profile"))
    assert store.write_drift(first_run, kept) == table.height
    back = store.drift(first_run)
    assert back["name"].sort().to_list() == sorted(profiles)
    assert back["level"].unique().to_list() == ["new"]
    assert back["psi"].null_count() == back.height
    restored = {row["name"]: Profile.from_json(row["name"], row["kind"], row["profile"])
                for row in back.iter_rows(named=True)}
    assert restored["churn_probability"].edges == profiles["churn_probability"].edges

    second = make_scores(200, seed=2).with_columns(pl.col("predicted_revenue") * 5)
    second_run = store.write_run(second, model_version="1", as_of=AS_OF)
    table, _ = run_drift(second, None, restored)
    store.write_drift(second_run, table, reference_run_id=first_run)
    latest = store.drift()  # the latest run by default, the most shifted first
    assert latest["run_id"].unique().to_list() == [second_run]
    assert latest["reference_run_id"].unique().to_list() == [first_run]
    assert latest["name"][0] == "predicted_revenue" and latest["level"][0] == "shifted"
    # Written again, a run's rows are replaced, not added to.
    store.write_drift(second_run, table.head(2), reference_run_id=first_run)
    assert store.drift(second_run).height == 2


def test_a_run_without_drift_rows_reads_as_empty(store):
    assert store.drift().height == 0  # no run at all
    run = store.write_run(make_scores(5), model_version="1", as_of=AS_OF)
    assert store.drift(run).columns[:3] == ["run_id", "name", "kind"]
    assert store.drift(run).height == 0


def calibration_rows(run_id: str, as_of: date, observed: float) -> pl.DataFrame:
    return pl.DataFrame({
        "run_id": [run_id] * 2, "as_of": [as_of] * 2, "horizon_days": [90, 90],
        "model_version": ["3", "3"], "decile": [0, 1], "customers": [100, 10],
        "predicted_churn": [0.4, 0.05], "observed_churn": [observed, 0.1], "brier": [0.2, 0.1],
        "predicted_revenue": [1000.0, 300.0], "actual_revenue": [900.0, 310.0],
        "revenue_mae": [12.5, float("nan")], "predicted_orders": [150.0, 40.0],
        "actual_orders": [140.0, 41.0],
        "measured_at": [datetime(2026, 12, 1, tzinfo=UTC)] * 2,
    }, schema=CALIBRATION_SCHEMA)


def test_calibration_rows_replace_a_runs_earlier_measure(store):
    first = store.write_run(make_scores(5), model_version="3", as_of=AS_OF)
    second = store.write_run(make_scores(5, as_of=date(2026, 4, 1)), model_version="3",
                             as_of=date(2026, 4, 1))
    store.write_calibration(pl.concat([calibration_rows(first, AS_OF, 0.5),
                                       calibration_rows(second, date(2026, 4, 1), 0.3)]))
    store.write_calibration(calibration_rows(first, AS_OF, 0.45))
    back = store.calibration()
    assert back.height == 4
    assert back["as_of"].to_list() == [date(2026, 4, 1)] * 2 + [AS_OF] * 2  # oldest first
    assert back.filter(run_id=first, decile=0)["observed_churn"].item() == 0.45
    assert back["revenue_mae"].null_count() == 2  # NaN kept as null
    assert back["measured_at"][0] == datetime(2026, 12, 1, tzinfo=UTC)


def test_prune_drops_drift_and_calibration_of_pruned_runs(store):
    old = store.write_run(make_scores(5, seed=1), model_version="1", as_of=AS_OF)
    table, _ = run_drift(make_scores(5, seed=1), None, None)
    store.write_drift(old, table)
    store.write_calibration(calibration_rows(old, AS_OF, 0.5))
    new = store.write_run(make_scores(5, seed=2), model_version="1", as_of=AS_OF)
    store.write_drift(new, table)
    assert store.prune(keep_runs=1) == 1
    assert store.calibration().height == 0
    assert store.drift(new).height == table.height


def test_a_run_stored_before_drift_existed_is_profiled_from_its_scores(store):
    from retain.analytics.drift import record_run_drift

    old = store.write_run(make_scores(300, seed=1), model_version="1", as_of=AS_OF)
    assert store.drift(old).height == 0  # as a run scored by an older retain
    new_scores = make_scores(300, seed=2).with_columns(pl.col("clv_12m") * 4)
    features = pl.DataFrame({"customer_id": new_scores["customer_id"],
                             "orders": list(range(300))})
    new = store.write_run(new_scores, model_version="1", as_of=AS_OF)
    table = record_run_drift(store, new, old, new_scores, features)
    psi = dict(zip(table["name"], table["psi"], strict=True))
    assert psi["clv_12m"] > 0.25 and psi["churn_probability"] < 0.1
    assert psi["orders"] is None  # features were not stored before: compared from now on
    kept = store.drift(new)
    assert kept["reference_run_id"].unique().to_list() == [old]
    assert kept["profile"].null_count() == 0
