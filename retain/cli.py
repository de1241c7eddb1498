"""The ``retain`` command: a thin layer over features/, models/, training/ and serving/."""

from __future__ import annotations

import os
import sys

# The API scores a few customers per request: polars' thread pool costs more than it saves on
# such small frames (one-customer p50 42 -> 30 ms), and parallelism comes from requests instead.
# polars reads this once, at import, so it is set before anything imports it.
if sys.argv[1:2] == ["serve"]:
    os.environ.setdefault("POLARS_MAX_THREADS", "1")

import typer

from retain.commands import data, decisions, serving, training

app = typer.Typer(
    name="retain",
    help="Churn, value and repurchase-timing predictions for retention marketing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app)
app.add_typer(training.app)
app.add_typer(decisions.app)
app.add_typer(serving.app)
