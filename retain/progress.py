"""Progress for long work, on stderr so that stdout stays clean for data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """rich's stderr Console, made on first use: importing rich.console costs about 0.1 s,
    a third of `retain --help`, which prints nothing through it."""

    _console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if _LazyConsole._console is None:
            from rich.console import Console

            _LazyConsole._console = Console(stderr=True, highlight=False)
        return getattr(_LazyConsole._console, name)


console: Console = _LazyConsole()  # type: ignore[assignment]


def elapsed(seconds: float) -> str:
    """A step's wall time as people read it: 0.4 s, 12.3 s, 2 min 05 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while ``title`` runs, then a tick with the elapsed time."""
    started = time.perf_counter()
    with console.status(f"{title}..."):
        yield
    console.print(f"[green]✓[/] {title} [dim]({elapsed(time.perf_counter() - started)})[/]")
