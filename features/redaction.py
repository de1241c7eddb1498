"""Credentials out of every message: CLI errors, logs, API answers.

``mask_credentials(text)`` replaces the password of any ``scheme://user:password@host`` URL
(MLflow, the score store, object stores...) with ``***``, and the values of the secret
environment variables (``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``, ...) wherever
they appear. ``install_log_masking()`` applies it to every log record of the process.
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import unquote, urlsplit

MASK = "***"
# user:password@ after any scheme. The password runs to the last '@' before the host (an
# unescaped '@' in a password is common in hand-written URLs), never across a space or a '/'.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):(?P<password>[^\s/]*)@(?=[^\s@/]*(?:[/\s?#'\")\],;]|$))"
)
# password=... in query strings and DSNs (libpq's "password=secret host=...").
_KEY_VALUE = re.compile(r"(?i)\b(?P<key>password|passwd|pwd)=(?P<value>[^\s&;'\"]+)")
_SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "AWS_SECRET_ACCESS_KEY",
               "RETAIN_DB_PASSWORD", "PGPASSWORD")
_URL_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RETAIN_STORE_URL",
            "RETAIN_TRANSACTIONS")
_MIN_SECRET = 4  # shorter values would mask ordinary words


_secrets_of: tuple[tuple[str | None, ...], list[str]] = ((), [])


def _known_secrets() -> list[str]:
    """Secrets the environment holds: a password may be echoed without its URL around it.
    Worked out again only when one of the variables changed (every log record asks)."""
    global _secrets_of
    values = tuple(map(os.environ.get, _SECRET_ENV + _URL_ENV))
    if values != _secrets_of[0]:
        _secrets_of = (values, _secrets_in_environment())
    return _secrets_of[1]


def _secrets_in_environment() -> list[str]:
    found = [os.environ.get(name, "") for name in _SECRET_ENV]
    for name in _URL_ENV:
        value = os.environ.get(name, "")
        if "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found += [password, unquote(password)]
    return sorted({s for s in found if len(s) >= _MIN_SECRET}, key=len, reverse=True)


def mask_credentials(text: str) -> str:
    """``text`` with URL passwords and known secrets replaced by ``***``."""
    if not text:
        return text
    # Each pattern holds a literal '@' or '=': without one, it cannot match.
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    if "=" in text:
        text = _KEY_VALUE.sub(lambda m: f"{m['key']}={MASK}", text)
    for secret in _known_secrets():
        text = text.replace(secret, MASK)
    return text


class CredentialFilter(logging.Filter):
    """Masks a record's message (and its formatted traceback) in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    if getattr(record, "_retain_masked", False):
        return
    record._retain_masked = True  # type: ignore[attr-defined]
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is logging's to report
        return
    masked = mask_credentials(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_credentials(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = mask_credentials(record.exc_text)


_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "mlflow", "alembic", "sqlalchemy")
_installed = False


def install_log_masking() -> None:
    """Mask every log record of this process, once (later calls do nothing).

    A filter on a logger sees only records logged at that very logger, not its children's,
    and uvicorn replaces its handlers at start; so records are masked where they are made
    (the record factory), and the filter also sits on the root, uvicorn and mlflow loggers
    for records built by hand."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
    credential_filter = CredentialFilter()
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(credential_filter)
