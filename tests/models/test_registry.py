"""The registry says "unreachable" when MLflow does not answer, in seconds, with the password
masked; "no model" only when it answered."""

from __future__ import annotations

import os
import time

import pytest

from retain.models import registry
from retain.models.registry import (
    RegistryError,
    RegistryUnreachableError,
    check_registry,
    is_unreachable,
    load_registered,
    masked_tracking_uri,
    requirement_mismatches,
    short_http_retries,
)

PASSWORD = "s3cretPassw0rd"
DEAD = f"http://retain:{PASSWORD}@127.0.0.1:9"


@pytest.fixture
def dead_registry(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DEAD)
    for name in registry.CHECK_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)


def test_a_refused_port_is_unreachable_in_seconds_with_the_password_masked(dead_registry):
    started = time.perf_counter()
    with pytest.raises(RegistryUnreachableError) as raised:
        check_registry()
    assert time.perf_counter() - started < 20  # MLflow's default retries take minutes
    message = str(raised.value)
    assert message.startswith("MLflow tracking server at http://retain:***@127.0.0.1:9 is "
                              "unreachable")
    assert PASSWORD not in message
    # The short retries were for the check only.
    assert not any(name in os.environ for name in registry.CHECK_ENV_DEFAULTS)


def test_loading_from_an_unreachable_server_is_not_reported_as_no_model(dead_registry):
    with short_http_retries(), pytest.raises(RegistryUnreachableError) as raised:
        load_registered()
    assert "no model" not in str(raised.value) and PASSWORD not in str(raised.value)


def test_a_local_registry_is_never_checked_over_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    check_registry()  # no error, no server


def test_an_empty_local_registry_says_no_model(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(RegistryError) as raised:
        load_registered()
    assert not isinstance(raised.value, RegistryUnreachableError)
    assert "no model 'retain' alias 'champion'" in str(raised.value)


def test_the_user_s_own_retry_settings_are_kept(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with short_http_retries():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == registry.CHECK_ENV_DEFAULTS[
            "MLFLOW_HTTP_REQUEST_TIMEOUT"]
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


def test_unreachable_is_read_from_the_cause_chain():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("API request failed") from inner
    except RuntimeError as outer:
        assert is_unreachable(outer)
    assert not is_unreachable(RuntimeError("RESOURCE_DOES_NOT_EXIST: alias champion not found"))


def test_the_tracking_uri_is_shown_masked(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DEAD)
    assert masked_tracking_uri() == "http://retain:***@127.0.0.1:9"


def test_a_model_logged_for_other_package_versions_is_named_per_package(tmp_path):
    import numpy

    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# written by mlflow\n"
        f"numpy=={numpy.__version__}\n"
        "lightgbm<0.1\n"
        "retain-no-such-package==1.0\n"
        "retain-elsewhere-only==1.0 ; sys_platform == 'no-such-platform'\n"
        "--extra-index-url https://example.org\n\n", encoding="utf-8")
    mismatches = requirement_mismatches(requirements)
    assert len(mismatches) == 2
    assert mismatches[0].startswith("lightgbm <0.1 (") and mismatches[0].endswith(" installed)")
    assert mismatches[1] == "retain-no-such-package (not installed)"
