"""A dask.distributed cluster on this machine: one scheduler and N worker processes on 127.0.0.1.

`make dask-local` runs one until Ctrl-C or `kill -TERM` (either stops the scheduler and workers and
removes the temporary folder), for trying `BACKEND=dask` before moving to a real cluster; the
tests and `make bench` start their own through `local_cluster`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyutils import REPOSITORY
from pyutils.core.errors import run_cli

REPO = REPOSITORY
DASK = str(Path(sys.executable).with_name("dask"))


@dataclass
class LocalCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


@contextmanager
def local_cluster(
    tmp: Path, workers: int = 2, port: int = 0, quiet: bool = True
) -> Iterator[LocalCluster]:
    """Start a scheduler and `workers` single-threaded worker processes (no nanny, so a killed
    worker stays dead), wait until all are registered, and stop everything afterwards."""
    from distributed import Client

    # Workers import pyutils, so they get the repository on their path; Dask's scratch folders go
    # inside `tmp`, so that removing it leaves nothing behind (the processes are killed, not
    # asked to clean up).
    env = {**os.environ, "PYTHONPATH": str(REPO), "DASK_TEMPORARY_DIRECTORY": str(tmp)}
    output = subprocess.DEVNULL if quiet else None
    tmp.mkdir(parents=True, exist_ok=True)
    scheduler_file = tmp / "scheduler.json"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--scheduler-file",
         str(scheduler_file), "--no-dashboard"],
        env=env, stdout=output, stderr=output,
    )  # fmt: skip
    cluster = LocalCluster(address="", scheduler=scheduler)
    try:
        _wait_for(scheduler_file)
        for _ in range(workers):
            cluster.workers.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                    ],
                    env=env,
                    cwd=tmp,
                    stdout=output,
                    stderr=output,
                )  # fmt: skip
            )
        with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
            client.wait_for_workers(workers, timeout=60)
            cluster.address = client.scheduler.address
        yield cluster
    finally:
        for process in [*cluster.workers, scheduler]:
            process.kill()
            process.wait()


def _wait_for(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise TimeoutError(f"dask scheduler did not start ({path})")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pyutils.devtools.dask_local", description=__doc__
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    parser.add_argument("--port", type=int, default=8786, help="scheduler port on 127.0.0.1")
    args = parser.parse_args(argv)
    # SIGTERM would end Python without unwinding: the workers would outlive us and the folder stay.
    # Ctrl-C unwinds too (run_cli's handler would kill the workers and leave the folder).
    signal.signal(signal.SIGTERM, _exit_on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with (
        tempfile.TemporaryDirectory(prefix="vlprep-dask-") as tmp,
        local_cluster(Path(tmp), args.workers, args.port) as cluster,
    ):
        print(f"dask-local: scheduler {cluster.address} with {args.workers} workers; Ctrl-C stops")
        print(f"dask-local: try make frames BACKEND=dask SCHEDULER={cluster.address} ...")
        cluster.scheduler.wait()  # until Ctrl-C; leaving the block stops every process
    return 0


def _exit_on_term(signum: int, frame: object) -> None:
    print("dask-local: terminated; stopping the scheduler and workers", flush=True)
    sys.exit(128 + signum)


if __name__ == "__main__":
    run_cli(main)
