"""Batch scoring benchmark: `retain score` end to end on a simulated shop of 1M customers.

    .venv/bin/python benchmarks/score.py [--customers 1000000] [--train-customers 100000]
        [--store-url postgresql+psycopg://...]

A model is trained once (with its contacts log) on a smaller shop into a throw-away MLflow
store; then `retain score` reads the big shop's transactions, customers (consents) and
contacts log, scores and decides for every customer, writes Parquet and the score store
(SQLite by default), in a fresh process whose peak RSS is read from the kernel after it exits;
then `retain export` streams the whole run back out as CSV (constant memory: its peak).
Target on 2 cores: 1M customers / 20M transactions under 3 minutes and under 8 GB peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shop import AS_OF, ROOT, shop_tables

RETAIN = Path(sys.executable).parent / "retain"


def retain(*args: str, cwd: str, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(RETAIN), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"retain {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store-url", help="Score store URL (default: a SQLite file)")
    args = parser.parse_args()
    train_shop = shop_tables(args.train_customers, args.seed)
    shop = shop_tables(args.customers, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
               "COLUMNS": "120",
               "RETAIN_STORE_URL": args.store_url or f"sqlite:///{tmp}/retain.db"}
        trained = retain("train", "--transactions", str(train_shop / "transactions.parquet"),
                         "--contacts", str(train_shop / "contacts.parquet"),
                         "--as-of", AS_OF.isoformat(), cwd=tmp, env=env)
        print(f"trained on {args.train_customers:,} customers in {trained / 60:.1f} min",
              flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        wall = retain("score", "--transactions", str(shop / "transactions.parquet"),
                      "--customers", str(shop / "customers.parquet"),
                      "--contacts", str(shop / "contacts.parquet"),
                      "--as-of", AS_OF.isoformat(), "--out", f"{tmp}/scores.parquet",
                      cwd=tmp, env=env)
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        if peak_gb * 1024**2 <= before:
            print("note: the training run's peak was higher; the scoring peak is at most that")
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(shop / "transactions.parquet").metadata.num_rows
        scored = pq.ParquetFile(f"{tmp}/scores.parquet").metadata.num_rows
        store = "PostgreSQL" if args.store_url else "SQLite"
        print(f"{args.customers:,} customers, {rows:,} transaction lines: {scored:,} scored with "
              f"decisions into Parquet and the {store} store in {wall:.0f} s "
              f"({wall / 60:.1f} min), peak {peak_gb:.2f} GB", flush=True)
        # The whole run streamed back out of the store, in a process of its own.
        code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                f"subprocess.run([{str(RETAIN)!r}, 'export', '--excel', '--out', "
                f"{tmp + '/all.csv'!r}], check=True, capture_output=True); "
                "print(time.perf_counter() - t, "
                "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, check=True,
                              capture_output=True, text=True)
        export_wall, export_mb = (float(x) for x in done.stdout.split())
        size_mb = Path(f"{tmp}/all.csv").stat().st_size / 1024**2
        print(f"retain export of all {scored:,} rows to CSV ({size_mb:,.0f} MB): "
              f"{export_wall:.0f} s, peak {export_mb:,.0f} MB", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
