"""Progress and failure reporting shared by every batch stage.

Per-item failures never stop a run: they are collected, summarised at the end with the tool's own
error text, and written in full as JSON lines. Progress is a rich bar on a terminal and plain
periodic log lines elsewhere (CI, log files).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from pyutils.core.jsonio import write_jsonl

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

T = TypeVar("T")


@functools.cache
def _stderr_console() -> Console:
    # rich is imported on first use: it is a fifth of every command's start-up, and most runs
    # (pipelines, logs, tests) never draw a bar.
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# Piped or redirected, tables and headers are printed as on a very wide terminal: a wrapped line
# cuts a fix command mid-word, and a log or `| grep` wants one line per row.
UNWRAPPED_WIDTH = 10_000


def stdout_console() -> Console:
    """Console for results on stdout: its own width on a terminal, never wrapping elsewhere."""
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=UNWRAPPED_WIDTH)


def stderr_is_terminal() -> bool:
    """Whether progress is drawn as a bar (rich's judgement, asked only of a tty)."""
    return sys.stderr.isatty() and _stderr_console().is_terminal


def log(message: str) -> None:
    """Progress, warnings and errors: stderr, out of the way of what a user captures."""
    print(message, file=sys.stderr, flush=True)


def plural(count: int, noun: str, nouns: str = "") -> str:
    """ "1 question", "2 questions" ("1 entry", "3 entries" with `nouns`)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def say(message: str) -> None:
    """A result: what was done, what failed (stdout, so `make frames ... > log` keeps it)."""
    print(message, flush=True)


class Gauge(Protocol):
    """Work within a batch, for progress that moves while long units run: `read()` says how
    much is done so far (frames written, say), counting the units still running; `noun` what
    it counts."""

    noun: str

    def read(self) -> int: ...


def track(
    items: Iterable[T],
    total: int,
    description: str,
    every_seconds: float = 10.0,
    gauge: Gauge | None = None,
) -> Iterator[T]:
    """Yield `items` with progress: a rich bar on a terminal, else a log line every few seconds.
    With a `gauge`, its count is shown beside the items' and kept moving between them (a few
    long videos would otherwise sit at 0/5 for minutes); in a log, a line every few seconds."""
    if total == 0:
        return
    start = time.monotonic()
    done = 0
    if stderr_is_terminal():
        with _progress_bar(gauge is not None) as progress:
            task = progress.add_task(description, total=total, gauge="")

            def show() -> None:
                progress.update(task, gauge=_gauge_text(gauge, start))

            with _every(0.5 if gauge else None, show):
                for item in items:
                    yield item
                    progress.advance(task)
                    show()
        return

    def line() -> None:
        now = time.monotonic()
        rate = done / max(now - start, 1e-9)
        eta = f", ETA {(total - done) / rate:.0f}s" if rate else ""
        measured = f", {_gauge_text(gauge, start)}" if gauge else ""
        log(f"{description}: {done}/{total} ({rate:.1f}/s{eta}){measured}")

    last = start
    with _every(max(every_seconds, 0.1) if gauge else None, line):
        for done, item in enumerate(items, start=1):  # `line` reads `done` too
            yield item
            now = time.monotonic()
            if (not gauge and now - last >= every_seconds) or done == total:
                line()
                last = now


def _gauge_text(gauge: Gauge | None, start: float) -> str:
    if gauge is None:
        return ""
    count = gauge.read()
    return f"{count:,} {gauge.noun} ({count / max(time.monotonic() - start, 1e-9):.0f}/s)"


@contextmanager
def _every(seconds: float | None, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` every `seconds` on a daemon thread while the block runs (None: never)."""
    if seconds is None:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    ticker = threading.Thread(target=loop, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


def _progress_bar(with_gauge: bool = False) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class RateColumn(ProgressColumn):
        """Items per second (rich's own speed column counts bytes)."""

        def render(self, task):  # noqa: ANN001, ANN201 - rich's signature
            return f"{task.speed:.1f}/s" if task.speed else "-/s"

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        *([TextColumn("{task.fields[gauge]}")] if with_gauge else []),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=_stderr_console(), transient=False)


def failure_list(stage: str, folder: str | os.PathLike[str]) -> Path:
    """Where a stage's failures are listed: the one name every stage uses."""
    return Path(folder) / f"{stage}_failures.jsonl"


class FailureLog:
    """Collects per-item failures; `finish` prints a summary and, given a folder, writes them as
    JSON lines to `<stage>_failures.jsonl` there (the one name every stage's list has)."""

    def __init__(self, stage: str, folder: str | os.PathLike[str] | None = None) -> None:
        self.stage = stage
        self.path = None if folder is None else failure_list(stage, folder)
        self.failures: list[dict[str, str]] = []
        self.done = 0

    def ok(self) -> None:
        self.done += 1

    def fail(self, item: str, error: str) -> None:
        self.failures.append({"item": item, "error": error.strip()})

    def finish(self, show: int = 5) -> int:
        """Print the summary; return the exit status (1 if anything failed, else 0). The failure
        list is written only when something failed (and a stale one from an earlier run goes)."""
        if self.path is not None:
            if self.failures:
                write_jsonl(self.path, self.failures)
            else:
                self.path.unlink(missing_ok=True)
        say(f"{self.stage}: {self.done} ok, {len(self.failures)} failed")
        for failure in self.failures[:show]:
            item = failure["item"]
            last_line = failure["error"].splitlines()[-1] if failure["error"] else "?"
            # Errors often start with the path the line already names: say it once.
            say(f"  FAILED {item}: {last_line.removeprefix(f'{item}: ')}")
        if len(self.failures) > show:
            say(f"  ... and {len(self.failures) - show} more")
        if self.failures and self.path is not None:
            say(f"  full list: {self.path}")
        return 1 if self.failures else 0
