from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyutils.core.errors import UserError
from pyutils.core.parallel import drain_threads, run_parallel
from pyutils.devtools.dask_local import local_cluster


def slow_square(n: int) -> int:
    time.sleep(0.3)
    return n * n


def test_local_backends_give_the_same_results() -> None:
    expected = [n * n for n in range(8)]
    for jobs, backend in [(1, "loky"), (2, "loky"), (2, "threading")]:
        results = sorted(run_parallel(slow_square, range(8), jobs=jobs, backend=backend))
        assert results == expected


def test_unknown_backend_and_stray_scheduler_are_usage_errors() -> None:
    with pytest.raises(UserError, match="unknown backend 'spark'"):
        list(run_parallel(slow_square, [1], jobs=1, backend="spark"))
    with pytest.raises(UserError, match="SCHEDULER is only used with BACKEND=dask"):
        list(run_parallel(slow_square, [1], jobs=1, scheduler="tcp://127.0.0.1:1"))
    with pytest.raises(UserError, match="BACKEND=dask needs SCHEDULER="):
        list(run_parallel(slow_square, [1], jobs=1, backend="dask"))


def test_unreachable_scheduler_is_one_clear_error() -> None:
    with pytest.raises(UserError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        list(run_parallel(slow_square, [1], jobs=1, backend="dask", scheduler="tcp://127.0.0.1:9"))


def test_dask_cluster_survives_a_killed_worker(tmp_path: Path) -> None:
    with local_cluster(tmp_path, workers=2) as cluster:
        results = []
        stream = run_parallel(slow_square, range(16), 1, backend="dask", scheduler=cluster.address)
        for result in stream:
            results.append(result)
            if len(results) == 2:
                cluster.workers[0].kill()  # Dask reschedules its tasks on the other worker
        assert cluster.workers[0].wait() != 0
        assert sorted(results) == [n * n for n in range(16)]


def test_dask_checks_that_workers_see_the_folders(tmp_path: Path) -> None:
    with local_cluster(tmp_path, workers=1) as cluster:
        missing = str(tmp_path / "not-mounted-here")
        with pytest.raises(UserError, match=r"Dask worker tcp://127\.0\.0\.1:\d+ cannot see .*"):
            list(
                run_parallel(
                    slow_square,
                    [1],
                    1,
                    "dask",
                    cluster.address,
                    shared_paths=[str(tmp_path), missing],
                )
            )


@dataclass(frozen=True)
class Decode:
    name: int
    threads: int | None


def threads_at_start(unit: Decode) -> tuple[int, int | None]:
    time.sleep(0.05)  # long enough that the first ones are still running when the last start
    return unit.name, unit.threads


@pytest.mark.parametrize(
    ("cores", "jobs", "expected"),
    [
        (4, 2, [2, 2, 2, 2, 2, 4]),  # the last video alone gets every core
        (4, 4, [1, 1, 1, 1, 2, 4]),  # 2 left: 2 each; 1 left: 4
        (2, 2, [1, 1, 1, 1, 1, 2]),  # 3 videos on 2 cores end 1, 1, 2 (issue 16)
        (1, 2, [1, 1, 1, 1, 1, 1]),
    ],
)
def test_the_last_units_get_the_cores_the_finished_ones_leave(
    monkeypatch: pytest.MonkeyPatch, cores: int, jobs: int, expected: list[int]
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    units = [Decode(n, threads=1) for n in range(6)]
    results = dict(run_parallel(threads_at_start, units, jobs, "threading"))
    # which of two units starting at once counts as started first is up to the threads
    assert sorted(results.values()) == expected
    assert [drain_threads(jobs, left) for left in range(6, 0, -1)] == expected


def test_units_sized_elsewhere_keep_their_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    units = [Decode(n, threads=None) for n in range(3)]  # None: a Dask worker sizes them
    assert dict(run_parallel(threads_at_start, units, 2, "threading")) == {
        0: None,
        1: None,
        2: None,
    }
    lazily = (Decode(n, threads=1) for n in range(3))  # no length: nothing known to drain
    assert dict(run_parallel(threads_at_start, lazily, 2, "threading")) == {0: 2, 1: 2, 2: 2}
