"""The shape every batch stage shares: typed work units, one worker, one loop, the same options.

A stage (frames, transcode, fetch_list, probing) describes each item of work as a work unit, a
frozen dataclass: picklable as it is, so the same unit runs in this process, in a loky worker or
as a Dask task. Its worker takes one unit and returns a frozen dataclass result that never raises
for a bad item and says what went wrong (the `Outcome` protocol). `run_stage` runs the worker
over the units with `run_parallel`, shows progress and records every result in the stage's
`FailureLog`; the stage itself only builds the units and keeps what it needs of the results.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from pyutils.core.parallel import AUTO, BACKENDS, ParallelOptions, run_parallel
from pyutils.core.report import FailureLog, Gauge, track


class Outcome(Protocol):
    """What a worker's result tells the loop."""

    @property
    def item(self) -> str:
        """The unit's name in a failure list: its source file, its URL."""
        ...

    @property
    def error(self) -> str:
        """Why the unit failed, in the tool's own words; empty when it worked."""
        ...


Unit = TypeVar("Unit")
Result = TypeVar("Result", bound=Outcome)


def run_stage(
    stage: str,
    worker: Callable[[Unit], Result],
    units: Sequence[Unit],
    parallel: ParallelOptions,
    failures: FailureLog | None = None,
    shared_paths: Sequence[str] = (),
    gauge: Gauge | None = None,
) -> Iterator[Result]:
    """Yield `worker(unit)` for every unit as it finishes, with progress named `stage`; each
    result is counted in `failures` as done or failed (the caller calls `failures.finish()`).

    Units are handed out lazily, so closing the generator early (a caller that has seen enough)
    leaves the rest undone. `shared_paths` must be visible from every Dask worker. A `gauge`
    counts the work within the batch (frames written) for the progress line.
    """
    results = run_parallel(
        worker, units, parallel.jobs, parallel.backend, parallel.scheduler, shared_paths
    )
    progress = track(results, len(units), stage, gauge=gauge)
    try:
        for result in progress:
            if failures is not None:
                if result.error:
                    failures.fail(result.item, result.error)
                else:
                    failures.ok()
            yield result
    finally:
        progress.close()
        with warnings.catch_warnings():
            # joblib warns that the tasks cancelled by an early stop were wasted; that is the point.
            warnings.filterwarnings("ignore", message=".*tasks have been successfully executed")
            results.close()


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def add_parallel_options(
    parser: argparse.ArgumentParser, backend: str, what: str, jobs: int | None = None
) -> None:
    """--jobs, --backend and --scheduler, taken the same way by every batch stage. `backend` is
    the stage's default: threading where each task's work happens in a child process (ffmpeg) or
    on the network, since worker processes would only add their start-up (about 0.3 s, measured
    in bench/frames.py); AUTO where it happens in Python (probing), for the stage to choose
    threads or loky processes by the size of the batch."""
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=jobs or os.cpu_count() or 1,
        help=f"{what} at once (default: {jobs or 'number of CPUs'})",
    )
    default = "auto: threads, loky processes when they pay for starting" if backend == AUTO else ""
    parser.add_argument(
        "--backend",
        choices=(*BACKENDS, AUTO) if backend == AUTO else BACKENDS,
        default=backend,
        help=f"threading, loky, or dask with --scheduler (default: {default or backend})",
    )
    parser.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786)")


def parallel_options(args: argparse.Namespace) -> ParallelOptions:
    # make passes an empty SCHEDULER as --scheduler ''
    return ParallelOptions(args.jobs, args.backend, args.scheduler or None)
