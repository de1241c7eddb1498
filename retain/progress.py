"""Progress for long work, on stderr so that stdout stays clean for data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, highlight=False)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Show a spinner while ``title`` runs, then a tick with the elapsed seconds."""
    started = time.perf_counter()
    with console.status(f"{title}..."):
        yield
    console.print(f"[green]✓[/] {title} [dim]({time.perf_counter() - started:.1f} s)[/]")
