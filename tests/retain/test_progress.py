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


def test_a_message_is_one_line_in_a_narrow_terminal_or_a_log_and_tables_still_fit(
        monkeypatch, capsys):
    """Piped to a log file rich assumes 80 columns: a summary or a verdict line broke
    mid-sentence ("... as of \\n1997-04-01"), which greps and log readers cannot follow."""
    from rich.table import Table

    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setattr(progress._LazyConsole, "_console", None)  # made afresh, 40 wide
    summary = ("23,500 customers, 31,798 transaction rows from 1997-01-01 to 1997-03-31, "
               "as of 1997-04-01")
    progress.console.print(summary)
    progress.console.print("[yellow]note:[/] 70 customers have no purchase before the as-of "
                           "date 1997-04-01: they get no features")
    table = Table("what", "value", title="Customers at a glance")
    table.add_row("repeat buyers overdue (> 1.5 x own interval)", "46.7%")
    progress.console.print(table)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == summary
    assert lines[1] == ("note: 70 customers have no purchase before the as-of date 1997-04-01: "
                        "they get no features")
    assert all(len(line) <= 40 for line in lines[2:])  # the table wraps its cells instead
    assert any("repeat buyers" in line for line in lines[2:])


def test_a_message_into_a_log_stays_one_line_and_a_table_keeps_its_layout(monkeypatch):
    """Into a pipe or a file rich would cut a message at 80 columns; a grep for it then fails."""
    import io

    from rich.console import Console
    from rich.table import Table

    log = io.StringIO()
    monkeypatch.setattr(progress._LazyConsole, "_console",
                        Console(file=log, width=80, highlight=False, emoji=False))
    message = "9,986 customers, 205,629 transaction rows from 2024-07-01 to 2026-06-30, " \
              "as of 2026-07-01"
    progress.console.print(message)
    table = Table(title="Customers at a glance", show_header=False)
    table.add_row("median orders", "3.0")
    progress.console.print(table)
    lines = log.getvalue().splitlines()
    assert lines[0] == message
    assert lines[1].strip() == "Customers at a glance" and lines[1].startswith(" ")  # centred
    # A terminal wraps at its own edge; an explicit choice is kept.
    progress.console.print(message, soft_wrap=False)
    assert len(log.getvalue().splitlines()) > len(lines) + 1


def test_a_note_prints_a_path_or_title_with_brackets_as_written(monkeypatch):
    """rich read "[old]" in a path as a style tag (the note said "/wbt.csv") and a title's
    "[/]" as a closing tag: an internal error for `retain features`."""
    import io

    from rich.console import Console

    log = io.StringIO()
    monkeypatch.setattr(progress._LazyConsole, "_console",
                        Console(file=log, width=80, highlight=False, emoji=False))
    progress.print_note("[old]/wbt.csv: 1 line(s) above the header skipped (a report's title: "
                        "'Отчет [/] за март [итоги]')")
    assert log.getvalue().splitlines() == [
        ("note: [old]/wbt.csv: 1 line(s) above the header skipped (a report's title: "
         "'Отчет [/] за март [итоги]')")]
    with progress.step("Writing [old]/b.parquet"):
        pass
    assert log.getvalue().splitlines()[-1].startswith("✓ Writing [old]/b.parquet (")
