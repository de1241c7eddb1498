"""API benchmark: retain's FastAPI service beside `mlflow models serve`, same model, same run.

    .venv/bin/python benchmarks/api.py [--customers 20000] [--requests 2000] [--rate 200]
                                       [--workers 1]

Trains a model on a simulated shop into a throw-away MLflow store, starts both servers on
127.0.0.1 (one worker each unless ``--workers``; LightGBM on one thread), and drives them from
this process: one-customer requests at a fixed rate (open loop, so slow answers cannot slow the
sender), then sequential 1,000-customer batches. retain runs twice: with its decisions (the
default; each customer sends their consents) and scores only (``?decisions=false``, what
`mlflow models serve` returns). Bounded in count and time; both servers are stopped at the end. Targets on 2 cores: one customer p50 < 5 ms, p99 < 30 ms; 1,000 customers
< 300 ms; and faster than `mlflow models serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import orjson
import polars as pl
import uvloop

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEY = "bench-key"
AS_OF = date(2026, 7, 1)
DEADLINE_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str):
    # A file, not a pipe: a server logging into a full pipe blocks.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            started = time.monotonic()
            while not ready(ready_url):
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"{command[0]} exited: {log.read().decode()[-2000:]}")
                if time.monotonic() - started > DEADLINE_S:
                    raise SystemExit(f"{command} not ready after {DEADLINE_S} s")
                time.sleep(0.5)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def retain_body(history: pl.DataFrame, ids: list[str], consents: dict[str, dict]) -> dict:
    rows = history.filter(pl.col("customer_id").is_in(ids)).with_columns(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    customers = []
    for (cid,), group in rows.group_by("customer_id", maintain_order=True):
        customers.append({"customer_id": cid, "consents": consents[cid],
                          "transactions": group.select("ts", "amount", "order_id", "product_id",
                                                       "quantity", "channel").to_dicts()})
    return {"as_of": AS_OF.isoformat(), "customers": customers}


def consent_flags(customers: pl.DataFrame) -> dict[str, dict]:
    columns = [c for c in customers.columns if c.startswith("consent_")]
    return {row["customer_id"]: {c.removeprefix("consent_"): row[c] for c in columns}
            for row in customers.iter_rows(named=True)}


def mlflow_body(history: pl.DataFrame, ids: list[str]) -> dict:
    rows = history.filter(pl.col("customer_id").is_in(ids)).with_columns(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    return {"dataframe_split": {"columns": rows.columns, "data": rows.rows()},
            "params": {"as_of": AS_OF.isoformat()}}


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on raw asyncio streams, every request encoded up
    front: the load generator shares the 2 cores with the server, and httpx alone took about
    one core at 200 req/s (and ~1 ms per request), which the server then lacked."""

    def __init__(self, url: str, headers: dict) -> None:
        self.target = httpx.URL(url)
        self.head = (f"POST {self.target.raw_path.decode()} HTTP/1.1\r\n"
                     f"Host: {self.target.host}:{self.target.port}\r\n"
                     + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                     + "Content-Type: application/json\r\n")
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def encode(self, body: dict) -> bytes:
        payload = orjson.dumps(body)
        return f"{self.head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload

    async def exchange(self, request: bytes) -> bool:
        """Send one request on an idle connection (or a new one); True on a 2xx answer."""
        connection = self.idle.pop() if self.idle else await asyncio.open_connection(
            self.target.host, self.target.port)
        reader, writer = connection
        writer.write(request)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self.idle.append(connection)
        return status.split(b" ", 2)[1].startswith(b"2")

    async def timed(self, request: bytes) -> float | None:
        """Latency in ms, or None when the request failed (refused, reset, non-2xx, timeout)."""
        start = time.perf_counter()
        try:
            ok = await asyncio.wait_for(self.exchange(request), timeout=60)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError):
            ok = False
        return (time.perf_counter() - start) * 1000 if ok else None

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def paced(url: str, bodies: list[dict], rate: float,
                headers: dict) -> tuple[list[float], float, int]:
    """Send at a fixed rate regardless of answers (open loop): latency per answered request in
    ms, the wall time, and how many requests failed."""
    client = RawClient(url, headers)
    requests = [client.encode(body) for body in bodies]
    started = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(client.timed(request)))
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    client.close()
    latencies = [ms for ms in results if ms is not None]
    return latencies, wall, len(results) - len(latencies)


