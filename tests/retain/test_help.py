"""The terminal answers at once: help and --version import no heavy library, every option with
a fixed set of values lists them, every command shows an example, and help reads whole at 80
columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("polars", "mlflow", "lightgbm", "lifetimes", "pandas", "sklearn", "fastapi",
         "sqlalchemy", "numpy", "pyarrow", "scipy", "pydantic", "pydantic_settings", "uvicorn",
         "yaml", "matplotlib")


def commands() -> list[str]:
    from typer.main import get_command

    from retain.cli import app

    return sorted(get_command(app).commands)  # type: ignore[attr-defined]


def run_python(code: str, *, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": str(columns)}
    env.pop("TERMINAL_WIDTH", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def help_in_fresh_process(args: list[str]) -> tuple[str, list[str]]:
    """``retain <args>`` run as the console script runs it, in a new interpreter: its output
    and the heavy modules it imported."""
    code = f"""
import json, sys
sys.argv = ["retain", *{args!r}]
from retain.cli import app
try:
    app(prog_name="retain")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print("\\n@@" + json.dumps(heavy))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    text, _, imported = done.stdout.rpartition("\n@@")
    return text, json.loads(imported)


def test_help_and_version_import_no_heavy_library():
    for args in (["--help"], ["--version"], *([name, "--help"] for name in commands())):
        text, heavy = help_in_fresh_process(args)
        assert heavy == [], f"retain {' '.join(args)} imported {heavy}"
        assert text.strip()


def test_version_names_the_installed_package():
    from importlib.metadata import version

    text, _ = help_in_fresh_process(["--version"])
    assert text.startswith(f"retain {version('retain')} (Python ")
    short, _ = help_in_fresh_process(["-V"])
    assert short == text


@pytest.mark.parametrize("name", [None, *commands()])
def test_help_reads_whole_at_80_columns(name):
    args = ["--help"] if name is None else [name, "--help"]
    text, _ = help_in_fresh_process(args)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    if name is not None:
        assert text.startswith(f"Usage: retain {name} [OPTIONS]")
        # Every command shows how it is called.
        assert "Example" in text and f"retain {name}" in text.split("Example", 1)[1], text
    else:  # the command list is not cut either: each summary is a whole sentence
        listing = text.split("Commands:", 1)[1]
        assert "..." not in listing, listing


def test_fixed_choices_are_listed_and_checked(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    runner = CliRunner()
    listed = {
        "features": ["--on-bad-rows <fail|skip>"],
        "train": ["--on-bad-rows <fail|skip>"],
        "score": ["--on-bad-rows <fail|skip>", "--lang <en|ru>"],
        "simulate": ["--format <parquet|csv>"],
        "export": ["--format <csv|xlsx|parquet>", "--sep <,|;>", "--lang <en|ru>",
                   "replenish, reactivate"],
        "serve": ["--log-level <debug|info|warning|error>"],
    }
    for name, choices in listed.items():
        text = runner.invoke(app, [name, "--help"], env={"COLUMNS": "80"}).output
        for choice in choices:
            assert choice in text, (name, choice, text)
    wrong = runner.invoke(app, ["features", "--out", str(tmp_path / "f.parquet"),
                                "--transactions", "x.csv", "--on-bad-rows", "drop"])
    assert wrong.exit_code == 2
    assert "'drop' is not one of 'fail', 'skip'" in wrong.output
    assert not (tmp_path / "f.parquet").exists()
    # The log level, as before, in any case.
    from retain.commands.serving import app as serving

    assert runner.invoke(serving, ["--log-level", "WARNING", "--help"]).exit_code == 0


def test_rejects_help_names_the_file_each_command_writes(tmp_path, monkeypatch):
    """No command tells of an --out it lacks: the help's default is the file the command
    writes (inspect, without --out: rejected.csv where it runs)."""
    from typer.testing import CliRunner

    from retain.cli import app

    runner = CliRunner()
    expected = {"features": "beside --out", "score": "beside --out", "cohorts": "beside --out",
                "report": "beside --out", "inspect": "rejected.csv in the working directory",
                "train": "rejected.csv in the working directory",
                "evaluate": "rejected.csv in the working directory",
                "calibration": "rejected.csv in the working directory",
                "effect": "effect.rejected.csv in the working directory",
                "channels": "channels.rejected.csv in the working directory"}
    for name, default in expected.items():
        text = " ".join(runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"})
                        .output.split())
        assert f"rows (CSV). Default: {default}" in text, (name, text)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tx.csv").write_text("customer_id,ts,amount\nc1,2024-01-05,10\n"
                                     "c1,2024-02-05,x\nc2,2024-03-01,20\n")
    result = runner.invoke(app, ["inspect", "--transactions", "tx.csv", "--on-bad-rows", "skip"])
    assert result.exit_code == 0, result.output
    assert "not a number" in (tmp_path / "rejected.csv").read_text()
