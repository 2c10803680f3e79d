"""Running one function over many items on several workers.

Every batch stage (frame extraction, probing, transcoding) goes through `run_parallel`, so the
choice of where the work runs is made in one place: threads or joblib's loky processes on this
machine, or the tasks of a `dask.distributed` cluster (`backend="dask"`,
`scheduler="tcp://host:8786"`), where a worker that dies has its tasks rescheduled on the others;
when none is left for WORKERLESS_SECONDS, the run stops with an error naming the scheduler.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pyutils.core.errors import UserError

if TYPE_CHECKING:
    from concurrent.futures import Future

Item = TypeVar("Item")
Result = TypeVar("Result")

BACKENDS = ("loky", "threading", "dask")
# How long a Dask run waits for a worker when none is connected (all died, or none started):
# long enough for a cluster manager to replace them, short enough that nobody waits forever.
WORKERLESS_SECONDS = 120.0
POLL_SECONDS = 0.2

# A stage's default backend that the stage resolves per batch (threads, or loky processes when
# the batch is big enough to pay for starting them); run_parallel never sees it.
AUTO = "auto"


@dataclass(frozen=True)
class ParallelOptions:
    """Where a stage's work runs: `jobs` workers of a joblib `backend` on this machine, or every
    worker thread of the Dask cluster at `scheduler` (backend "dask")."""

    jobs: int
    backend: str = "threading"
    scheduler: str | None = None

    def where(self) -> str:
        """Where the work runs, for a run's first line: "2 jobs", "on the Dask cluster at ..."."""
        if self.backend == "dask":
            return f"on the Dask cluster at {self.scheduler}"
        return f"{self.jobs} job{'' if self.jobs == 1 else 's'}"

    def ffmpeg_threads(self) -> int | None:
        """Threads for each task's ffmpeg: this machine's cores shared among the jobs; None on
        Dask, where the worker that runs the task sizes them (`threads_here`)."""
        return None if self.backend == "dask" else threads_per_task(self.jobs)


def threads_per_task(concurrent_tasks: int) -> int:
    """Threads for each task's ffmpeg so that threads x concurrent tasks matches the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, concurrent_tasks))


def threads_here(threads: int | None) -> int:
    """`threads`, or when None (a task on Dask) the cores of the worker's machine shared among
    the worker's task slots."""
    if threads is not None:
        return threads
    from distributed import get_worker

    return threads_per_task(get_worker().state.nthreads)


def run_parallel(
    func: Callable[[Item], Result],
    items: Iterable[Item],
    jobs: int,
    backend: str = "loky",
    scheduler: str | None = None,
    shared_paths: Sequence[str] = (),
) -> Iterator[Result]:
    """Yield `func(item)` for every item, in completion order.

    `func` must not raise for a bad item: it returns a result that says the item failed, so that
    one bad item never stops the others. Locally `jobs` workers run (`jobs == 1`: in this process,
    no worker start-up); on Dask every worker thread of the cluster runs tasks, and
    `shared_paths` are checked first to be visible from every worker.
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "dask":
        yield from _run_on_dask(func, list(items), scheduler, shared_paths)
        return
    if scheduler:
        raise UserError("SCHEDULER is only used with BACKEND=dask")
    if jobs <= 1:
        yield from map(func, items)
        return
    if backend == "threading":
        total = len(items) if isinstance(items, Sized) else None
        yield from _run_on_threads(func, iter(items), jobs, total)
        return
    from joblib import Parallel, delayed  # imported here: it costs 0.1 s of start-up

    runner = Parallel(n_jobs=jobs, backend=backend, return_as="generator_unordered")
    yield from runner(delayed(func)(item) for item in items)


def _run_on_threads(
    func: Callable[[Item], Result], items: Iterator[Item], jobs: int, total: int | None = None
) -> Iterator[Result]:
    """Threads for work that happens in child processes (ffmpeg) or on the network. Items are
    taken lazily, a few ahead of the workers, so a caller that stops early stops the work.

    An item with a `threads` field (a frozen dataclass: its child process's threads, sized on
    this machine) gets them when it starts, from the cores shared among the items not started
    yet: with fewer left than jobs, the last ones get the cores the finished ones leave idle
    (`drain_threads`). Of `total` items, that is."""
    # Imported here: with logging, which it pulls in, a tenth of a command's start-up.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    started = itertools.count()

    def start(item: Item) -> Result:
        left = None if total is None else total - next(started)
        return func(_with_threads(item, drain_threads(jobs, left)))

    with ThreadPoolExecutor(jobs) as pool:
        pending: set[Future[Result]] = {
            pool.submit(start, item) for item in itertools.islice(items, 2 * jobs)
        }
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    for item in itertools.islice(items, 1):
                        pending.add(pool.submit(start, item))
        finally:
            for future in pending:
                future.cancel()


def drain_threads(jobs: int, left: int | None) -> int:
    """Threads for a task that starts with `left` tasks (itself included) not started yet: the
    cores shared among the jobs while the batch is full, among the tasks left as it drains (3
    videos on 2 cores: 1, 1, then 2 for the third, which would otherwise run alone on one)."""
    return threads_per_task(jobs if left is None else min(jobs, left))


def _with_threads(item: Item, threads: int) -> Item:
    if getattr(item, "threads", None) is None or not dataclasses.is_dataclass(item):
        return item  # nothing to size, or sized elsewhere (None: by the Dask worker)
    return dataclasses.replace(item, threads=threads)  # type: ignore[type-var]


def _run_on_dask(
    func: Callable[[Item], Result],
    items: list[Item],
    scheduler: str | None,
    shared_paths: Sequence[str],
) -> Iterator[Result]:
    from distributed import Client, as_completed

    if not scheduler:
        raise UserError("BACKEND=dask needs SCHEDULER=tcp://host:8786 (see `make dask-local`)")
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as exc:
        raise UserError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        _check_visible_from_workers(client, shared_paths)
        # pure=False: the same item twice is two tasks; each task's result is a small record.
        # with_results: results are gathered in the background, so a result lost with its worker
        # (recomputed, or never if no worker is left) never blocks this loop.
        results = as_completed(client.map(func, items, pure=False), with_results=True)
        workerless_since = None
        while not results.is_empty():
            done = results.next_batch(block=False)
            for future, result in done:
                yield future.result() if future.status != "finished" else result  # raises errors
            if done or client.nthreads():
                workerless_since = None
            elif workerless_since is None:
                workerless_since = time.monotonic()
            elif time.monotonic() - workerless_since > WORKERLESS_SECONDS:
                raise UserError(
                    f"no Dask worker connected to the scheduler {scheduler} for "
                    f"{WORKERLESS_SECONDS:.0f} s with {results.count()} tasks left (every worker "
                    "died, or none was started); start workers (see `make dask-local`) and rerun"
                )
            if not done:
                time.sleep(POLL_SECONDS)


def _check_visible_from_workers(client: object, paths: Sequence[str]) -> None:
    """Fail early, with the worker's address, when a worker cannot see an input/output folder."""
    if not paths:
        return
    seen = client.run(_existing_paths, list(paths))  # type: ignore[attr-defined]
    if not seen:
        raise UserError("the Dask cluster has no workers; start some (see `make dask-local`)")
    for worker, visible in sorted(seen.items()):
        missing = [path for path in paths if path not in visible]
        if missing:
            raise UserError(
                f"Dask worker {worker} cannot see {missing[0]}: the folders must be on storage "
                "that every worker mounts at the same path"
            )


def _existing_paths(paths: list[str]) -> list[str]:
    return [path for path in paths if os.path.exists(path)]
