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
    """The shop's transactions (Parquet), simulated once."""
    return shop_tables(customers, seed) / "transactions.parquet"


def shop_tables(customers: int, seed: int) -> Path:
    """A directory with the shop's transactions, customers and contacts (Parquet), cached."""
    folder = OUT / f"shop-{customers}-{seed}"
    if (folder / "contacts.parquet").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    code = (f"from retain.simulate import simulate_shop; import datetime; "
            f"shop = simulate_shop({customers}, seed={seed}, as_of=datetime.date.fromisoformat("
            f"{AS_OF.isoformat()!r})); "
            f"[getattr(shop, name).write_parquet({str(folder)!r} + f'/{{name}}.parquet') "
            f"for name in ('transactions', 'customers', 'contacts')]")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"simulated {customers:,} customers in {time.perf_counter() - started:.0f} s -> {folder}",
          file=sys.stderr)
    return folder