def sequential(url: str, bodies: list[dict], headers: dict) -> list[float]:
    """One request at a time, each after the previous answer: latencies in ms."""
    async def run() -> list[float]:
        client = RawClient(url, headers)
        latencies = []
        for request in [client.encode(body) for body in bodies]:
            ms = await client.timed(request)
            if ms is None:
                raise SystemExit(f"a request to {url} failed")
            latencies.append(ms)
        client.close()
        return latencies

    return uvloop.run(run())


def row(name: str, latencies: list[float], wall: float | None = None, failures: int = 0) -> str:
    if not latencies:
        return f"{name:<48} {0:>6} {'-':>9} {'-':>9} {'-':>8} req/s  failed {failures}"
    p50, p99 = np.percentile(latencies, [50, 99])
    rate = f"{len(latencies) / wall:8.0f}" if wall else f"{1000 / np.mean(latencies):8.1f}"
    failed = f"  failed {failures}" if failures else ""
    return f"{name:<48} {len(latencies):>6} {p50:>9.2f} {p99:>9.2f} {rate} req/s{failed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from features.simulate import simulate_shop
    from training.backtest import TrainConfig
    from training.train import train

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        shop = simulate_shop(args.customers, seed=3)
        history = shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))
        os.chdir(tmp)
        train(history, AS_OF, TrainConfig(), progress=lambda _: None, contacts=shop.contacts)
        consents = consent_flags(shop.customers)
        # One polars and one OpenMP thread for both servers: best for small requests.
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1",
               "POLARS_MAX_THREADS": "1",
               "RETAIN_API_KEYS": f'{{"{KEY}": ["score"]}}', "RETAIN_STORE_URL": f"sqlite:///{tmp}/retain.db",
               "PATH": f"{BIN}:{os.environ['PATH']}"}
        ids = history["customer_id"].unique().sort().to_list()
        rng = np.random.default_rng(0)
        singles = [rng.choice(ids) for _ in range(args.requests)]
        batches = [list(rng.choice(ids, 1000, replace=False)) for _ in range(args.batches)]
        print(f"{'server / request':<48} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'throughput':>12}")

        retain_port, mlflow_port = free_port(), free_port()
        workers = ["--workers", str(args.workers)]
        with server([str(BIN / "retain"), "serve", "--host", "127.0.0.1", "--port", str(retain_port),
                     *workers], env, f"http://127.0.0.1:{retain_port}/readyz"):
            headers = {"X-API-Key": KEY}
            bodies = [retain_body(history, [c], consents) for c in singles]
            big = [retain_body(history, b, consents) for b in batches]
            for name, query in (("retain", ""), ("retain scores only", "?decisions=false")):
                url = f"http://127.0.0.1:{retain_port}/v1/score{query}"
                sequential(url, bodies[:50], headers)  # warm-up
                print(row(f"{name}, 1 customer, sequential", sequential(url, bodies[:300], headers)),
                      flush=True)
                latencies, wall, failed = uvloop.run(paced(url, bodies, args.rate, headers))
                print(row(f"{name}, 1 customer at {args.rate:.0f} req/s", latencies, wall, failed),
                      flush=True)
                print(row(f"{name}, 1,000 customers, sequential", sequential(url, big, headers)),
                      flush=True)

        with server([str(BIN / "mlflow"), "models", "serve", "-m", "models:/retain@champion",
                     "--env-manager", "local", "--host", "127.0.0.1", "--port", str(mlflow_port),
                     *workers],
                    env, f"http://127.0.0.1:{mlflow_port}/ping"):
            url = f"http://127.0.0.1:{mlflow_port}/invocations"
            bodies = [mlflow_body(history, [c]) for c in singles]
            sequential(url, bodies[:50], {})
            print(row("mlflow models serve, 1 customer, sequential", sequential(url, bodies[:300], {})), flush=True)
            latencies, wall, failed = uvloop.run(paced(url, bodies, args.rate, {}))
            print(row(f"mlflow models serve, 1 customer at {args.rate:.0f} req/s", latencies, wall, failed), flush=True)
            big = [mlflow_body(history, b) for b in batches]
            print(row("mlflow models serve, 1,000 customers, sequential", sequential(url, big, {})), flush=True)


if __name__ == "__main__":
    main()
