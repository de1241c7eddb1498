"""`retain features` starts without pydantic: the option values and the settings a command
line gives are read directly, and anything else still gets Typer's and pydantic's own checks
and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retain.cli import app
from retain.commands.common import SETTINGS_FIELDS, TransactionSettings, transaction_settings
from retain.config import Settings

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
CSV = "customer_id,order_id,ts,amount\nc1,o1,2024-01-05,100\nc2,o2,2024-03-01,10\n"


def test_features_in_a_fresh_process_imports_no_pydantic(tmp_path):
    source = tmp_path / "tx.csv"
    source.write_text(CSV)
    code = f"""
import sys
sys.argv = ["retain", "features", "--transactions", {str(source)!r}, "--as-of", "2024-04-01",
            "--out", {str(tmp_path / "f.parquet")!r}, "--partitions", "4", "--engine", "local"]
from typer.main import get_command
from retain.cli import app
get_command(app).main(sys.argv[1:], prog_name="retain", standalone_mode=False)
print(sorted(m for m in ("pydantic", "pydantic_settings") if m in sys.modules))
"""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RETAIN_")}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "f.parquet").exists()


def test_features_ends_at_once_with_everything_printed_and_written(tmp_path):
    """The process ends without the interpreter's clean-up once the files are written: what
    it printed is all there, and the files read back."""
    import polars as pl

    source = tmp_path / "tx.csv"
    source.write_text(CSV)
    out = tmp_path / "f.parquet"
    done = subprocess.run([sys.executable, "-m", "retain", "features", "--transactions",
                           str(source), "--as-of", "2024-04-01", "--out", str(out)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 customers, 2 transaction rows" in done.stderr
    assert done.stderr.rstrip().endswith("┘")  # the summary table's last line
    assert pl.read_parquet(out).height == 2
    assert pl.read_parquet(tmp_path / "f.products.parquet").height == 0
    # A failure still ends the ordinary way, with its message and exit code.
    failed = subprocess.run([sys.executable, "-m", "retain", "features", "--transactions",
                             str(tmp_path / "missing.csv"), "--out", str(out)],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                            text=True, timeout=120, check=False)
    assert failed.returncode == 1
    assert "missing.csv: file not found" in failed.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--partitions", "0"], "'--partitions': Input should be greater than or equal to 1"),
    (["--partitions", "-3"], "'--partitions': Input should be greater than or equal to 1"),
    (["--partitions", "two"], "'--partitions': Input should be a valid integer"),
    (["--horizon-days", "1.5"], "'--horizon-days': Input should be a valid integer"),
    (["--engine", "dask"], "'--engine': Value error, 'dask' is not one of 'local', 'spark'"),
    (["--on-bad-rows", "SKIP"], "'SKIP' is not one of 'fail', 'skip'"),
])
def test_option_values_that_are_not_plain_get_typers_own_message(tmp_path, args, message):
    source = tmp_path / "tx.csv"
    source.write_text(CSV)
    result = runner.invoke(app, ["features", "--transactions", str(source), "--out",
                                 str(tmp_path / "f.parquet"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_plain_option_values_read_as_typer_reads_them(tmp_path):
    """Whole numbers with a sign or leading zeros go to Typer's adapter, which reads them."""
    source = tmp_path / "tx.csv"
    source.write_text(CSV + "c1,o3,2024-06-01,20\n")  # a line past the 30-day horizon
    result = runner.invoke(app, ["features", "--transactions", str(source), "--as-of",
                                 "2024-04-01", "--out", str(tmp_path / "f.csv"), "--labels",
                                 "--horizon-days", "030", "--products-out", "none"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "f.products.csv").exists()


def test_transaction_settings_are_the_settings_fields_and_defaults():
    assert set(SETTINGS_FIELDS) == set(Settings.model_fields)
    defaults = Settings()
    for name in TransactionSettings.__dataclass_fields__:
        assert getattr(TransactionSettings(), name) == getattr(defaults, name), name


def test_plain_settings_equal_pydantics(monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("RETAIN_"):
            monkeypatch.delenv(key)
    flags = {"transactions": "tx.parquet", "as_of": "2024-04-01", "horizon_days": 60,
             "on_bad_rows": "skip", "column_map": ["customer_id=client"], "query": None,
             "encoding": "cp1251", "date_format": "%d.%m.%Y", "drop_duplicates": True,
             "cancelled_statuses": ["Не выкуплен"], "returned_statuses": None}
    plain = transaction_settings(**flags)
    assert plain == TransactionSettings(
        transactions="tx.parquet", as_of=date(2024, 4, 1), horizon_days=60, on_bad_rows="skip",
        column_map={"customer_id": "client"}, encoding="cp1251", date_format="%d.%m.%Y",
        drop_duplicates=True, cancelled_statuses=["Не выкуплен"])
    # A RETAIN_ variable of any Settings field sends them through pydantic: same result.
    monkeypatch.setenv("RETAIN_LANG", "ru")
    assert transaction_settings(**flags) == plain


def test_settings_errors_name_the_flag_or_the_variable(monkeypatch, capsys):
    import typer

    for key in list(os.environ):
        if key.upper().startswith("RETAIN_"):
            monkeypatch.delenv(key)
    with pytest.raises(typer.Exit):
        transaction_settings("tx.parquet", None, 0, None, None, None)
    said = " ".join(capsys.readouterr().err.split())
    assert "--horizon-days: Input should be greater than or equal to 1" in said
    monkeypatch.setenv("RETAIN_HORIZON_DAYS", "soon")
    with pytest.raises(typer.Exit):
        transaction_settings("tx.parquet", None, None, None, None, None)
    said = " ".join(capsys.readouterr().err.split())
    assert "RETAIN_HORIZON_DAYS: Input should be a valid integer" in said
    assert "soon" not in said and "pydantic" not in said and "validation error" not in said
    monkeypatch.delenv("RETAIN_HORIZON_DAYS")
    monkeypatch.setenv("RETAIN_COLUMN_MAP", "client_code")
    with pytest.raises(typer.Exit):
        transaction_settings("tx.parquet", None, None, None, None, None)
    assert "RETAIN_COLUMN_MAP: not valid JSON" in capsys.readouterr().err


def test_only_the_invoked_command_is_built_and_it_reads_the_same(tmp_path):
    """`retain <command>` builds that command alone: its help is the same as when every
    command is built, and a misspelt name still gets Click's suggestion."""
    code = """
import sys
from typer.main import get_command
import retain.cli as cli
built = []
original = cli._build_only
def spy(app, args):
    kept = original(app, args)
    built.append(sorted(c.callback.__name__ for a in [app, *(g.typer_instance for g in
                        app.registered_groups)] for c in a.registered_commands))
    return kept
cli._build_only = spy
sys.argv = ["retain", *sys.argv[1:]]
try:
    cli.app(prog_name="retain")
except SystemExit:
    pass
print("@@", built[0])
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    pruned = run("--debug", "features", "-h")
    assert pruned.stdout.rstrip().endswith("@@ ['features']")
    every = """
import sys
from typer.main import get_command
from retain.cli import app
try:
    get_command(app).main(["--debug", "features", "-h"], prog_name="retain")
except SystemExit:
    pass
"""
    full = subprocess.run([sys.executable, "-c", every], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert pruned.stdout.rsplit("@@", 1)[0] == full.stdout
    misspelt = run("featurs")
    assert "No such command 'featurs'. Did you mean 'features'?" in misspelt.stderr
    assert "'simulate'" in misspelt.stdout.rsplit("@@", 1)[1]  # every command built
