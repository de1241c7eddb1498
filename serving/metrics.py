"""Prometheus metrics of one app instance (``GET /metrics``).

Each app gets its own registry, so several apps in one process (tests) never collide on metric
names. Routes are labelled by their template (``/v1/customers/{customer_id}``), never by the raw
path: a customer id in a label would be personal data and an unbounded number of series.

Several worker processes (``retain serve --workers N``) share their metrics through
prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a directory where
every worker writes its values, and whichever worker answers ``/metrics`` adds them all up, so a
scrape sees the whole server, not one worker. (Per-process CPU and memory are then left out:
prometheus-client cannot add them up.)
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

# Scoring one customer should take milliseconds, a 1,000-customer request a few hundred.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_DRIFT_SERIES = 100
DRIFT_SHIFTED = 0.25  # analytics.drift.SHIFTED (not imported: /metrics stays light)


def is_multiprocess() -> bool:
    """Whether prometheus-client writes to a directory shared by several workers. Read when
    prometheus-client is first imported, so it must be set before a worker starts."""
    return bool(os.environ.get(MULTIPROCESS_DIR_ENV))


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = is_multiprocess()
        if not self.multiprocess:
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
        # A gauge rather than an Info metric, which multiprocess mode cannot carry: the same
        # `retain_model_info{...} 1` series. "mostrecent": the last value any worker set.
        self.model = Gauge(
            "retain_model_info", "The model being served (1; 0 for one served before)",
            ["version", "alias", "trained_as_of"], registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.model_version = Gauge(
            "retain_model_version", "Registry version of the model being served (0 = none)",
            registry=self.registry, multiprocess_mode="mostrecent",
        )
        self.reloads = Counter(
            "retain_model_reloads", "Model reload attempts: reloaded, unchanged or failed",
            ["result"], registry=self.registry,
        )
        # Drift of the latest score run (analytics/drift.py), refreshed from the store when
        # /metrics is read. Labels: kind (feature, score, decision) and the column's name,
        # from retain's own list of watched columns (at most MAX_DRIFT_SERIES): bounded.
        self.drift = Gauge(
            "retain_drift_psi", "PSI of the latest score run against the run before it, per "
            "watched column (< 0.1 stable, 0.1-0.25 moderate, > 0.25 shifted)",
            ["kind", "name"], registry=self.registry, multiprocess_mode="mostrecent",
        )
        self.drift_shifted = Gauge(
            "retain_drift_shifted_columns", "Watched columns of the latest score run with PSI "
            "above 0.25 against the run before it", registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._drift_run: str | None = None
        self._drift_labels: set[tuple[str, str]] = set()
        self._served: tuple[str, str, str] | None = None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def served(self, version: str, alias: str, trained_as_of: str) -> None:
        labels = (version, alias, trained_as_of)
        if self._served is not None and self._served != labels:
            self.model.labels(*self._served).set(0)
        self.model.labels(*labels).set(1)
        self._served = labels
        self.model_version.set(float(version) if version.isdigit() else 0.0)

    def observe_drift(self, run_id: str, rows: list[tuple[str, str, float | None]]) -> None:
        """The drift gauges for a run: ``(kind, name, psi)`` per watched column (psi None:
        nothing to compare with, left out). Series of columns the run lacks are removed."""
        if run_id == self._drift_run:
            return
        measured = [(kind, name, psi) for kind, name, psi in rows
                    if psi is not None][:MAX_DRIFT_SERIES]
        labels = {(kind, name) for kind, name, _ in measured}
        for gone in self._drift_labels - labels:
            if self.multiprocess:  # the value lives on in the workers' files: mark it unknown
                self.drift.labels(*gone).set(float("nan"))
            else:
                self.drift.remove(*gone)
        for kind, name, psi in measured:
            self.drift.labels(kind, name).set(psi)
        self.drift_shifted.set(sum(psi > DRIFT_SHIFTED for _, _, psi in measured))
        self._drift_labels = labels
        # A run read before `retain score` kept its drift (or the first run) is read again.
        self._drift_run = run_id if measured else None

    def exposition(self) -> tuple[bytes, str]:
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker)
        return generate_latest(every_worker), CONTENT_TYPE_LATEST
