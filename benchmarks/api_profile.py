"""In-process CPU cost of one customer's POST /v1/score, stage by stage (no HTTP, no load).

    .venv/bin/python benchmarks/api_profile.py [--customers 20000] [--calls 2000] [--profile]

Trains the benchmark's model once (cached as a pickle under /tmp), then calls the route's own
functions for one-customer bodies: parse + validate, the transactions frame, the features, the
scores, the decisions, the response. CPU microseconds per call (time.process_time over many
calls): the figure that stays comparable on a shared machine, whose wall latencies drift.
"""

from __future__ import annotations

import argparse
import os

# One polars thread, as the benchmark's servers run (set before polars is imported).
os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import pickle
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
AS_OF = date(2026, 7, 1)


def trained(customers: int):
    cache = Path(tempfile.gettempdir()) / f"retain-api-profile-{customers}.pkl"
    from retain.simulate import simulate_shop

    shop = simulate_shop(customers, seed=3)
    history = shop.transactions.with_columns(pl.col("quantity").cast(pl.Float64))
    if cache.exists():
        return pickle.loads(cache.read_bytes()), shop, history
    from retain.training.backtest import TrainConfig
    from retain.training.train import train

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        here = os.getcwd()
        os.chdir(tmp)
        try:
            pipeline = train(history, AS_OF, TrainConfig(), progress=lambda _: None,
                             contacts=shop.contacts).pipeline
        finally:
            os.chdir(here)
    cache.write_bytes(pickle.dumps(pipeline))
    return pipeline, shop, history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="cProfile the whole request")
    args = parser.parse_args()
    from api import consent_flags, retain_body

    from retain.decisions.decide import decide
    from retain.decisions.rules import default_rules
    from retain.serving.routes import scores as route

    pipeline, shop, history = trained(args.customers)
    rules = default_rules()
    consents = consent_flags(shop.customers)
    ids = history["customer_id"].unique().sort().to_list()
    rng = np.random.default_rng(0)
    raws = [orjson.dumps(retain_body(history, [rng.choice(ids)], consents))
            for _ in range(200)]
    n = args.calls

    def staged() -> dict[str, float]:
        spent = dict.fromkeys(("parse", "frame", "features", "score", "decide", "respond"), 0.0)
        clock = time.process_time
        for i in range(n):
            raw = raws[i % len(raws)]
            t0 = clock()
            body = route.parse_score_request(raw)
            t1 = clock()
            frame = route.transactions_frame(body)
            consent = route.consents_frame(body)
            contacts = route.recent_messages_frame(body)
            t2 = clock()
            features, products = pipeline.features(frame, body.as_of)
            t3 = clock()
            scores = pipeline.score_features(features, products, body.as_of)
            t4 = clock()
            decided = decide(scores, features, as_of=body.as_of, rules=rules,
                             reference=pipeline.reference, channels=pipeline.channel_measurements,
                             consents=consent, contacts=contacts, lang=body.lang)
            # No order history: the route asks for none (its response has no such fields).
            t5 = clock()
            payload = route.scores_payload(body, decided, _Served(pipeline))
            orjson.dumps(payload)
            t6 = clock()
            for key, a, b in (("parse", t0, t1), ("frame", t1, t2), ("features", t2, t3),
                              ("score", t3, t4), ("decide", t4, t5), ("respond", t5, t6)):
                spent[key] += b - a
        return {k: v / n * 1e6 for k, v in spent.items()}

    staged()  # warm-up
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        staged()
        profiler.disable()
        profiler.dump_stats("/tmp/api.prof"); pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    results = [staged() for _ in range(3)]
    best = {k: min(r[k] for r in results) for k in results[0]}
    total = sum(best.values())
    print(f"CPU us per one-customer request (best of 3 x {n} calls): "
          + ", ".join(f"{k} {v:.0f}" for k, v in best.items()) + f"; total {total:.0f}")


class _Served:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.version = "1"


if __name__ == "__main__":
    main()
