"""Feature-build benchmark: the whole `retain features` process beside lifetimes' RFM summary.

    .venv/bin/python benchmarks/features.py [--sizes 100000 1000000] [--runs 2] [--csv]
                                            [--skip-lifetimes-above 100000]

For each size, simulates a shop once (cached in benchmarks/out/; 100,000 customers give ~2.1M
transaction lines, 1,000,000 give ~20.7M), then runs each contender in a fresh process, as a
user would, and prints its wall time (start-up, reading, validation, computing and writing
included), its CPU time (user + system: the machines are shared, CPU time shows what another
process's load added to the wall time) and its peak RSS, from the kernel's accounting of that
child (wait4). Figures are recorded in docs/benchmarks.md.

Contenders:
- lifetimes: `summary_data_from_transaction_data` on the Parquet file (RFM only);
- retain rfm_summary: retain's RFM (same figures as lifetimes) in a Python process;
- `retain features`: the command, Parquet in: data contract (validation), every customer
  feature and the customer x product features, both written to Parquet;
- with --csv, `retain features` on the same lines as a UTF-8 CSV file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from _shop import AS_OF, OUT, ROOT, shop_parquet

LIFETIMES = """
import sys, warnings; warnings.simplefilter("ignore")
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data
tx = pd.read_parquet(sys.argv[1], columns=["customer_id", "ts", "amount"])
out = summary_data_from_transaction_data(tx, "customer_id", "ts", monetary_value_col="amount",
                                         observation_period_end=sys.argv[2])
print(len(out))
"""

RFM = """
import sys, datetime
import polars as pl
from retain.features.customers import rfm_summary
out = rfm_summary(pl.scan_parquet(sys.argv[1]), datetime.date.fromisoformat(sys.argv[2]))
print(out.height)
"""


def measure(command: list[str]) -> dict:
    """Wall and CPU seconds and peak RSS of one fresh process running ``command``."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage: ru_maxrss in KiB on Linux.
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    stdout, stderr = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{(stdout + stderr).decode()[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_gb": usage.ru_maxrss / 1024**2}


def csv_copy(parquet: Path) -> Path:
    """The same lines as a UTF-8 CSV, written once."""
    path = parquet.with_suffix(".csv")
    if not path.exists():
        import polars as pl

        pl.read_parquet(parquet).write_csv(path)
    return path


def contenders(path: Path, with_lifetimes: bool, with_csv: bool) -> dict[str, list[str]]:
    python = sys.executable
    retain = str(Path(python).with_name("retain"))
    out = OUT / "features-run"
    features = [retain, "features", "--as-of", AS_OF.isoformat(),
                "--out", str(out / "features.parquet")]
    runs: dict[str, list[str]] = {}
    if with_lifetimes:
        last_day = (AS_OF - timedelta(days=1)).isoformat()
        runs["lifetimes summary_data_from_transaction_data (RFM only)"] = [
            python, "-c", LIFETIMES, str(path), last_day]
    runs["retain rfm_summary (RFM only, same figures)"] = [python, "-c", RFM, str(path),
                                                           AS_OF.isoformat()]
    runs["`retain features` (validation + all features, Parquet)"] = [
        *features, "--transactions", str(path)]
    if with_csv:
        runs["`retain features` (validation + all features, CSV)"] = [
            *features, "--transactions", str(csv_copy(path))]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="shop sizes in customers (~20.7 lines each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2, help="runs of each contender")
    parser.add_argument("--csv", action="store_true", help="also `retain features` on a CSV copy")
    parser.add_argument("--skip-lifetimes-above", type=int, default=10**12, metavar="CUSTOMERS",
                        help="leave lifetimes out for larger shops (it takes ~40 s on 20M lines)")
    args = parser.parse_args()

    results = []
    for customers in args.sizes:
        path = shop_parquet(customers, args.seed)
        import pyarrow.parquet as pq

        n_rows = pq.ParquetFile(path).metadata.num_rows
        print(f"\n{customers:,} customers, {n_rows:,} transaction lines, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'contender':<58} {'wall s':>8} {'CPU s':>7} {'peak GB':>8}")
        runs = contenders(path, customers <= args.skip_lifetimes_above, args.csv)
        for name, command in runs.items():
            for _ in range(args.runs):
                r = {"customers": customers, "lines": n_rows, "name": name, **measure(command)}
                results.append(r)
                print(f"{name:<58} {r['wall']:>8.1f} {r['cpu']:>7.1f} {r['peak_gb']:>8.2f}",
                      flush=True)
        best = {name: min(r["wall"] for r in results
                          if r["name"] == name and r["customers"] == customers) for name in runs}
        lifetimes = next((v for k, v in best.items() if k.startswith("lifetimes")), None)
        ours = next(v for k, v in best.items() if "Parquet" in k)
        if lifetimes:
            print(f"whole `retain features` process {lifetimes / ours:.1f}x faster than lifetimes' "
                  "RFM summary (best wall of each)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "features.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
