"""Export benchmark: `retain export` of a stored run as CSV, Excel CSV, XLSX and Parquet.

    .venv/bin/python benchmarks/export.py [--rows 100000] [--formats csv,excel,xlsx,parquet]

A run of synthetic scores and decisions (every column of the store, built columnar) is written
to a throw-away SQLite score store; then each export runs as `retain export` in a fresh process
whose wall time and peak RSS are read from the kernel after it exits. The XLSX export is
written in xlsxwriter's constant-memory mode, so its peak should not grow with the rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 7, 1)


def synthetic_run(rows: int, seed: int = 1):
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    segments = ["at_risk-vip-stock_up", "active-high-hedonist", "lost-low-occasional"]
    goals = ["win_back", "replenish", "none", "control"]
    return pl.DataFrame({
        "customer_id": [f"C{n:08d}" for n in range(rows)],
        "horizon_days": np.full(rows, 90, dtype=np.int32),
        "p_alive": rng.random(rows), "churn_probability": rng.random(rows),
        "expected_orders": rng.gamma(2.0, 1.0, rows),
        "predicted_revenue": rng.gamma(2.0, 500.0, rows),
        "clv_12m": rng.gamma(2.0, 2000.0, rows),
        "days_ahead": rng.integers(0, 365, rows),
        "overdue_days": rng.exponential(10.0, rows),
        "due_product_id": [f"P{n % 997}" for n in range(rows)],
        "score_source": ["gbm"] * rows,
        "segment": (segments * (rows // 3 + 1))[:rows],
        "goal": (goals * (rows // 4 + 1))[:rows],
        "channel": (["email", "sms", None] * (rows // 3 + 1))[:rows],
        "reason": ["Клиент не покупал 45 дн., обычно раз в 20 дн."] * rows,
        "control_group": rng.random(rows) < 0.1,
        "expected_incremental_revenue": rng.gamma(2.0, 50.0, rows),
        "contact_cost": rng.choice([0.0, 0.5, 3.0], rows),
    }).with_columns(
        as_of=pl.lit(AS_OF),
        next_order_date=pl.lit(AS_OF) + pl.duration(days=pl.col("days_ahead")),
        lifecycle_stage=pl.col("segment").str.split("-").list.first(),
    ).drop("days_ahead")


def timed(args: list[str], env: dict, cwd: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,excel,xlsx,parquet")
    args = parser.parse_args()
    from retain.serving.store import ScoreStore

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/retain.db"
        with ScoreStore(url).open() as store:
            store.write_run(synthetic_run(args.rows), model_version="1", as_of=AS_OF)
        env = {**os.environ, "RETAIN_STORE_URL": url, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
        for fmt in args.formats.split(","):
            out = f"{tmp}/all.{'csv' if fmt == 'excel' else fmt}"
            flags = ["--excel"] if fmt == "excel" else ["--format", fmt]
            wall, cpu, peak = timed([sys.executable, "-m", "retain", "export", *flags, "--out", out],
                               env, tmp)
            size = Path(out).stat().st_size / 1024**2
            print(f"{args.rows:,} rows, {fmt}: {wall:.1f} s ({cpu:.1f} s CPU), peak {peak:,.0f} MB, "
                  f"file {size:,.1f} MB", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
