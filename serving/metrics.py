"""Prometheus metrics of one app instance (``GET /metrics``).

Each app gets its own registry, so several apps in one process (tests, workers behind a
multiprocess setup) never collide on metric names. Routes are labelled by their template
(``/v1/customers/{customer_id}``), never by the raw path: a customer id in a label would be
personal data and an unbounded number of series.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

# Scoring one customer should take milliseconds, a 1,000-customer request a few hundred.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "retain_http_requests", "HTTP requests by route and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "retain_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.predictions = Counter(
            "retain_predictions", "Customers in scoring requests: scored, or answered with an "
            "error entry (no purchase before as_of)", ["result"], registry=self.registry,
        )
        self.model = Info("retain_model", "The model being served", registry=self.registry)
        self.model_version = Gauge(
            "retain_model_version", "Registry version of the model being served (0 = none)",
            registry=self.registry,
        )
        self.reloads = Counter(
            "retain_model_reloads", "Model reload attempts: reloaded, unchanged or failed",
            ["result"], registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def served(self, version: str, alias: str, trained_as_of: str) -> None:
        self.model.info({"version": version, "alias": alias, "trained_as_of": trained_as_of})
        self.model_version.set(float(version) if version.isdigit() else 0.0)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
