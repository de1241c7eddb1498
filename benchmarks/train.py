"""Training benchmark: wall time and peak memory of `retain train` on simulated shops.

    .venv/bin/python benchmarks/train.py [--customers 100000 1000000]

Each shop is simulated once (cached in benchmarks/out/), then `retain train` runs in a fresh
process against a throw-away MLflow store; its peak RSS is read from the kernel after it exits.
Targets on 2 cores: 100k customers under 5 min, 1M under 30 min, under 12 GB peak.
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

from _shop import ROOT, shop_parquet

RETAIN = Path(sys.executable).parent / "retain"


def run_train(parquet: Path) -> tuple[float, float, str]:
    """(wall seconds, peak GB, last lines of output) for one `retain train` in a child."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "COLUMNS": "120"}
        started = time.perf_counter()
        done = subprocess.run([str(RETAIN), "train", "--transactions", str(parquet), "--as-of",
                               "2026-07-01"], cwd=tmp, env=env, capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"retain train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    # This process has no other children, so the children's maximum is that run's peak.
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    tail = [line for line in (done.stdout + done.stderr).splitlines() if ": retain " in line]
    return wall, peak_gb, "\n".join(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # child mode: one measurement in a process with no other children
        wall, peak, tail = run_train(args.measure)
        print(f"{wall:.1f} {peak:.2f}")
        print(tail)
        return
    print(f"{'customers':>10} {'rows':>12} {'wall':>10} {'peak GB':>8}   headline metrics")
    for customers in args.customers:
        parquet = shop_parquet(customers, args.seed)
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(parquet).metadata.num_rows
        done = subprocess.run([sys.executable, __file__, "--measure", str(parquet)], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        first, *rest = done.stdout.strip().splitlines()
        wall, peak = (float(x) for x in first.split())
        print(f"{customers:>10,} {rows:>12,} {wall / 60:>8.1f} m {peak:>8.2f}   "
              + " | ".join(line.strip() for line in rest), flush=True)


if __name__ == "__main__":
    main()
