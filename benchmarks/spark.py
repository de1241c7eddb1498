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


def _tree(root: int) -> dict[int, tuple[float, int]]:
    """Every live process under ``root`` (itself included): CPU seconds (user + sys) and RSS
    bytes, from /proc."""
    parents: dict[int, int] = {}
    stats: dict[int, tuple[float, int]] = {}
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state ppid ... utime(12) stime(13) ... rss(22), 0-based.
        parents[int(entry)] = int(fields[1])
        stats[int(entry)] = ((int(fields[11]) + int(fields[12])) / tick, int(fields[21]) * page)
    inside, changed = {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in inside and pid not in inside:
                inside.add(pid)
                changed = True
    return {pid: stats[pid] for pid in inside if pid in stats}


def run(args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """One command in a fresh process: wall seconds, CPU seconds (user + sys) of it and every
    process under it (the JVM and Spark's Python workers), the peak RSS summed over that tree
    and of its largest process (GB), and the mean 1-minute load average while it ran. The tree
    is sampled every 0.2 s; the command's own process is counted exactly from its rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    loads = [os.getloadavg()[0]]
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL)
    cpu: dict[int, float] = {}
    peak_total = peak_one = 0
    while process.poll() is None:
        tree = _tree(process.pid)
        for pid, (seconds, _) in tree.items():
            cpu[pid] = max(cpu.get(pid, 0.0), seconds)
        peak_total = max(peak_total, sum(rss for _, rss in tree.values()))
        peak_one = max([peak_one, *(rss for _, rss in tree.values())])
        loads.append(os.getloadavg()[0])
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The exact rusage covers the command and whatever it waited for; the rest of the tree
    # (the JVM, its Python workers) from the last samples.
    others = sum(seconds for pid, seconds in cpu.items() if pid != process.pid)
    # RUSAGE_CHILDREN's maxrss is the largest child ever waited for, an earlier run's too:
    # it speaks for this run only when this run raised it.
    own_peak = after.ru_maxrss * 1024 if after.ru_maxrss > before.ru_maxrss else 0
    gb = 1024 ** 3
    return {"wall_s": wall, "cpu_s": max(own, cpu.get(process.pid, 0.0)) + others,
            "peak_rss_tree_gb": max(peak_total, own_peak) / gb,
            "peak_rss_largest_gb": max(peak_one, own_peak) / gb,
            "load_mean": sum(loads) / len(loads), "load_max": max(loads)}


PER_PARTITION = """
import json, sys, time
import polars as pl
from retain.features.contract import validate_transactions
from retain.features.customers import customer_features, observed_channels
from retain.features.products import customer_product_features
path, partitions, as_of = sys.argv[1], int(sys.argv[2]), __import__("datetime").date.fromisoformat(sys.argv[3])
tx = pl.read_parquet(path)
ids = tx.get_column("customer_id").cast(pl.String).str.strip_chars()
bucket = tx.filter(ids.hash(seed=0) % partitions == 0).to_arrow()
channels = observed_channels(tx)
del tx
started = time.perf_counter()
loaded = validate_transactions(bucket, "bucket", as_of=as_of).frame.drop("_row")
validated = time.perf_counter()
customers = customer_features(loaded, as_of, channels)
products = customer_product_features(loaded, as_of)
done = time.perf_counter()
print(json.dumps({"lines": bucket.num_rows, "customers": customers.height,
                  "products": products.height, "validate_s": validated - started,
                  "features_s": done - validated}))
"""


def per_partition(parquet: Path, partitions: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PER_PARTITION, str(parquet), str(partitions),
                          AS_OF.isoformat()], cwd=ROOT, check=True, capture_output=True,
                         text=True, env={**os.environ, "POLARS_MAX_THREADS": "1",
                                         "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(measured: dict[str, float]) -> str:
    return (f"wall {measured['wall_s']:.1f} s, CPU (user+sys, whole process tree) "
            f"{measured['cpu_s']:.1f} s, peak RSS {measured['peak_rss_tree_gb']:.2f} GB summed "
            f"over the tree ({measured['peak_rss_largest_gb']:.2f} GB its largest process), "
            f"load average {measured['load_mean']:.1f} mean / {measured['load_max']:.1f} max "
            f"while it ran; {json.dumps(measured)}")


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
          f"{os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        common = ["features", "--transactions", str(parquet), "--as-of", AS_OF.isoformat()]
        if not options.skip_local:
            measured = run([*RETAIN, *common, "--out", f"{tmp}/local.parquet"])
            print(f"local engine: {describe(measured)}", flush=True)
        if not options.skip_spark:
            measured = run([*RETAIN, *common, "--out", f"{tmp}/spark.parquet", "--engine",
                            "spark", "--spark-master", options.master, "--partitions",
                            str(options.partitions)])
            print(f"spark {options.master}, {options.partitions} partitions: "
                  f"{describe(measured)}", flush=True)
    one = per_partition(parquet, options.partitions)
    seconds = one["validate_s"] + one["features_s"]
    print(f"one partition (1/{options.partitions}): {one['lines']:,} lines, "
          f"{one['customers']:,} customers, {one['products']:,} customer x product rows; "
          f"validate {one['validate_s']:.2f} s + features {one['features_s']:.2f} s on one core "
          f"= {one['customers'] / seconds:,.0f} customers/s, {one['lines'] / seconds:,.0f} "
          "lines/s per core")


if __name__ == "__main__":
    main()
