"""The Spark engine beside the local one on the same Parquet, and the per-partition throughput.

    .venv/bin/python benchmarks/spark.py [--customers 100000] [--parquet PATH] [--partitions 8]
        [--master local[2]] [--skip-local] [--skip-spark]

1. ``retain features`` (customer and customer x product features) with ``--engine local`` and
   with ``--engine spark --spark-master local[2]``, each in a fresh process: wall time (start-up,
   JVM, read, validate, compute, write) and the peak RSS of the largest process (the JVM for
   Spark; Spark's Python workers are separate processes, also counted in "largest").
2. The per-partition work alone, what a Spark executor core does with one bucket: one bucket of
   customers (a 1/``partitions`` hash share) validated by the contract's loader and turned into
   both feature sets, in one process with one polars thread: customers/s and lines/s per core.
   This is the figure docs/scale.md plans from (executors x cores x this = the cluster's rate).

Figures go to docs/benchmarks.md ("Spark").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shop import AS_OF, ROOT, shop_parquet

RETAIN = [sys.executable, "-m", "retain"]


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of the largest child process of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return wall, peak / 1024 / 1024


PER_PARTITION = """
import json, sys, tempfile, time
from pathlib import Path
import polars as pl
from retain.features.contract import load_transactions
from retain.features.customers import customer_features, observed_channels
from retain.features.products import customer_product_features
path, partitions, as_of = sys.argv[1], int(sys.argv[2]), __import__("datetime").date.fromisoformat(sys.argv[3])
tx = pl.read_parquet(path)
ids = tx.get_column("customer_id").cast(pl.String).str.strip_chars()
bucket = tx.filter(ids.hash(seed=0) % partitions == 0)
channels = observed_channels(tx)
del tx
with tempfile.TemporaryDirectory() as tmp:
    part = Path(tmp) / "bucket.parquet"
    bucket.write_parquet(part)
    started = time.perf_counter()
    loaded = load_transactions(part, as_of=as_of).frame.drop("_row")
    validated = time.perf_counter()
    customers = customer_features(loaded, as_of, channels)
    products = customer_product_features(loaded, as_of)
    done = time.perf_counter()
print(json.dumps({"lines": bucket.height, "customers": customers.height,
                  "products": products.height, "validate_s": validated - started,
                  "features_s": done - validated}))
"""


def per_partition(parquet: Path, partitions: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PER_PARTITION, str(parquet), str(partitions),
                          AS_OF.isoformat()], cwd=ROOT, check=True, capture_output=True,
                         text=True, env={**os.environ, "POLARS_MAX_THREADS": "1",
                                         "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parquet", type=Path, help="Transactions to use instead of a simulated shop.")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-spark", action="store_true")
    options = parser.parse_args()
    parquet = options.parquet or shop_parquet(options.customers, options.seed)
    import polars as pl

    lines = pl.scan_parquet(parquet).select(pl.len()).collect().item()
    print(f"{parquet}: {lines:,} lines; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        common = ["features", "--transactions", str(parquet), "--as-of", AS_OF.isoformat()]
        if not options.skip_local:
            wall, rss = run([*RETAIN, *common, "--out", f"{tmp}/local.parquet"])
            print(f"local engine: {wall:.1f} s, peak RSS {rss:.2f} GB")
        if not options.skip_spark:
            wall, rss = run([*RETAIN, *common, "--out", f"{tmp}/spark.parquet", "--engine", "spark",
                             "--spark-master", options.master, "--partitions",
                             str(options.partitions)])
            print(f"spark {options.master}, {options.partitions} partitions: {wall:.1f} s, "
                  f"largest process peak RSS {rss:.2f} GB")
    one = per_partition(parquet, options.partitions)
    seconds = one["validate_s"] + one["features_s"]
    print(f"one partition (1/{options.partitions}): {one['lines']:,} lines, "
          f"{one['customers']:,} customers, {one['products']:,} customer x product rows; "
          f"validate {one['validate_s']:.2f} s + features {one['features_s']:.2f} s on one core "
          f"= {one['customers'] / seconds:,.0f} customers/s, {one['lines'] / seconds:,.0f} "
          "lines/s per core")


if __name__ == "__main__":
    main()
