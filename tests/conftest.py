"""Shared test fixtures: generated videos (never downloaded) and the real-data fixture folder."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyutils.core import media
from pyutils.core.media import find_ffmpeg
from pyutils.devtools.sample import make_video

REPO = Path(__file__).resolve().parent.parent
# `make test` runs pytest from make; the commands the tests run are not, unless a test says so.
os.environ.pop("VLPREP_FROM_MAKE", None)
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"

# Where a system ffmpeg lives, besides PATH: a user's machine has it in /usr/bin, a development
# machine keeps Debian 12's 5.1 in /opt/debian-ffmpeg, off PATH (so that it changes no one's
# tests). Tests that need a real old ffmpeg put the one they find first on PATH themselves, and
# skip that case where there is none.
SYSTEM_FFMPEGS = ("/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg", "/opt/debian-ffmpeg/bin/ffmpeg")

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
    module: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` as a user would (in `env`, else this process's environment);
    wide output, so tables do not wrap."""
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
    )


def run_make(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`make args` in the repository as a user types it (no make of ours around it)."""
    outer = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    env = {**{k: v for k, v in os.environ.items() if k not in outer}, **(env or {})}
    return subprocess.run(
        ["make", "--no-print-directory", *args], capture_output=True, text=True, cwd=cwd, env=env
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


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests (and the commands they run) keep their probe and ffmpeg caches to themselves."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


def bundled_ffmpeg() -> str:
    path = media.bundled_ffmpeg()
    assert path, "the imageio-ffmpeg wheel's ffmpeg is missing: run `make setup`"
    return path


LOGGING_FFMPEG = """#!/bin/sh
printf '%s\\n' "$*" >> LOG
exec REAL "$@"
"""
# Answers -version as ffmpeg VERSION, and refuses -bsf before -i as ffmpeg 5.1 does.
OLD_FFMPEG = """#!/bin/sh
printf '%s\\n' "$*" >> LOG
for arg in "$@"; do
  case "$arg" in
    -version) echo "ffmpeg version VERSION Copyright (c) 2000-2025 the FFmpeg developers"; exit 0;;
    -bsf*) echo "Option bsf:v (A comma-separated list of bitstream filters) cannot be" \\
      "applied to input url x -- you are trying to apply an input option to an output" \\
      "file or vice versa. Move this option before the file it belongs to." >&2; exit 1;;
    -i) break;;
  esac
done
exec REAL "$@"
"""


def old_ffmpeg_script(folder: Path, real: str, version: str | None = "5.1.9-0+deb12u1") -> Path:
    """`folder/ffmpeg`: a shell script that logs every command line to `folder/calls.log` and
    runs `real` with it, except that, given a `version`, it says it is that version and refuses
    a bitstream filter before -i in the words of ffmpeg 5.1 (what Debian 12 and Ubuntu 22.04
    have on PATH). With version None it only logs: a wrapper around a real old ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (OLD_FFMPEG if version else LOGGING_FFMPEG).replace("VERSION", version or "")
    text = text.replace("LOG", shlex.quote(str(folder / "calls.log")))
    script = folder / "ffmpeg"
    script.write_text(text.replace("REAL", shlex.quote(real)))
    script.chmod(0o755)
    return script


def calls(script: Path) -> list[str]:
    """The command lines `old_ffmpeg_script`'s script was run with."""
    log = script.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def real_old_ffmpeg() -> str | None:
    """A real ffmpeg on this machine that cannot seek by input bitstream filter (a system
    ffmpeg older than vlprep needs), or None."""
    for candidate in (shutil.which("ffmpeg"), *SYSTEM_FFMPEGS):
        if candidate and os.access(candidate, os.X_OK):
            tool = media.inspect_ffmpeg(candidate)
            if tool.version and not tool.input_bsf:
                return candidate
    return None


@pytest.fixture(params=["fake", "system"])
def old_ffmpeg(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An ffmpeg older than vlprep needs, as a logging script in its own folder: a fake 5.1
    (the bundled binary underneath, refusing input bitstream filters) everywhere, and the
    machine's real old one when it has one (skipped where it has none)."""
    if request.param == "fake":
        return old_ffmpeg_script(tmp_path / "old-ffmpeg", bundled_ffmpeg())
    real = real_old_ffmpeg()
    if real is None:
        pytest.skip("no system ffmpeg older than vlprep needs on this machine")
    return old_ffmpeg_script(tmp_path / "old-ffmpeg", real, version=None)


@pytest.fixture
def fresh_choice() -> Iterator[None]:
    """The ffmpeg choice made again for this test's environment, and forgotten after it."""
    media.choose_ffmpeg.cache_clear()
    yield
    media.choose_ffmpeg.cache_clear()
