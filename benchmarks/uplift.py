"""Offers by uplift: Qini and AUUC on a held-out simulated shop with known truth.

    .venv/bin/python benchmarks/uplift.py [--customers 20000] [--train-seed 42] [--test-seed 43]
                                          [--offer-share 0.3] [--out PATH]

Trains the offer uplift model on one simulated shop's past random offers (as `retain train
--contacts` does), then ranks another shop's customers, never seen, and judges retain's
targeting, "discount everyone lapsed 30 days" and random by the simulator's true response of
each customer to a discount. Prints the markdown section of docs/results.md (or writes it to
--out) and the raw figures as JSON on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from retain.training.uplift import results_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--train-seed", type=int, default=42)
    parser.add_argument("--test-seed", type=int, default=43)
    parser.add_argument("--offer-share", type=float, default=0.3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    section, evidence = results_section(args.customers, args.train_seed, args.test_seed,
                                        args.offer_share)
    json.dump({**evidence, "seconds": round(time.perf_counter() - started)}, sys.stderr,
              indent=1, default=str)
    if args.out:
        args.out.write_text(section + "\n")
    else:
        print(section)


if __name__ == "__main__":
    main()
