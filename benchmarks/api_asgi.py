"""In-process CPU cost of one customer's POST /v1/score through the whole ASGI app (routing,
middleware, keys, dependencies, the route, the response), without sockets: what the HTTP
framework adds to the route's own work (benchmarks/api_profile.py).

    .venv/bin/python benchmarks/api_asgi.py [--calls 1000] [--profile]

Uses api_profile's cached model (trained there on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
KEY = "bench-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from api import consent_flags, retain_body
    from api_profile import trained

    from retain.config import Settings
    from retain.models.registry import RegisteredPipeline
    from retain.serving.deps import ServedModel
    from retain.serving.main import create_app

    pipeline, shop, history = trained(args.customers)
    tmp = tempfile.mkdtemp()
    app = create_app(Settings(api_keys=json.dumps({KEY: ["score"]}),
                              store_url=f"sqlite:///{tmp}/retain.db", reload_interval=0))
    svc = app.state.service
    svc.holder.current = ServedModel(RegisteredPipeline(pipeline, "1"), "champion",
                                     datetime.now(UTC))
    consents = consent_flags(shop.customers)
    ids = history["customer_id"].unique().sort().to_list()
    rng = np.random.default_rng(0)
    raws = [orjson.dumps(retain_body(history, [rng.choice(ids)], consents)) for _ in range(200)]
    headers = [(b"host", b"127.0.0.1"), (b"x-api-key", KEY.encode()),
               (b"content-type", b"application/json")]

    async def one(raw: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/score", "raw_path": b"/v1/score",
                 "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
                 "client": ("127.0.0.1", 5000),
                 "headers": [*headers, (b"content-length", str(len(raw)).encode())]}
        sent = False
        status = 0

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    from retain.serving.routes import scores as route

    inner = [0.0]
    score_now = route.score_now

    def timed_score_now(*a, **k):
        begin = time.process_time()
        try:
            return score_now(*a, **k)
        finally:
            inner[0] += time.process_time() - begin

    route.score_now = timed_score_now

    async def run(n: int) -> tuple[float, float]:
        inner[0] = 0.0
        begin = time.process_time()
        for i in range(n):
            status = await one(raws[i % len(raws)])
            if status != 200:
                raise SystemExit(f"status {status}")
        whole = (time.process_time() - begin) / n * 1e6
        return whole, whole - inner[0] / n * 1e6

    async def session() -> None:
        await svc.store.open() if asyncio.iscoroutinefunction(svc.store.open) else svc.store.open()
        await run(50)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            await run(args.calls)
            profiler.disable()
            profiler.dump_stats("/tmp/asgi.prof")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            return
        runs = [await run(args.calls) for _ in range(3)]
        best = min(runs)
        print(f"CPU us per one-customer POST /v1/score through the ASGI app (best of 3 x "
              f"{args.calls}): {best[0]:.0f}, of which outside the route's score_now (middleware, "
              f"routing, dependencies, body, parsing, response, logs): "
              f"{min(r[1] for r in runs):.0f}")

    import logging

    with open(os.devnull, "w") as sink:
        logging.basicConfig(level="INFO", stream=sink)  # logged as `retain serve` logs
        asyncio.run(session())


if __name__ == "__main__":
    main()
