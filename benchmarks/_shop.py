"""The simulated shop the benchmarks share, written once to benchmarks/out/ (gitignored)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
AS_OF = date(2026, 7, 1)


def shop_parquet(customers: int, seed: int) -> Path:
    path = OUT / f"transactions-{customers}-{seed}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # In a child process, so this one stays small while the contenders run.
    code = (f"from features.simulate import simulate_shop; import datetime; "
            f"simulate_shop({customers}, seed={seed}, as_of=datetime.date.fromisoformat("
            f"{AS_OF.isoformat()!r})).transactions.write_parquet({str(path)!r})")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"simulated {customers:,} customers in {time.perf_counter() - started:.0f} s -> {path}",
          file=sys.stderr)
    return path
