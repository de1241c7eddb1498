"""How a failing command ends: one line, an exit code, and the traceback only where asked.

Exit codes: 0 done; 1 a known error (bad input, unreachable registry or store, full disk, no
permission, out of memory): one ``error: ...`` line that says what to fix; 2 a usage error
(Typer's own message); 3 an unexpected error: one line naming the command and the log file that
holds the traceback (``--debug`` or ``RETAIN_DEBUG=1`` prints it instead); 130 interrupted.
Every message goes through ``mask_credentials``.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from retain.features.redaction import mask_credentials

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded: free space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: check the file's permissions or write elsewhere",
    errno.EPERM: "operation not permitted: check the file's permissions",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory, not a file",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
    errno.EEXIST: "a file is in the way (a directory was expected there)",
}
# polars (Rust) reports an OS error as "... (os error 28)", without errno set.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def write_failure(path: object, exc: BaseException) -> str:
    """Why ``path`` could not be written, in one masked line with the fix."""
    code = getattr(exc, "errno", None)
    found = _RUST_OS_ERROR.search(str(exc))
    if code is None and found:
        code = int(found.group(1))
    if code in _OS_HINTS:
        reason = _OS_HINTS[code]
    else:
        lines = str(exc).strip().splitlines()
        reason = (f"{lines[0] if lines else type(exc).__name__} (check the free space and "
                  "that the directory is writable)")
    return mask_credentials(f"cannot write {path}: {reason}")


def debug_requested() -> bool:
    return os.environ.get("RETAIN_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def known_error_types() -> tuple[type[BaseException], ...]:
    """Errors whose message is the whole story (exit 1). Imported late: the CLI starts fast."""
    from retain.config import SettingsError
    from retain.features.contract import DataError
    from retain.models.registry import RegistryError
    from retain.serving.store import StoreUnavailable

    return (DataError, RegistryError, StoreUnavailable, DatabaseError, SettingsError, OSError,
            MemoryError)


def translate(exc: BaseException) -> BaseException:
    """A library's error that retain can name: MLflow failing to reach its server becomes
    RegistryUnreachableError (training may lose the server after the first check); a database
    that fails to operate (SQLAlchemy's OperationalError: refused, read-only, disk full) is a
    known error with its first line. Anything else is returned as it is."""
    from retain.models.registry import RegistryError, is_unreachable, unreachable

    if isinstance(exc, RegistryError):
        return exc
    if type(exc).__module__.startswith("mlflow") and is_unreachable(exc):
        return unreachable(exc)
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover
        return exc
    if isinstance(exc, sa.exc.OperationalError):
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return DatabaseError(f"database error: {lines[0] if lines else type(exc).__name__}")
    return exc


class DatabaseError(Exception):
    """A database did not work (connection, permissions, space): one line, exit 1."""


def describe(exc: BaseException) -> str:
    """One line for a known error, credentials masked."""
    if isinstance(exc, MemoryError):
        text = ("out of memory: use a shorter history (--as-of, a --query), fewer rows "
                "(--max-train-rows) or a machine with more memory")
    elif isinstance(exc, OSError) and exc.errno in _OS_HINTS and not _is_retain_message(exc):
        where = exc.filename if exc.filename is not None else ""
        text = f"{where}: {_OS_HINTS[exc.errno]}" if where else _OS_HINTS[exc.errno]
    else:
        text = str(exc) or type(exc).__name__
    return mask_credentials(" ".join(text.split()))


def _is_retain_message(exc: OSError) -> bool:
    # retain's own OSErrors (StoreUnavailable, ConnectionError with a sentence) carry a message
    # that is better than the errno's.
    return not exc.args or not isinstance(exc.args[0], int)


def log_directory() -> Path:
    """$RETAIN_LOG_DIR, else $XDG_STATE_HOME/retain, else ~/.local/state/retain."""
    given = os.environ.get("RETAIN_LOG_DIR")
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "retain"


def write_traceback(exc: BaseException, command: str) -> Path | None:
    """The masked traceback in a new file of the log directory (a temporary directory when
    that one cannot be written); None when no file can be written at all."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"retain-{command or 'cli'}-{stamp}-{os.getpid()}.log"
    text = (f"retain {command} failed at {stamp}\nargv: {mask_credentials(' '.join(sys.argv))}\n\n"
            + format_traceback(exc))
    for directory in (log_directory(), Path(tempfile.gettempdir()) / "retain"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def format_traceback(exc: BaseException) -> str:
    return mask_credentials("".join(traceback.format_exception(exc)))


def internal_error_message(exc: BaseException, command: str, log_file: Path | None) -> str:
    where = (f"the traceback is in {log_file}" if log_file
             else "no log file could be written; rerun with --debug to see the traceback")
    return f"internal error in `retain {command}`: {type(exc).__name__}; {where}"
