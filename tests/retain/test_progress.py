"""Elapsed time per step of a long command (retain.progress)."""

from __future__ import annotations

import pytest

from retain import progress
from retain.commands.training import TrainingSteps
from retain.progress import StepClock, elapsed


@pytest.fixture
def clock(monkeypatch) -> StepClock:
    now = iter(range(0, 1000, 1))  # every reading of the clock is one second later
    monkeypatch.setattr(progress.time, "perf_counter", lambda: float(next(now)))
    return StepClock()


def test_elapsed_reads_as_people_read_time():
    assert elapsed(0.04) == "0.0 s"
    assert elapsed(12.34) == "12.3 s"
    assert elapsed(125.2) == "2 min 05 s"


def test_a_step_that_runs_again_adds_up(clock):
    for step in ("load", "features", "backtest", "features", "fit"):
        clock.switch(step)
    clock.stop()
    assert clock.totals == {"load": 1.0, "features": 2.0, "backtest": 1.0, "fit": 1.0}
    assert clock.summary() == ("load 1.0 s, features 2.0 s, backtest 1.0 s, fit 1.0 s "
                               "(total 5.0 s)")


def test_training_messages_are_charged_to_their_step(clock):
    clock.switch("load")
    steps = TrainingSteps(clock)
    for message in ("backtest: fitting at 2026-01-02",
                    "features and labels at origin 2025-10-04",
                    "churn model on 1,000 rows from 2 origins",
                    "backtest: scoring the horizon 2026-01-02 .. 2026-04-01",
                    "final fit on all data before the as-of date",
                    "features and labels at origin 2026-01-02",
                    "timing model",
                    "shop-wide figures for segments",
                    "logging the scoring pipeline to MLflow",
                    "registered retain version 1 as champion: the first version"):
        steps(message)
    clock.stop()
    # load 1; backtest: its start, "fitting", the churn model, "scoring"; features twice; fit:
    # "final fit", timing, segments; register: logging and registering.
    assert clock.totals == {"load": 1.0, "backtest": 4.0, "features": 2.0, "fit": 3.0,
                            "register": 2.0}
