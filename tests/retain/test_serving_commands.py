"""`retain serve`'s set-up for several workers: the directory where their metrics meet."""

from __future__ import annotations

import os

from retain.commands.serving import shared_metrics_directory
from retain.serving.metrics import MULTIPROCESS_DIR_ENV


def test_a_temporary_directory_is_made_for_the_run_and_removed(monkeypatch):
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    with shared_metrics_directory():
        directory = os.environ[MULTIPROCESS_DIR_ENV]
        assert os.path.isdir(directory) and not os.listdir(directory)
    assert MULTIPROCESS_DIR_ENV not in os.environ
    assert not os.path.exists(directory)


def test_a_given_directory_loses_only_an_earlier_runs_metric_files(monkeypatch, tmp_path):
    stale = [tmp_path / name for name in ("counter_123.db", "gauge_mostrecent_123.db",
                                          "histogram_123.db")]
    kept = [tmp_path / "retain.db", tmp_path / "notes.txt"]
    for path in (*stale, *kept):
        path.write_bytes(b"x")
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path))
    with shared_metrics_directory():
        assert os.environ[MULTIPROCESS_DIR_ENV] == str(tmp_path)
        assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
    assert os.environ[MULTIPROCESS_DIR_ENV] == str(tmp_path)


def test_a_given_directory_that_does_not_exist_yet_is_made(monkeypatch, tmp_path):
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path / "metrics"))
    with shared_metrics_directory():
        assert (tmp_path / "metrics").is_dir()


def test_one_process_without_a_given_directory_keeps_its_metrics_in_memory(monkeypatch):
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    with shared_metrics_directory(temporary=False):
        assert MULTIPROCESS_DIR_ENV not in os.environ


def test_serve_with_a_given_directory_that_does_not_exist_yet_starts(monkeypatch, tmp_path):
    """The app's metrics write to the directory as soon as they exist: it must be made first."""
    import uvicorn
    from typer.testing import CliRunner

    from retain.cli import app

    ran = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: ran.append(kwargs))
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path / "metrics"))
    monkeypatch.setenv("RETAIN_API_KEYS", '{"k": ["score"]}')
    monkeypatch.setenv("RETAIN_STORE_URL", f"sqlite:///{tmp_path / 'scores.db'}")
    result = CliRunner().invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert ran and ran[0]["port"] == 8123
    assert (tmp_path / "metrics").is_dir()
