"""Service metrics: the served model's series follow a reload; one app's registry is its own."""

from __future__ import annotations

from retain.serving.metrics import ServiceMetrics


def test_a_reload_moves_the_model_series_to_the_new_version():
    metrics = ServiceMetrics()
    metrics.served("3", "champion", "2026-06-01")
    metrics.served("4", "champion", "2026-07-01")
    text = metrics.exposition()[0].decode()
    assert 'retain_model_info{alias="champion",trained_as_of="2026-07-01",version="4"} 1.0' in text
    assert 'retain_model_info{alias="champion",trained_as_of="2026-06-01",version="3"} 0.0' in text
    assert "retain_model_version 4.0" in text
    assert "process_cpu_seconds_total" in text  # one process: its own CPU and memory


def test_two_apps_in_one_process_count_apart():
    first, second = ServiceMetrics(), ServiceMetrics()
    first.observe_request("GET", "/healthz", 200, 0.001)
    assert 'retain_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in (
        first.exposition()[0].decode())
    assert 'route="/healthz"' not in second.exposition()[0].decode()


def test_drift_gauges_follow_the_latest_run_with_a_bounded_label_set():
    metrics = ServiceMetrics()
    metrics.observe_drift("run1", [("feature", "aov", 0.4), ("score", "clv_12m", 0.05),
                                   ("feature", "orders", None)])
    text = metrics.exposition()[0].decode()
    assert 'retain_drift_psi{kind="feature",name="aov"} 0.4' in text
    assert 'name="orders"' not in text  # nothing to compare with: no series
    assert "retain_drift_shifted_columns 1.0" in text
    metrics.observe_drift("run2", [("score", "clv_12m", 0.01)])
    text = metrics.exposition()[0].decode()
    assert 'name="aov"' not in text and 'retain_drift_psi{kind="score",name="clv_12m"} 0.01' in text
    assert "retain_drift_shifted_columns 0.0" in text
    many = [("feature", f"x{i}", 0.3) for i in range(500)]
    metrics.observe_drift("run3", many)
    assert metrics.exposition()[0].decode().count("retain_drift_psi{") == 100


def test_metrics_read_the_latest_runs_drift_from_the_store(settings, no_registry):
    import polars as pl
    from fastapi.testclient import TestClient

    from retain.serving.main import create_app
    from retain.serving.store import ScoreStore
    from tests.serving.conftest import METRICS_KEY
    from tests.serving.test_store import AS_OF, make_scores

    with ScoreStore(settings.store_url) as store:
        run = store.write_run(make_scores(10), model_version="1", as_of=AS_OF)
        store.write_drift(run, pl.DataFrame({
            "name": ["aov", "churn_probability", "goal"], "kind": ["feature", "score", "decision"],
            "psi": [0.31, 0.02, None], "level": ["shifted", "stable", "new"],
            "customers": [10, 10, 10]}))
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics", headers={"X-API-Key": METRICS_KEY}).text
    assert 'retain_drift_psi{kind="feature",name="aov"} 0.31' in text
    assert 'retain_drift_psi{kind="score",name="churn_probability"} 0.02' in text
    assert 'name="goal"' not in text
    assert "retain_drift_shifted_columns 1.0" in text
