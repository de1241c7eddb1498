"""Feature-build benchmark: retain (polars) beside lifetimes on the same simulated rows.

    .venv/bin/python benchmarks/features.py [--customers 1000000] [--skip-lifetimes]

Simulates a shop once (cached in benchmarks/out/), writes its transactions to Parquet, then
runs each contender in a fresh process and prints wall time (start-up, read and compute) and
peak RSS side by side. Figures are recorded in docs/benchmarks.md.
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

from _shop import AS_OF, ROOT, shop_parquet

# Each contender reads the same Parquet and builds its frame; the child reports its peak RSS.
CONTENDERS = {
    "lifetimes summary_data_from_transaction_data (RFM)": """
import warnings; warnings.simplefilter("ignore")
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data
tx = pd.read_parquet(PATH, columns=["customer_id", "ts", "amount"])
out = summary_data_from_transaction_data(tx, "customer_id", "ts", monetary_value_col="amount",
                                         observation_period_end=LAST_DAY)
rows = len(out)
""",
    "retain rfm_summary (RFM)": """
import polars as pl
from retain.features.customers import rfm_summary
out = rfm_summary(pl.scan_parquet(PATH), AS_OF)
rows = out.height
""",
    "retain full feature set (customer + customer x product)": """
import polars as pl
from retain.features.customers import customer_features, observed_channels
from retain.features.products import customer_product_features
from retain.features.segments import lines_before
tx = pl.scan_parquet(PATH)
lines = lines_before(tx, AS_OF)
customers = customer_features(lines, AS_OF, observed_channels(tx))
products = customer_product_features(lines, AS_OF)
rows = customers.height
""",
    "retain validate + full feature set": """
import polars as pl
from retain.features.contract import load_transactions
from retain.features.customers import customer_features, observed_channels
from retain.features.products import customer_product_features
from retain.features.segments import lines_before
tx = load_transactions(PATH, as_of=AS_OF).frame
lines = lines_before(tx, AS_OF)
customers = customer_features(lines, AS_OF, observed_channels(tx))
products = customer_product_features(lines, AS_OF)
rows = customers.height
""",
}

CHILD = """
import time, json, datetime
started = time.perf_counter()
PATH = {path!r}
AS_OF = datetime.date.fromisoformat({as_of!r})
LAST_DAY = {last_day!r}
{body}
seconds = time.perf_counter() - started
# VmHWM is this process's own peak (ru_maxrss would carry the parent's over the exec).
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({{"seconds": seconds, "rows": rows, "peak_gb": peak_kb / 1024**2}}))
"""


def run(name: str, body: str, path: Path) -> dict:
    code = CHILD.format(path=str(path), as_of=AS_OF.isoformat(),
                        last_day=(AS_OF - timedelta(days=1)).isoformat(), body=body)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"name": name, "wall": wall, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()

    path = shop_parquet(args.customers, args.seed)
    import pyarrow.parquet as pq

    n_rows = pq.ParquetFile(path).metadata.num_rows
    print(f"{args.customers:,} customers, {n_rows:,} transaction rows, {os.cpu_count()} cores\n")
    print(f"{'contender':<58} {'wall s':>8} {'compute s':>10} {'peak GB':>8} {'customers':>10}")
    results = []
    for name, body in CONTENDERS.items():
        if args.skip_lifetimes and name.startswith("lifetimes"):
            continue
        r = run(name, body, path)
        results.append(r)
        print(f"{name:<58} {r['wall']:>8.1f} {r['seconds']:>10.1f} {r['peak_gb']:>8.2f} "
              f"{r['rows']:>10,}", flush=True)
    lifetimes = next((r for r in results if r["name"].startswith("lifetimes")), None)
    ours = next(r for r in results if r["name"].startswith("retain rfm"))
    if lifetimes:
        print(f"\nRFM speed-up over lifetimes: {lifetimes['wall'] / ours['wall']:.1f}x wall")


if __name__ == "__main__":
    main()
