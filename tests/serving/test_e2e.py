"""End to end: a pipeline trained on a simulated shop (the session registry), batch scores written
to a score store, and a REAL `retain serve` (uvicorn) process answering over HTTP."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.store import ScoreStore
from tests.processes import free_port, start, stop, wait_ready
from tests.serving.conftest import METRICS_KEY, SCORE_KEY, customers_of, score_body

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"X-API-Key": SCORE_KEY}


@contextmanager
def serving(tmp_path: Path, registry, store_url: str, *extra: str) -> Iterator[str]:
    """A real `retain serve` on a free port; yields its base URL."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "RETAIN_API_KEYS": json.dumps({SCORE_KEY: ["score"], METRICS_KEY: ["metrics"]}),
        "RETAIN_STORE_URL": store_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = start([sys.executable, "-m", "retain", "serve", "--host", "127.0.0.1", "--port",
                     str(port), "--reload-interval", "0", *extra], log, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", process, log)
        yield base
    finally:
        stop(process)


@pytest.fixture
def server(tmp_path, registry, store_url) -> Iterator[str]:
    with serving(tmp_path, registry, store_url) as base:
        yield base


@pytest.fixture
def stored(registry, shop, shop_history, store_url):
    """The batch: scores of 30 customers written to the store before the server starts."""
    some = customers_of(shop_history, 30, offset=100)
    batch = registry.trained.pipeline.score(some, shop.as_of)
    with ScoreStore(store_url).open() as store:
        run_id = store.write_run(batch, model_version=registry.trained.version, as_of=shop.as_of)
    return some, batch, run_id


def test_a_real_server_scores_and_reads_back_batch_scores(stored, server, registry, shop):
    some, batch, run_id = stored
    with httpx.Client(base_url=server, headers=HEADERS, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/v1/model").json()["version"] == registry.trained.version

        scored = http.post("/v1/score", json=score_body(some, shop.as_of))
        assert scored.status_code == 200, scored.text
        live = {row["customer_id"]: row for row in scored.json()["scores"]}
        for row in batch.iter_rows(named=True):
            np.testing.assert_allclose(live[row["customer_id"]]["churn_probability"],
                                       row["churn_probability"], atol=1e-9, rtol=0)

        customer = batch.row(0, named=True)
        found = http.get(f"/v1/customers/{customer['customer_id']}")
        assert found.status_code == 200
        row = found.json()
        assert row["run_id"] == run_id and row["customer_id"] == customer["customer_id"]
        assert row["predicted_revenue"] == pytest.approx(customer["predicted_revenue"], abs=1e-9)
        assert row["next_order_date"] == customer["next_order_date"].isoformat()
        assert http.get("/v1/customers/not-a-customer").status_code == 404
        assert httpx.get(f"{server}/v1/model").status_code == 401
        assert http.get("/metrics").status_code == 403  # a score key has no metrics scope


def test_two_workers_report_their_metrics_together(tmp_path, registry, shop, shop_history):
    """With --workers 2, any worker answering /metrics counts every worker's requests."""
    body = score_body(customers_of(shop_history, 2), shop.as_of)
    store_url = f"sqlite:///{tmp_path / 'scores.db'}"
    with serving(tmp_path, registry, store_url, "--workers", "2") as base:
        # Ready means one worker is; wait for the other's model too (its load counts here).
        deadline = time.monotonic() + 120
        while 'retain_model_reloads_total{result="reloaded"} 2.0' not in httpx.get(
                f"{base}/metrics", headers={"X-API-Key": METRICS_KEY}, timeout=10).text:
            assert time.monotonic() < deadline, "the second worker never loaded the model"
            time.sleep(0.5)
        # One new connection per request, so the kernel spreads them over both workers.
        for _ in range(12):
            assert httpx.post(f"{base}/v1/score", json=body, headers=HEADERS,
                              timeout=30).status_code == 200
        scrapes = [httpx.get(f"{base}/metrics", headers={"X-API-Key": METRICS_KEY}, timeout=10)
                   for _ in range(6)]
    for scrape in scrapes:
        assert scrape.status_code == 200
        text = scrape.text
        assert 'retain_http_requests_total{method="POST",route="/v1/score",status="200"} 12.0' in text
        assert 'retain_predictions_total{result="scored"} 24.0' in text
        assert f'retain_model_version {float(registry.trained.version)}' in text
        assert f'version="{registry.trained.version}"}} 1.0' in text
        # Both workers loaded the model: two successful loads, counted together.
        assert 'retain_model_reloads_total{result="reloaded"} 2.0' in text
