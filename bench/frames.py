"""Frame extraction against the reference script and against the decode floor.

Corpora (generated once into bench/out): 16 clips of 15 s, 640x360, 30 fps, H.264 ~500 kb/s, as
in MSRVTT; 3 videos of 180 s with a keyframe every 4 s, as in ActivityNet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common

from pyutils.core.media import find_ffmpeg
from pyutils.devtools.sample import make_video

CPUS = os.cpu_count() or 1


def corpus(name: str, count: int, seconds: float, gop: int | None = None) -> Path:
    folder = _common.BENCH_OUT / name
    for index in range(count):
        video = folder / f"video{index:02d}.mp4"
        if not video.exists():
            make_video(video, seconds, 640, 360, 30, gop=gop, bitrate="500k")
    return folder


def repeated(folder: Path, times: int) -> Path:
    """`folder`'s videos `times` over (hard links under new names): the same work at a scale
    where a command's fixed start-up (about 0.25 s of interpreter and imports) stops mattering."""
    out = folder.with_name(f"{folder.name}-x{times}")
    out.mkdir(exist_ok=True)
    for copy in range(times):
        for video in sorted(folder.glob("*.mp4")):
            link = out / f"{video.stem}-{copy}.mp4"
            if not link.exists():
                os.link(video, link)
    return out


def fresh(name: str) -> Path:
    out = _common.BENCH_OUT / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


def run_each(videos: list[Path], jobs: int, command) -> None:  # noqa: ANN001 - a small callable
    with ThreadPoolExecutor(jobs) as pool:
        for done in pool.map(lambda v: subprocess.run(command(v), capture_output=True), videos):
            done.check_returncode()


def reference(folder: Path) -> None:
    """The script vlprep replaces: a pool of 16, one default-threaded ffmpeg per video, every
    frame at native rate, -q:v 2 (run with argument lists here, which costs the same)."""
    out = fresh("ref-frames")

    def command(video: Path) -> list[str]:
        (out / video.stem).mkdir()
        target = out / video.stem / "image_%05d.jpg"
        return [
            find_ffmpeg(),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(video),
            "-q:v",
            "2",
            str(target),
        ]

    run_each(sorted(folder.glob("*.mp4")), 16, command)


def decode_floor(folder: Path) -> None:
    """Decoding every frame and nothing else, one single-threaded ffmpeg per core."""

    def command(video: Path) -> list[str]:
        return [
            find_ffmpeg(),
            "-nostdin",
            "-v",
            "error",
            "-threads",
            "1",
            "-i",
            str(video),
            "-f",
            "null",
            "-",
        ]

    run_each(sorted(folder.glob("*.mp4")), CPUS, command)


def vlprep(folder: Path, *options: str) -> None:
    out = fresh("vlprep-frames")
    args = [sys.executable, "-m", "pyutils.video.frames", str(folder), str(out), *options]
    env = {**os.environ, "PYTHONPATH": str(_common.REPO)}
    subprocess.run(args, check=True, env=env, stderr=subprocess.DEVNULL)


def main() -> None:
    clips = corpus("clips-15s", 16, 15)
    long = corpus("long-180s", 3, 180, gop=120)
    _common.header("frames: 16 clips of 15 s (640x360, 30 fps) and 3 videos of 180 s")
    ref = _common.timed(lambda: reference(clips))
    _common.row("reference script (pool of 16, all frames, q:v 2)", ref)
    same = _common.timed(lambda: vlprep(clips))
    _common.row("vlprep, same settings", same, same / ref, "reference")
    floor = _common.timed(lambda: decode_floor(clips))
    _common.row("decode floor (ffmpeg -f null, all cores)", floor)
    fps1 = _common.timed(lambda: vlprep(clips, "--fps", "1"))
    _common.row("vlprep --fps 1", fps1, fps1 / floor, "decode floor")
    long_floor = _common.timed(lambda: decode_floor(long))
    _common.row("decode floor, 180 s videos", long_floor)
    picks = _common.timed(lambda: vlprep(long, "--num-frames", "32"))
    _common.row("vlprep --num-frames 32, 180 s videos", picks, picks / long_floor, "decode floor")
    many = repeated(clips, 4)
    many_floor = _common.timed(lambda: decode_floor(many))
    _common.row("decode floor, 64 clips (the 16, 4 times)", many_floor)
    many_fps1 = _common.timed(lambda: vlprep(many, "--fps", "1"))
    _common.row("vlprep --fps 1, 64 clips", many_fps1, many_fps1 / many_floor, "decode floor")
    longer = repeated(long, 4)
    longer_floor = _common.timed(lambda: decode_floor(longer))
    _common.row("decode floor, 12 videos of 180 s (the 3, 4 times)", longer_floor)
    longer_picks = _common.timed(lambda: vlprep(longer, "--num-frames", "32"))
    ratio = longer_picks / longer_floor
    _common.row("vlprep --num-frames 32, 12 videos of 180 s", longer_picks, ratio, "decode floor")
    for written in (
        "ref-frames",
        "vlprep-frames",
    ):  # hundreds of MB of JPEGs: keep the corpora only
        shutil.rmtree(_common.BENCH_OUT / written)


if __name__ == "__main__":
    main()
