"""Credentials never reach a message or a log line."""

from __future__ import annotations

import logging

import pytest

from retain.features.redaction import CredentialFilter, install_log_masking, mask_credentials


@pytest.mark.parametrize("text, masked", [
    ("http://bob:s3cret@mlflow:5000/api", "http://bob:***@mlflow:5000/api"),
    ("https://bob:s3cret@mlflow.example.com", "https://bob:***@mlflow.example.com"),
    ("postgresql+psycopg://retain:pa@ss@db:5432/retain failed",
     "postgresql+psycopg://retain:***@db:5432/retain failed"),
    ("s3://key:secretkey@bucket/path", "s3://key:***@bucket/path"),
    ("two: http://a:one1@h1 and mysql://b:two2@h2/x", "two: http://a:***@h1 and mysql://b:***@h2/x"),
    ("'http://u:p%40ss@127.0.0.1:9'", "'http://u:***@127.0.0.1:9'"),
    ("dsn password=hunter22 host=db", "dsn password=*** host=db"),
])
def test_passwords_in_urls_and_dsns_are_masked(text, masked):
    assert mask_credentials(text) == masked


@pytest.mark.parametrize("text", [
    "sqlite:///retain.db", "http://mlflow:5000", "https://github.com/a@b", "user@example.com",
    "ratio 1:2 @ noon", "http://token@host/x", "",
])
def test_text_without_a_password_is_left_alone(text):
    assert mask_credentials(text) == text


def test_secrets_from_the_environment_are_masked_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "tok-123456")
    monkeypatch.setenv("RETAIN_STORE_URL", "postgresql://u:pw%2Fwith-slash@db/x")
    assert mask_credentials("auth tok-123456 refused") == "auth *** refused"
    assert mask_credentials("password pw/with-slash rejected") == "password *** rejected"


def test_a_log_record_is_masked_with_its_arguments_and_traceback(caplog):
    install_log_masking()
    install_log_masking()  # twice is once
    log = logging.getLogger("retain.test.redaction")
    with caplog.at_level(logging.INFO):
        log.info("registry at %s", "http://u:pw1234@h:5000")
        try:
            raise ConnectionError("refused by http://u:pw1234@h:5000")
        except ConnectionError:
            log.exception("reload failed")
    assert "pw1234" not in caplog.text
    assert "registry at http://u:***@h:5000" in caplog.text
    assert "ConnectionError: refused by http://u:***@h:5000" in caplog.text


def test_the_filter_masks_a_record_made_elsewhere():
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               "db %s", ("mysql://a:b-secret@h/x",), None)
    assert CredentialFilter().filter(record) is True
    assert record.getMessage() == "db mysql://a:***@h/x"
