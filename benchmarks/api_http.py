"""Server CPU per one-customer POST /v1/score through uvicorn, as `retain serve` runs it (one
worker, its protocol and logging), against the ASGI app's own cost (benchmarks/api_asgi.py):
what the HTTP server adds. No MLflow: the app serves api_profile's cached model.

    .venv/bin/python benchmarks/api_http.py [--calls 1000] [--rate 0] [--profile]

``--rate 0`` sends sequentially; a rate sends open loop (one worker's share of the
benchmark's 200 req/s is 100). ``--profile`` runs the server under cProfile and prints where
its time went (the route's own work included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
KEY = "bench-key-0123456789"


def serve(port: int, profile: str | None) -> None:
    """The server process: `retain serve`'s uvicorn options and log format, stderr to a file."""
    import logging

    import uvicorn
    from api_profile import trained

    from retain.config import Settings
    from retain.models.registry import RegisteredPipeline
    from retain.serving.deps import ServedModel, settle_heap
    from retain.serving.main import create_app

    pipeline, _, _ = trained(20_000)
    tmp = tempfile.mkdtemp()
    app = create_app(Settings(api_keys=json.dumps({KEY: ["score"]}),
                              store_url=f"sqlite:///{tmp}/retain.db", reload_interval=0))
    app.state.service.holder.current = ServedModel(RegisteredPipeline(pipeline, "1"), "champion",
                                                   datetime.now(UTC))
    settle_heap()  # as the holder does after a load
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False,
                            log_level="info", http="retain.serving.limits:HeaderLimitedProtocol")
    server = uvicorn.Server(config)
    if not profile:
        server.run()
        return
    import cProfile
    import signal

    # uvicorn raises the signal it stopped on again after shutdown: exit through Python, so
    # the profile is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        server.run()
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.profile_to)
        return
    import uvloop
    from api import RawClient, consent_flags, cpu_seconds, free_port, paced, ready, retain_body
    from api_profile import trained

    _, shop, history = trained(20_000)
    consents = consent_flags(shop.customers)
    ids = history["customer_id"].unique().sort().to_list()
    rng = np.random.default_rng(0)
    bodies = [retain_body(history, [rng.choice(ids)], consents) for _ in range(args.calls)]
    port = free_port()
    stats = "/tmp/api_http.prof"
    command = [sys.executable, __file__, "--serve", str(port)]
    if args.profile:
        command += ["--profile-to", stats]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stderr=log, stdout=subprocess.DEVNULL)
        try:
            while not ready(f"http://127.0.0.1:{port}/healthz"):
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(log.read().decode()[-2000:])
                time.sleep(0.3)
            url = f"http://127.0.0.1:{port}/v1/score"
            headers = {"X-API-Key": KEY}

            async def sequential(batch: list[dict]) -> list[float]:
                client = RawClient(url, headers)
                done = [await client.timed(r) for r in [client.encode(b) for b in batch]]
                client.close()
                if None in done:
                    raise SystemExit("a request failed")
                return done  # type: ignore[return-value]

            uvloop.run(sequential(bodies[:100]))  # warm-up
            before = cpu_seconds(process.pid)
            if args.rate:
                latencies, _, failed = uvloop.run(paced(url, bodies, args.rate, headers))
            else:
                latencies, failed = uvloop.run(sequential(bodies)), 0
            used = cpu_seconds(process.pid) - before
            p50, p99 = np.percentile(latencies, [50, 99])
            print(f"{'sequential' if not args.rate else f'{args.rate:.0f} req/s'}: "
                  f"{len(latencies)} requests ({failed} failed), p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms, server CPU {used / len(latencies) * 1e6:.0f} us/request")
        finally:
            process.terminate()
            process.wait(timeout=30)
        # The service's own log lines: the route's scoring and the whole app, wall ms each.
        log.seek(0)
        text = log.read().decode()
        for label, pattern in (("scoring (route)", r"scored .* in ([0-9.]+) ms"),
                               ("app (middleware)", r"POST /v1/score 200 ([0-9.]+) ms")):
            found = [float(m) for m in re.findall(pattern, text)][-len(latencies):]
            print(f"  {label}: p50 {np.median(found):.2f} ms over {len(found)} requests")
    if args.profile:
        import pstats

        pstats.Stats(stats).sort_stats("tottime").print_stats(45)


if __name__ == "__main__":
    main()
