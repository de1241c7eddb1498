"""How fast the terminal answers: `retain --help`, every command's `--help` and `--version`.

    .venv/bin/python benchmarks/cli_help.py [--repo PATH] [--runs 7]

Each call runs in a fresh interpreter (`python -m retain ...` with the checkout at ``--repo``
first on the path, default this one), as a user's shell runs it; the figures are the median and
the best wall time of ``--runs`` calls, and the median CPU time (user + system) of the child,
which shared machines disturb less than wall time. Target: under 0.5 s each.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("simulate", "features", "inspect", "train", "evaluate", "score", "promote",
            "segments", "export", "rules", "serve")


def timed(args: list[str], repo: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one ``python -m retain <args>`` in a new process."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "retain", *args], env=env, cwd=repo, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    calls = [["--help"], *([name, "--help"] for name in COMMANDS)]
    if "--version" in subprocess.run([sys.executable, "-m", "retain", "--help"], cwd=options.repo,
                                     env={**os.environ, "PYTHONPATH": str(options.repo)},
                                     capture_output=True, text=True, check=False).stdout:
        calls.append(["--version"])
    print("| call | median wall s | best wall s | median CPU s |")
    print("|---|---|---|---|")
    for args in calls:
        runs = [timed(args, options.repo) for _ in range(options.runs)]
        walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
        print(f"| `retain {' '.join(args)}` | {statistics.median(walls):.2f} | {min(walls):.2f} "
              f"| {statistics.median(cpus):.2f} |", flush=True)


if __name__ == "__main__":
    main()
