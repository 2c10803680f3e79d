"""Running one function over many items on several workers, through joblib.

Every batch stage (frame extraction, probing, transcoding) goes through `run_parallel`, so the
choice of backend (loky processes on this machine, or a Dask cluster) is made in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from joblib import Parallel, delayed

from pyutils.errors import UserError

Item = TypeVar("Item")
Result = TypeVar("Result")

BACKENDS = ("loky", "threading", "dask")


def run_parallel(
    func: Callable[[Item], Result],
    items: Iterable[Item],
    jobs: int,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Iterator[Result]:
    """Yield `func(item)` for every item, in completion order, using `jobs` workers.

    `func` must not raise for a bad item: it returns a result that says the item failed, so that
    one bad item never stops the others. `jobs == 1` runs in this process (no worker start-up).
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "dask":
        raise UserError("BACKEND=dask is not available yet")
    if scheduler:
        raise UserError("SCHEDULER is only used with BACKEND=dask")
    if jobs <= 1 and backend != "dask":
        yield from map(func, items)
        return
    runner = Parallel(n_jobs=jobs, backend=backend, return_as="generator_unordered")
    yield from runner(delayed(func)(item) for item in items)
