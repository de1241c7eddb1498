"""The ``retain`` command: a thin layer over features/, models/, training/ and serving/."""

from __future__ import annotations

import typer

from retain.commands import data, serving, training

app = typer.Typer(
    name="retain",
    help="Churn, value and repurchase-timing predictions for retention marketing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app)
app.add_typer(training.app)
app.add_typer(serving.app)
