"""Ctrl-C and SIGTERM stop a run within a second or two, its child processes with it, and leave
only what the next run resumes or removes: real subprocesses, a local server that trickles,
ffmpegs extracting long videos."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pyutils.core.atomic import is_temporary
from pyutils.devtools.local_server import LocalServer
from pyutils.devtools.sample import make_video
from tests.conftest import REPO, run_module

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
# Generous for a loaded 2-core machine (a stop takes about 0.1 s idle); without the fix, the
# runs below take 30 s or more.
STOP_SECONDS = 5.0


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def stop(process: subprocess.Popen, signum: int, group: bool) -> float:
    """Send `signum` (to the whole process group, as a terminal's Ctrl-C does, or to the one
    process); return how long it took to exit."""
    start = time.monotonic()
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    process.wait(timeout=30)
    return time.monotonic() - start


def name_of(process: psutil.Process) -> str:
    """Its name, or "" for one that ended between being listed and being read."""
    try:
        return process.name()
    except psutil.Error:
        return ""


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c", "sigterm-to-python"],
)
def test_two_slow_downloads_stop_at_once_and_resume(
    tmp_path: Path, signum: int, group: bool
) -> None:
    files = {f"v/{n}.mp4": random.Random(n).randbytes(200_000) for n in ("a", "b")}
    dest = tmp_path / "originals"
    with LocalServer(files, trickle=dict.fromkeys(files, 0.05)) as server:
        url_list = tmp_path / "urls.txt"
        url_list.write_text("".join(f"{server.url(path)}\n" for path in files))
        args = [sys.executable, "-m", "pyutils.fetch.fetch_list", str(url_list), str(dest)]
        with subprocess.Popen(
            args, env=ENV, start_new_session=True, stderr=subprocess.PIPE, text=True
        ) as run:
            partials = lambda: [p for p in dest.glob(".*") if is_temporary(p)]  # noqa: E731
            wait_for(lambda: len(partials()) == 2 and all(p.stat().st_size for p in partials()))
            took = stop(run, signum, group)
            stderr = run.stderr.read()
        assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
        assert run.returncode == 128 + signum
        assert "interrupted" in stderr and "Traceback" not in stderr
        time.sleep(0.3)  # nothing may land after the exit either
        assert sorted(p.name for p in dest.iterdir() if not is_temporary(p)) == []
        kept = {p.name: p.stat().st_size for p in partials()}
        assert len(kept) == 2 and all(0 < size < 200_000 for size in kept.values())

        server.trickle.clear()
        result = run_module("pyutils.fetch.fetch_list", str(url_list), str(dest))
        assert result.returncode == 0, result.stderr
        for path, data in files.items():
            assert (dest / Path(path).name).read_bytes() == data
        assert all(server.ranges_seen(path) for path in files)  # resumed, not restarted


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two videos whose every-frame extraction takes several seconds each."""
    folder = tmp_path_factory.mktemp("long")
    for name in ("a.mp4", "b.mp4"):
        make_video(folder / name, 40, width=320, height=240, fps=30, gop=300)
    return folder


def extraction_started(run: subprocess.Popen, frames: Path) -> bool:
    ffmpegs = [p for p in descendants(run.pid) if "ffmpeg" in name_of(p)]
    written = any(frames.glob(".*vlprep-tmp*/*.jpg"))
    return len(ffmpegs) == 2 and written


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c", "sigterm-to-python"],
)
def test_frames_stops_its_ffmpegs_and_the_rerun_finishes(
    tmp_path: Path, long_videos: Path, signum: int, group: bool
) -> None:
    frames = tmp_path / "frames"
    args = [sys.executable, "-m", "pyutils.video.frames", str(long_videos), str(frames)]
    with subprocess.Popen(
        [*args, "--jobs", "2"], env=ENV, start_new_session=True, stderr=subprocess.DEVNULL
    ) as run:
        wait_for(lambda: extraction_started(run, frames))
        children = descendants(run.pid)
        took = stop(run, signum, group)
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert run.returncode == 128 + signum
    psutil.wait_procs(children, timeout=2)
    assert [child for child in children if child.is_running()] == []  # the ffmpegs too
    assert sorted(p.name for p in frames.iterdir() if p.is_dir() and not is_temporary(p)) == []

    result = run_module("pyutils.video.frames", str(long_videos), str(frames), "--fps", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in frames.iterdir() if p.is_dir()) == ["a", "b"]
    assert [p for p in frames.iterdir() if is_temporary(p)] == []


def test_sigterm_to_make_stops_the_python_process_and_its_ffmpegs(
    tmp_path: Path, long_videos: Path
) -> None:
    frames = tmp_path / "frames"
    make = [
        "make",
        "-s",
        "-C",
        str(REPO),
        "-o",
        ".venv/.setup-stamp",
        "frames",
        f"VIDEOS={long_videos}",
        f"FRAMES={frames}",
        "JOBS=2",
    ]
    with subprocess.Popen(make, env=ENV, start_new_session=True, stderr=subprocess.DEVNULL) as run:
        wait_for(lambda: extraction_started(run, frames))
        children = descendants(run.pid)
        took = stop(run, signal.SIGTERM, group=False)  # to make alone
    psutil.wait_procs(children, timeout=STOP_SECONDS)
    assert [n for child in children if child.is_running() and (n := name_of(child))] == []
    assert took < STOP_SECONDS and run.returncode != 0
    assert sorted(p.name for p in frames.iterdir() if p.is_dir() and not is_temporary(p)) == []
