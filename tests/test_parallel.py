from __future__ import annotations

import time
from pathlib import Path

import pytest

from pyutils.core.errors import UserError
from pyutils.core.parallel import run_parallel
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
