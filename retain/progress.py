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

            # emoji=False: a name like ":fire:" in a path or a value prints as written, and
            # rich's table of emoji codes (~0.03 s to import) is never loaded.
            _LazyConsole._console = Console(stderr=True, highlight=False, emoji=False)
        return getattr(_LazyConsole._console, name)

    def print(self, *objects: Any, **options: Any) -> None:
        """rich's ``print``, where a message (text) is one line however narrow the terminal:
        piped to a log file, rich would break every line at 80 columns, mid-sentence. Tables
        and other renderables keep rich's layout to the width."""
        if "soft_wrap" not in options:
            from rich.text import Text

            options["soft_wrap"] = all(isinstance(o, (str, Text)) for o in objects)
        self.__getattr__("print")(*objects, **options)


console: Console = _LazyConsole()  # type: ignore[assignment]


def print_note(text: str) -> None:
    """``note: <text>`` in one line, the text printed as written: a note quotes a file's
    path, a report's title or a sheet's name, where rich would read ``[old]`` as a style tag
    and drop it, or fail on ``[/]`` (an internal error for a title)."""
    from rich.markup import escape

    console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)


_exit_at_once = False


def work_saved() -> None:
    """Tell the command line that the command's outputs are written and closed and nothing it
    started still runs: it may end the process at once, without the interpreter's clean-up
    (freeing every module and polars' memory: ~0.1 s of `retain features`, on any size)."""
    global _exit_at_once
    _exit_at_once = True


def may_exit_at_once() -> bool:
    return _exit_at_once


def elapsed(seconds: float) -> str:
    """A step's wall time as people read it: 0.4 s, 12.3 s, 2 min 05 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while ``title`` runs, then a tick with the elapsed time. The title is
    text, printed as written (a path's ``[old]`` is no style tag)."""
    started = time.perf_counter()
    from rich.markup import escape
    from rich.text import Text

    with console.status(Text(f"{title}...")):
        yield
    console.print(f"[green]✓[/] {escape(title)} "
                  f"[dim]({elapsed(time.perf_counter() - started)})[/]")


class StepClock:
    """Wall time per named step of a long run whose progress arrives as messages
    (``retain train``: load, features, backtest, fit, register). ``switch(step)`` charges the
    time since the last switch to the step that was running and starts ``step``; a step may
    run several times (features are built at every training origin) and its times add up."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._running: str | None = None
        self._since = time.perf_counter()

    def switch(self, step: str | None) -> None:
        now = time.perf_counter()
        if self._running is not None:
            self.totals[self._running] = self.totals.get(self._running, 0.0) + now - self._since
        self._running, self._since = step, now

    def stop(self) -> None:
        self.switch(None)

    @property
    def running(self) -> str | None:
        return self._running

    def summary(self) -> str:
        """``load 1.2 s, features 3.4 s, ... (total 20.5 s)``, in the order the steps began."""
        steps = ", ".join(f"{name} {elapsed(seconds)}" for name, seconds in self.totals.items())
        return f"{steps} (total {elapsed(sum(self.totals.values()))})"
