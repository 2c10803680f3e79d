"""Shared test fixtures: generated videos (never downloaded) and the real-data fixture folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyutils.core.media import find_ffmpeg
from pyutils.devtools.sample import make_video

REPO = Path(__file__).resolve().parent.parent
# `make test` runs pytest from make; the commands the tests run are not, unless a test says so.
os.environ.pop("VLPREP_FROM_MAKE", None)
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"

# name -> (seconds, fps): what the sample videos were generated with.
SAMPLE_VIDEOS = {"clip.mp4": (2.0, 25), "clip.mkv": (3.0, 30), "clip.webm": (1.6, 25)}


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        name: make_video(folder / name, seconds, width=160, height=120, fps=fps)
        for name, (seconds, fps) in SAMPLE_VIDEOS.items()
    }


@pytest.fixture
def real_fixtures() -> Path:
    """The shared real-data folder; tests that need it skip when it is absent (a user's clone)."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


def decoded_frame_count(path: Path) -> int:
    """Frames ffmpeg decodes from the first video stream: an independent check on probe()."""
    result = subprocess.run(
        [find_ffmpeg(), "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1])


def run_module(
    module: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` as a user would; wide output, so tables do not wrap."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
    )


def kill_once_one_is_done(args: list[str], folder: Path, prefix: str) -> list[Path]:
    """Run `python -m args...` and kill -9 it and its children (ffmpeg) as soon as `folder`
    holds a finished sub-folder named `prefix...`: nothing gets to clean up. Returns the
    sub-folders that carry a final name afterwards."""

    def finished() -> list[Path]:
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(prefix)]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", *args]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with subprocess.Popen(command, env=env, start_new_session=True, **quiet) as run:
        while not finished() and run.poll() is None:
            time.sleep(0.01)
        os.killpg(run.pid, signal.SIGKILL)
    return finished()
