"""Frame extraction on this machine against the same work on a 2-worker Dask cluster.

Same corpus as bench/frames.py (16 clips of 15 s), same options (--fps 1, the setting a large
ActivityNet run would use); the cluster is a scheduler and two single-threaded workers on
127.0.0.1, so the ratio is the cost of going through Dask, not a speed-up.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import _common
from frames import corpus, fresh

from pyutils.devtools.dask_local import local_cluster


def extract(folder: Path, *options: str) -> None:
    out = fresh("dask-bench-frames")
    args = [
        sys.executable,
        "-m",
        "pyutils.video.frames",
        str(folder),
        str(out),
        "--fps",
        "1",
        *options,
    ]
    env = {**os.environ, "PYTHONPATH": str(_common.REPO)}
    _common.run_quiet(args, env)


def main() -> None:
    clips = corpus("clips-15s", 16, 15)
    _common.header("frames --fps 1 on a Dask cluster: 16 clips of 15 s")
    local = _common.timed(lambda: extract(clips))
    _common.row("vlprep --fps 1, this machine (2 jobs)", local)
    with tempfile.TemporaryDirectory() as tmp, local_cluster(Path(tmp), workers=2) as cluster:
        on_dask = _common.timed(
            lambda: extract(clips, "--backend", "dask", "--scheduler", cluster.address)
        )
    _common.row(
        "vlprep --fps 1, 2-worker Dask cluster on 127.0.0.1", on_dask, on_dask / local, "local"
    )


if __name__ == "__main__":
    main()
