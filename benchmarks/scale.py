"""What docs/scale.md's plan is computed from: per-partition, per-core throughput and memory.

    .venv/bin/python benchmarks/scale.py [--customers 1000000] [--partitions 8] [--runs 2]
        [--train-customers 20000] [--btyd]

A simulated shop (cached in benchmarks/out/) is split into ``--partitions`` partitions by the
customer hash training samples by (``retain.training.sample.customer_hash``), as a Spark job
on customer-hash partitions would see it. Each of ``--runs`` partitions is processed in a
fresh process on ONE core (POLARS_MAX_THREADS=1, LightGBM num_threads=1): read its lines,
build the customer features (with the BTYD outputs) and score every customer with a pipeline
trained once on a smaller shop. It prints lines and customers per CPU second (the process's
CPU time: on a shared machine wall time also counts the wait for a core), Arrow
bytes per line, and the process's peak RSS. ``--btyd`` also times the BG/NBD fit on the
grouped RFM summary against the fit on one row per customer, on the whole shop.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from _shop import AS_OF, OUT, ROOT, shop_tables

CHILD = r"""
import json, pickle, resource, sys, time
import polars as pl
from retain.training.sample import customer_hash
path, pipeline_path, partition, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
from datetime import date
as_of = date.fromisoformat(sys.argv[5])
started = time.perf_counter()
ids = pl.read_parquet(path, columns=["customer_id"])["customer_id"].unique()
mine = ids.filter(pl.Series(customer_hash(ids) % partitions == partition))
tx = pl.scan_parquet(path).filter(pl.col("customer_id").is_in(mine.implode())).collect()
read = time.perf_counter() - started
pipeline = pickle.load(open(pipeline_path, "rb"))
for model in (pipeline.churn, pipeline.value, pipeline.timing):
    if model is not None:
        model.num_threads = 1
# CPU seconds beside wall seconds: on a shared machine the wall clock also counts waiting.
t, c = time.perf_counter(), time.process_time()
frame, products = pipeline.features(tx, as_of)
features, features_cpu = time.perf_counter() - t, time.process_time() - c
t, c = time.perf_counter(), time.process_time()
scores = pipeline.score_features(frame, products, as_of)
score, score_cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({
    "lines": tx.height, "customers": frame.height, "scored": scores.height,
    "tx_bytes": tx.estimated_size(), "features_bytes": frame.estimated_size(),
    "products_rows": products.height, "products_bytes": products.estimated_size(),
    "read_s": read, "features_s": features, "score_s": score,
    "features_cpu_s": features_cpu, "score_cpu_s": score_cpu,
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
}))
"""


def trained_pipeline(train_customers: int) -> Path:
    """A pipeline as `retain train`'s final fit makes it (BTYD, the three LightGBM models), no
    MLflow, no backtest: scoring cost is what is measured, not the model choice. Without the
    backtest the due product is scored by the customer's most bought product, not the ranker."""
    path = OUT / f"scale-pipeline-{train_customers}.pkl"
    if path.exists():
        return path
    import polars as pl

    from retain.training.backtest import TrainConfig, fit_pipeline

    tx = pl.read_parquet(shop_tables(train_customers, 1) / "transactions.parquet")
    started = time.perf_counter()
    pipeline = fit_pipeline(tx, AS_OF, TrainConfig(), progress=lambda _: None)
    print(f"trained on {train_customers:,} customers in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    path.write_bytes(pickle.dumps(pipeline))
    return path


def btyd_fit(path: Path) -> dict:
    import polars as pl

    from retain.features.customers import rfm_summary
    from retain.models.btyd import FITTERS, BTYDModel, _quiet

    rfm = rfm_summary(pl.scan_parquet(path), AS_OF)
    started = time.perf_counter()
    model = BTYDModel().fit(rfm)
    grouped = time.perf_counter() - started
    frame = rfm.to_pandas()
    frame = frame[frame["T"] > 0]
    started = time.perf_counter()
    fitter = FITTERS["bgnbd"]()
    with _quiet():
        fitter.fit(frame["frequency"], frame["recency"] / 7, frame["T"] / 7)
    ungrouped = time.perf_counter() - started
    diff = max(abs(model.params_[k] / float(v) - 1) for k, v in fitter.params_.items())
    return {"customers": model.fit_customers_, "groups": model.fit_groups_,
            "grouped_s": grouped, "per_customer_s": ungrouped, "max_rel_diff": diff,
            "spend_groups": model.spend_groups_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--btyd", action="store_true")
    args = parser.parse_args()
    path = shop_tables(args.customers, 1) / "transactions.parquet"
    pipeline = trained_pipeline(args.train_customers)
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    for partition in range(args.runs):
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(pipeline), str(partition),
                               str(args.partitions), AS_OF.isoformat()],
                              capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        row = json.loads(done.stdout.strip().splitlines()[-1])
        cpu = row["features_cpu_s"] + row["score_cpu_s"]
        row.update(partition=partition, of=args.partitions,
                   bytes_per_line=row["tx_bytes"] / row["lines"],
                   lines_per_cpu_s=row["lines"] / cpu, customers_per_cpu_s=row["customers"] / cpu,
                   load_average=os.getloadavg()[0])
        print(json.dumps(row), flush=True)
    if args.btyd:
        print(json.dumps({"btyd_bgnbd_fit": btyd_fit(path)}), flush=True)


if __name__ == "__main__":
    main()
