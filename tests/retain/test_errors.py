"""How a failing command ends: exit codes, one line, the traceback in a log file or on --debug,
credentials masked."""

from __future__ import annotations

import errno
import importlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import retain.features.customers
from retain import errors
from retain.cli import app

runner = CliRunner()
PASSWORD = "hunter2hunter2"
CSV = "customer_id,order_id,ts,amount\nc1,o1,2024-01-05,10\nc1,o2,2024-02-05,12\n"


@pytest.fixture
def shop(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("RETAIN_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("RETAIN_DEBUG", raising=False)
    path = tmp_path / "tx.csv"
    path.write_text(CSV)
    return ["features", "--transactions", str(path), "--out", str(tmp_path / "f.parquet")]


def failing_features(monkeypatch, exc: BaseException) -> None:
    def explode(*_args, **_kwargs):
        raise exc

    # `retain features` imports its feature code when it runs (help stays instant).
    # Imported before the patch: reporting the error imports the model registry, and a
    # pipeline module first imported then would keep `explode` for the tests after this one.
    importlib.import_module("retain.models.pipeline")
    monkeypatch.setattr(retain.features.customers, "customer_features", explode)


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_an_unexpected_error_names_the_command_and_the_log_file(shop, monkeypatch, tmp_path):
    failing_features(monkeypatch, RuntimeError(f"bad state at postgresql://u:{PASSWORD}@db/x"))
    result = runner.invoke(app, shop)
    assert result.exit_code == errors.EXIT_INTERNAL
    last = lines(result.output)[-1]
    assert last.startswith("internal error in `retain features`: RuntimeError; the traceback is "
                           f"in {tmp_path / 'logs'}")
    assert "Traceback" not in result.output and PASSWORD not in result.output
    [log_file] = (tmp_path / "logs").glob("retain-features-*.log")
    assert str(log_file) in last
    text = log_file.read_text()
    assert "Traceback (most recent call last)" in text and "explode" in text
    assert "postgresql://u:***@db/x" in text and PASSWORD not in text


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_prints_the_traceback_instead(shop, monkeypatch, tmp_path, how):
    failing_features(monkeypatch, RuntimeError(f"at http://u:{PASSWORD}@h"))
    args, env = (["--debug", *shop], {}) if how == "flag" else (shop, {"RETAIN_DEBUG": "1"})
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == errors.EXIT_INTERNAL
    assert "Traceback (most recent call last)" in result.output and "explode" in result.output
    assert PASSWORD not in result.output
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("exc, says", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.parquet"),
     "error: /data/out.parquet: the disk is full: free space or write elsewhere"),
    (OSError(errno.EROFS, "Read-only file system", "/data/out.parquet"),
     "error: /data/out.parquet: the file system is read-only: write elsewhere"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/out.parquet"),
     ("error: /data/out.parquet: permission denied: check the file's permissions or write "
     "elsewhere")),
    (MemoryError(), ("error: out of memory: use a shorter history (--as-of, a --query), fewer "
                    "rows (--max-train-rows) or a machine with more memory")),
    (ConnectionError(f"cannot reach postgresql://u:{PASSWORD}@db/x"),
     "error: cannot reach postgresql://u:***@db/x"),
])
def test_a_known_error_is_one_masked_line_and_exit_1(shop, monkeypatch, tmp_path, exc, says):
    failing_features(monkeypatch, exc)
    result = runner.invoke(app, shop)
    assert result.exit_code == errors.EXIT_ERROR
    assert lines(result.output)[-1] == says
    assert sum("error" in line for line in lines(result.output)) == 1
    assert not (tmp_path / "logs").exists()


def test_a_data_error_is_exit_1_even_when_a_command_does_not_catch_it(shop, monkeypatch):
    from retain.features.contract import DataError

    failing_features(monkeypatch, DataError("tx.csv: column 'amount' rows 2-3: not a number"))
    result = runner.invoke(app, shop)
    assert result.exit_code == 1
    assert lines(result.output)[-1] == "error: tx.csv: column 'amount' rows 2-3: not a number"


def test_ctrl_c_exits_130_with_one_line(shop, monkeypatch):
    failing_features(monkeypatch, KeyboardInterrupt())
    result = runner.invoke(app, shop)
    assert result.exit_code == errors.EXIT_INTERRUPTED
    assert lines(result.output)[-1] == "interrupted"
    assert "Traceback" not in result.output


def test_usage_errors_stay_typer_s_with_exit_2(shop):
    result = runner.invoke(app, ["features", "--transactions", "x.csv"])
    assert result.exit_code == errors.EXIT_USAGE
    assert "Missing option '--out'" in result.output
    unknown = runner.invoke(app, ["featurs"])
    assert unknown.exit_code == errors.EXIT_USAGE and "features" in unknown.output


def test_brackets_in_a_message_are_printed_not_read_as_markup(shop, monkeypatch):
    from retain.features.contract import DataError

    failing_features(monkeypatch, DataError("column [amount] rows [2]: bad"))
    result = runner.invoke(app, shop)
    assert lines(result.output)[-1] == "error: column [amount] rows [2]: bad"


def test_the_log_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RETAIN_LOG_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert errors.log_directory() == tmp_path / "state" / "retain"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert errors.log_directory() == Path.home() / ".local" / "state" / "retain"
    monkeypatch.setenv("RETAIN_LOG_DIR", str(tmp_path / "given"))
    assert errors.log_directory() == tmp_path / "given"


def test_an_unwritable_log_directory_falls_back_to_a_temporary_one(monkeypatch, tmp_path):
    monkeypatch.setenv("RETAIN_LOG_DIR", "/dev/full/logs")  # under a device: never a directory
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    try:
        raise ValueError("boom")
    except ValueError as exc:
        path = errors.write_traceback(exc, "train")
    assert path is not None and path.parent == tmp_path / "retain"
    assert "ValueError: boom" in path.read_text()


def test_mlflow_losing_its_server_mid_command_is_named_unreachable(shop, monkeypatch):
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://u:{PASSWORD}@mlflow:5000")
    failing_features(monkeypatch, MlflowException(
        f"API request to http://u:{PASSWORD}@mlflow:5000/api failed: Max retries exceeded "
        "(Caused by NewConnectionError: Connection refused)"))
    result = runner.invoke(app, shop)
    assert result.exit_code == 1
    assert lines(result.output)[-1].startswith(
        "error: MLflow tracking server at http://u:***@mlflow:5000 is unreachable")
    assert PASSWORD not in result.output


def test_a_database_that_fails_to_operate_is_one_line(shop, monkeypatch):
    import sqlalchemy as sa

    failing_features(monkeypatch, sa.exc.OperationalError(
        "INSERT ...", {}, Exception("attempt to write a readonly database\n[SQL: INSERT]")))
    result = runner.invoke(app, shop)
    assert result.exit_code == 1
    assert lines(result.output)[-1] == "error: database error: attempt to write a readonly database"


def test_a_wrong_retain_variable_is_one_line_naming_it_without_its_value(tmp_path, monkeypatch):
    """`retain score` reads its settings where no command-level check catches them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RETAIN_LANG", "deutsch")
    result = runner.invoke(app, ["score", "--transactions", str(tmp_path / "tx.csv"),
                                 "--out", str(tmp_path / "s.parquet")])
    assert result.exit_code == errors.EXIT_ERROR
    assert lines(result.output)[-1] == "error: RETAIN_LANG: Input should be 'en' or 'ru'"
    assert "deutsch" not in result.output and "internal error" not in result.output
