"""A Dask run whose every worker dies stops with one line naming the scheduler instead of waiting
forever; `kill -TERM` on dask-local stops its scheduler and workers and removes its folder. Real
Dask processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pyutils.devtools.dask_local import local_cluster
from tests.conftest import REPO

KILL_WORKERS_MID_RUN = """
import os, signal, sys
from pyutils.core import parallel
from pyutils.core.errors import run_cli
from tests.test_parallel import slow_square

parallel.WORKERLESS_SECONDS = 1.0  # the bound is a constant; a test need not wait two minutes

def main(argv):
    address, *workers = sys.argv[1:]
    results = parallel.run_parallel(slow_square, range(40), 1, backend="dask", scheduler=address)
    for count, _ in enumerate(results):
        if count == 0:
            for pid in workers:
                os.kill(int(pid), signal.SIGKILL)
    return 0

run_cli(main)
"""


def test_a_run_whose_workers_all_die_fails_naming_the_scheduler(tmp_path: Path) -> None:
    with local_cluster(tmp_path, workers=2) as cluster:
        pids = [str(worker.pid) for worker in cluster.workers]
        # A hang is the bug: the generous timeout only turns one into a failure.
        run = subprocess.run(
            [sys.executable, "-c", KILL_WORKERS_MID_RUN, cluster.address, *pids],
            capture_output=True, text=True, cwd=REPO, timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    assert run.returncode == 2, run.stderr
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"vlprep: error: no Dask worker connected to the scheduler {cluster.address} for 1 s"
    )
    assert "Traceback" not in run.stderr


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_kill_term_stops_dask_local_and_removes_its_folder(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cluster = subprocess.Popen(
        [sys.executable, "-m", "pyutils.devtools.dask_local", "--workers", "2",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)},
    )  # fmt: skip
    spawned: list[int] = []
    try:
        assert cluster.stdout is not None
        assert cluster.stdout.readline().startswith(f"dask-local: scheduler tcp://127.0.0.1:{port}")
        spawned = children(cluster.pid)
        assert len(spawned) == 3  # the scheduler and two workers
        assert [p.name.startswith("vlprep-dask-") for p in scratch.iterdir()] == [True]
        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=120) == 128 + signal.SIGTERM
        assert [pid for pid in spawned if alive(pid)] == []
        assert list(scratch.iterdir()) == []
    finally:
        for pid in [cluster.pid, *spawned]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        cluster.wait()
