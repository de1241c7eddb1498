"""The retrain recipe (docs/retrain.md): the Airflow DAG file and the cron lines run commands
retain has, with flags it takes, in the order the recipe says."""

from __future__ import annotations

import ast
import re
import runpy
import shlex
import sys
import types
from pathlib import Path
from typing import ClassVar, Self

import pytest
from typer.testing import CliRunner

from retain.cli import app

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "deploy" / "airflow" / "retain_dag.py"
RECIPE = REPO / "docs" / "retrain.md"


class _Task:
    def __init__(self, task_id: str, bash_command: str, **_: object) -> None:
        self.task_id, self.bash_command = task_id, bash_command
        self.downstream: list[_Task] = []
        _DAG.current.tasks.append(self)

    def __rshift__(self, other: _Task) -> _Task:
        self.downstream.append(other)
        return other


class _DAG:
    current: ClassVar[_DAG]
    made: ClassVar[list[_DAG]] = []

    def __init__(self, dag_id: str, schedule: str, **_: object) -> None:
        self.dag_id, self.schedule, self.tasks = dag_id, schedule, []

    def __enter__(self) -> Self:
        _DAG.current = self
        _DAG.made.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        pass


@pytest.fixture
def dags(monkeypatch):
    """The DAG file run against a stand-in for Airflow's two names it uses (Airflow is not a
    dependency of retain)."""
    airflow = types.ModuleType("airflow")
    airflow.DAG = _DAG  # type: ignore[attr-defined]
    operators = types.ModuleType("airflow.operators")
    bash = types.ModuleType("airflow.operators.bash")
    bash.BashOperator = _Task  # type: ignore[attr-defined]
    for name, module in (("airflow", airflow), ("airflow.operators", operators),
                         ("airflow.operators.bash", bash)):
        monkeypatch.setitem(sys.modules, name, module)
    _DAG.made = []
    runpy.run_path(str(DAG_FILE), run_name="dag")
    return {dag.dag_id: dag for dag in _DAG.made}


def test_the_dag_file_is_valid_python():
    ast.parse(DAG_FILE.read_text(encoding="utf-8"), filename=str(DAG_FILE))


def test_the_monthly_dag_trains_then_scores_then_calibrates(dags):
    retrain = dags["retain_retrain"]
    train, score, calibration = retrain.tasks
    assert [t.task_id for t in retrain.tasks] == ["retain_train", "retain_score",
                                                  "retain_calibration"]
    assert train.downstream == [score] and score.downstream == [calibration]
    assert retrain.schedule == "0 3 1 * *"
    assert [t.task_id for t in dags["retain_score_weekly"].tasks] == ["retain_score"]


def _commands(dags) -> list[list[str]]:
    commands = []
    for dag in dags.values():
        for task in dag.tasks:
            # Jinja as Airflow would render it with every Variable set.
            text = re.sub(r"\{%.*?%\}", "", task.bash_command)
            text = re.sub(r"\{\{.*?\}\}", "x", text)
            commands.append(shlex.split(text))
    return commands


def _recipe_commands() -> list[list[str]]:
    """The `retain ...` command lines of docs/retrain.md's cron block and its table."""
    text = RECIPE.read_text(encoding="utf-8")
    lines = re.findall(r"```cron\n(.*?)```", text, re.DOTALL)[0].splitlines()
    lines += re.findall(r"^\| [^|]+ \| `(retain [^`]+)` \|", text, re.MULTILINE)
    found = []
    for line in lines:
        if line.startswith("#"):
            continue
        for part in re.split(r"&&|>>|;", line):
            words = shlex.split(part.replace("$(", "").replace(")", ""))
            if "retain" in words:
                found.append(words[words.index("retain"):])
    return found


def test_every_command_and_flag_of_the_recipe_exists(dags):
    runner = CliRunner()
    recipe = _recipe_commands()
    assert len(recipe) == 7  # 3 in the cron lines, 4 in the table
    commands = _commands(dags) + recipe
    assert {c[1] for c in commands} == {"train", "score", "calibration", "drift"}
    for words in commands:
        name = words[1]
        help_text = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"}).output
        assert help_text.startswith(f"Usage: retain {name}"), (words, help_text)
        for flag in (w.split("=", 1)[0] for w in words[2:] if w.startswith("--")):
            assert flag in help_text, (name, flag)


def test_the_recipe_says_how_a_challenger_is_promoted():
    text = RECIPE.read_text(encoding="utf-8")
    assert "same backtest" in text and "alias_decision" in text
    assert re.search(r"^\d+ \d+ [\d*]+ \* [\d*]+ ", text, re.MULTILINE), "a cron line"
