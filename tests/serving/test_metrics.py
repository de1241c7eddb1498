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
