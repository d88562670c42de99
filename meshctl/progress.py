"""What `make up` shows: one line per step with its duration, and a bar where a step counts items.

Everything else the launcher and the libraries it drives log (embedded PostgreSQL, Alembic, Kafka)
goes to `<run dir>/logs/meshctl.log`, so the terminal stays short. A disabled `Steps` (the default
for tests and benchmarks) shows nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class Steps:
    """Reports the launcher's steps on a console (or nowhere, when disabled)."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(highlight=False)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """A step that takes a while: a spinner with the elapsed time, then a line with its duration."""
        if not self.enabled:
            yield
            return
        started = time.monotonic()
        with self.console.status(f"{title} ..."):
            yield
        self.done(title, time.monotonic() - started)

    @contextlib.contextmanager
    def items(self, title: str) -> Iterator[Callable[[int, int], None]]:
        """A step that counts items: yields `update(done, total)` and draws a bar (on a terminal;
        piped output, as in CI logs, gets only the step's line)."""
        if not self.enabled:
            yield lambda done, total: None
            return
        started = time.monotonic()
        if not self.console.is_terminal:
            yield lambda done, total: None
            self.done(title, time.monotonic() - started)
            return
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(title, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        self.done(title, time.monotonic() - started)

    def done(self, title: str, seconds: float) -> None:
        if self.enabled:
            self.console.print(f"  [green]✓[/green] {title} [dim]({seconds:.1f}s)[/dim]")

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"  {text}")


def log_to_file(path: Path) -> None:
    """Send every log record to `path` and only warnings and errors to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    to_file = logging.FileHandler(path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.WARNING)
    to_terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [to_file, to_terminal]
    # Libraries' warnings (deprecations, platform notes) are details too: into the file only.
    logging.captureWarnings(True)
    warnings = logging.getLogger("py.warnings")
    warnings.handlers[:] = [to_file]
    warnings.propagate = False
