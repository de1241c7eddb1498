"""Write the bytecode of every module the commands import, once, at install time.

uv installs packages without their .pyc files, and a shell with PYTHONDONTWRITEBYTECODE=1 (common
in containers) never writes them: then every `retain` command compiles polars, numpy, typer, ...
from source on each start, ~1 s of CPU before any work (measured on 2 cores; `retain features` on
100k customers takes ~3 s in all). Importing the command modules with bytecode writing on leaves
the .pyc files in place; Python still recompiles any source that changes after.
"""

from __future__ import annotations

import importlib
import sys

# What `retain features`, `score`, `train` and `serve` import on their way to work.
MODULES = (
    "retain.cli", "retain.commands.data", "retain.features.contract", "retain.features.customers",
    "retain.features.products", "retain.features.labels", "polars", "numpy", "pyarrow.parquet",
    "rich.table", "retain.training.train", "retain.serving.main",
)

if __name__ == "__main__":
    sys.dont_write_bytecode = False
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a missing optional module only costs speed
            print(f"compile_imports: {name} not imported ({type(exc).__name__}: {exc})",
                  file=sys.stderr)
