"""API benchmark: retain's FastAPI service beside `mlflow models serve`, same model, same run.

    .venv/bin/python benchmarks/api.py [--customers 20000] [--requests 2000] [--rate 200]
                                       [--rounds 3] [--workers 2] [--skip-mlflow]

Trains a model on a simulated shop into a throw-away MLflow store, starts both servers on
127.0.0.1 (two workers each, one per core, unless ``--workers``; LightGBM and polars on one
thread) and drives them from this process: sequential one-customer requests, ``--rounds`` runs
of one-customer requests at a fixed rate (open loop, so slow answers cannot slow the sender),
then sequential 1,000-customer batches. retain runs twice: with its decisions (the default;
each customer sends their consents) and scores only (``?decisions=false``, what `mlflow models
serve` returns). Each row also gives the server's CPU time per request, read from /proc: the
figure to compare across runs on a shared machine, whose speed drifts. Bounded in count and
time; both servers are stopped at the end. Targets on 2 cores: one customer p50 < 5 ms, p99 <
30 ms; 1,000 customers < 300 ms; and faster than `mlflow models serve`.
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
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a server process and all its descendants (workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        child = int(stat.parent.name)
        parent[child] = int(fields[1])
        used[child] = (int(fields[11]) + int(fields[12])) / tick
    def descends(p: int) -> bool:
        while p > 1:
            if p == pid:
                return True
            p = parent.get(p, 0)
        return False
    return sum(seconds for p, seconds in used.items() if descends(p))


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
        while self.idle:
            connection = self.idle.pop()
            if not (connection[1].is_closing() or connection[0].at_eof()):
                break
            connection[1].close()
        else:
            connection = await asyncio.open_connection(self.target.host, self.target.port)
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
        except (TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError, IndexError):
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


def row(name: str, latencies: list[float], wall: float | None = None, failures: int = 0,
        cpu_s: float | None = None) -> str:
    if not latencies:
        return f"{name:<48} {0:>6} {'-':>9} {'-':>9} {'-':>8} req/s  failed {failures}"
    p50, p99 = np.percentile(latencies, [50, 99])
    rate = f"{len(latencies) / wall:8.0f}" if wall else f"{1000 / np.mean(latencies):8.1f}"
    cpu = f"{cpu_s * 1000 / len(latencies):>9.2f}" if cpu_s is not None else f"{'-':>9}"
    failed = f"  failed {failures}" if failures else ""
    return f"{name:<48} {len(latencies):>6} {p50:>9.2f} {p99:>9.2f} {rate} req/s {cpu}{failed}"


def suite(name: str, url: str, pid: int, singles: list[dict], batches: list[dict],
          headers: dict, rate: float, rounds: int) -> None:
    """Sequential single-customer requests, ``rounds`` paced runs at ``rate``, then sequential
    batches: one printed row each, with the server's CPU time per request."""
    def measured(label: str, run) -> None:
        before = cpu_seconds(pid)
        latencies, wall, failed = run()
        print(row(f"{name}, {label}", latencies, wall, failed, cpu_seconds(pid) - before),
              flush=True)

    sequential(url, singles[:50], headers)  # warm-up
    measured("1 customer, sequential",
             lambda: (sequential(url, singles[:300], headers), None, 0))
    for _ in range(rounds):
        measured(f"1 customer at {rate:.0f} req/s",
                 lambda: uvloop.run(paced(url, singles, rate, headers)))
    measured("1,000 customers, sequential", lambda: (sequential(url, batches, headers), None, 0))


def large_bodies(url: str, headers: dict, bodies: int = 8) -> None:
    """/healthz latency while ``bodies`` ~8 MB scoring requests are parsed at once (target: the
    worst probe under 50 ms). Each body repeats a customer id at its end, so it is parsed and
    validated in full, then refused (422) before any scoring."""
    import threading

    line = {"ts": "2026-03-02T10:15:00Z", "amount": 42.5, "order_id": "O-1001",
            "product_id": "P-12", "quantity": 2, "channel": "web"}
    customers = [{"customer_id": f"C{i:05d}", "transactions": [line] * 75} for i in range(1000)]
    customers[-1]["customer_id"] = "C00000"
    raw = orjson.dumps({"as_of": AS_OF.isoformat(), "customers": customers})
    statuses: list[int] = []

    def post() -> None:
        statuses.append(httpx.post(f"{url}/v1/score", content=raw, timeout=300, headers={
            **headers, "Content-Type": "application/json"}).status_code)

    posters = [threading.Thread(target=post) for _ in range(bodies)]
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        http.get("/healthz")
        for poster in posters:
            poster.start()
        while any(p.is_alive() for p in posters):
            begin = time.perf_counter()
            http.get("/healthz")
            latencies.append(time.perf_counter() - begin)
            time.sleep(0.01)
    ms = np.array(latencies) * 1000
    print(f"/healthz during {bodies} x {len(raw) / 2**20:.1f} MB bodies (statuses "
          f"{sorted(set(statuses))}): {ms.size} probes, p50 {np.median(ms):.1f} ms, "
          f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="paced runs per server")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes per server (default: one per core of 2)")
    parser.add_argument("--skip-mlflow", action="store_true", help="retain only (quicker)")
    parser.add_argument("--large-bodies-only", action="store_true",
                        help="only /healthz while eight 8 MB bodies are parsed")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from retain.simulate import simulate_shop
    from retain.training.backtest import TrainConfig
    from retain.training.train import train

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
        print(f"{'server / request':<48} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'throughput':>14} "
              f"{'server CPU ms/request':>9}")

        retain_port, mlflow_port = free_port(), free_port()
        workers = ["--workers", str(args.workers)]
        with server([str(BIN / "retain"), "serve", "--host", "127.0.0.1", "--port", str(retain_port),
                     *workers], env, f"http://127.0.0.1:{retain_port}/readyz") as pid:
            headers = {"X-API-Key": KEY}
            large_bodies(f"http://127.0.0.1:{retain_port}", headers)
            if args.large_bodies_only:
                return
            bodies = [retain_body(history, [c], consents) for c in singles]
            big = [retain_body(history, b, consents) for b in batches]
            for name, query in (("retain", ""), ("retain scores only", "?decisions=false")):
                suite(name, f"http://127.0.0.1:{retain_port}/v1/score{query}", pid, bodies, big,
                      headers, args.rate, args.rounds)
        if args.skip_mlflow:
            return
        with server([str(BIN / "mlflow"), "models", "serve", "-m", "models:/retain@champion",
                     "--env-manager", "local", "--host", "127.0.0.1", "--port", str(mlflow_port),
                     *workers],
                    env, f"http://127.0.0.1:{mlflow_port}/ping") as pid:
            suite("mlflow models serve", f"http://127.0.0.1:{mlflow_port}/invocations", pid,
                  [mlflow_body(history, [c]) for c in singles],
                  [mlflow_body(history, b) for b in batches], {}, args.rate, args.rounds)


if __name__ == "__main__":
    main()
