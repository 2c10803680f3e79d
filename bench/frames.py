"""Frame extraction against the reference script and against the decode floor, as users run it:
on a machine with no system ffmpeg (vlprep uses the bundled one), and, when this machine has one,
with that system ffmpeg first on PATH (vlprep picks what it can do) and set by FFMPEG (vlprep
uses it, whatever its age). Every figure is the median of _common.RUNS runs.

Corpora (generated once into bench/out): 16 clips of 15 s, 640x360, 30 fps, H.264 ~500 kb/s, as
in MSRVTT; 3 videos of 180 s with a keyframe every 4 s, as in ActivityNet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common

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
    where a command's fixed start-up (about 0.2 s of interpreter and imports) stops mattering."""
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


def run_each(videos: list[Path], jobs: int, command: Callable[[Path], list[str]]) -> None:
    with ThreadPoolExecutor(jobs) as pool:
        for done in pool.map(lambda v: subprocess.run(command(v), capture_output=True), videos):
            done.check_returncode()


def reference(folder: Path, ffmpeg: str) -> None:
    """The script vlprep replaces: a pool of 16, one default-threaded ffmpeg per video, every
    frame at native rate, -q:v 2 (run with argument lists here, which costs the same), with the
    machine's ffmpeg."""
    out = fresh("ref-frames")

    def command(video: Path) -> list[str]:
        (out / video.stem).mkdir()
        target = out / video.stem / "image_%05d.jpg"
        return [ffmpeg, "-nostdin", "-v", "error", "-i", str(video), "-q:v", "2", str(target)]

    run_each(sorted(folder.glob("*.mp4")), 16, command)


def decode_floor(folder: Path, ffmpeg: str) -> None:
    """Decoding every frame and nothing else, one single-threaded ffmpeg per core."""

    def command(video: Path) -> list[str]:
        decode = ["-threads", "1", "-i", str(video), "-f", "null", "-"]
        return [ffmpeg, "-nostdin", "-v", "error", *decode]

    run_each(sorted(folder.glob("*.mp4")), CPUS, command)


def vlprep(folder: Path, env: dict[str, str], *options: str) -> None:
    out = fresh("vlprep-frames")
    args = [sys.executable, "-m", "pyutils.video.frames", str(folder), str(out), *options]
    subprocess.run(args, check=True, env=env, stderr=subprocess.DEVNULL)


def first_line(folder: Path, env: dict[str, str], *options: str) -> str:
    """What the run says it does (which ffmpeg, why, how), from a dry run."""
    args = [sys.executable, "-m", "pyutils.video.frames", str(folder), str(_common.BENCH_OUT)]
    args += ["--dry-run", *options]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return done.stderr.splitlines()[0]


# (label, corpus, vlprep options): the rows measured for every machine.
CASES = [
    ("16 clips", "clips-15s", ("--fps", "1")),
    ("64 clips (the 16, 4 times)", "clips-15s-x4", ("--fps", "1")),
    ("3 videos of 180 s", "long-180s", ("--fps", "1")),
    ("3 videos of 180 s", "long-180s", ("--num-frames", "32")),
    ("12 videos of 180 s (the 3, 4 times)", "long-180s-x4", ("--num-frames", "32")),
]


def table(name: str, env: dict[str, str]) -> None:
    long = _common.BENCH_OUT / "long-180s"
    print(f"\n### {name}\n\nfirst line: `{first_line(long, env, '--num-frames', '32')}`")
    _common.table_head()


def against(result: _common.Paired, bundled_floor: float | None) -> str:
    text = result.ratio_text("decode floor")
    if bundled_floor is not None:
        text += f"; {result.candidate / bundled_floor:.2f}x the bundled ffmpeg's floor"
    return text


def rows_for(
    name: str, env: dict[str, str], ffmpeg: str, bundled_floors: dict[str, float]
) -> dict[str, float]:
    """The rows for one machine: `ffmpeg` is what its reference script and `ffmpeg -f null`
    run; vlprep runs in `env` and picks its own. Each vlprep figure is timed in pairs with its
    baseline (`_common.paired`). Returns this machine's decode floors, by corpus; ratios are
    against them and, when given, `bundled_floors`."""
    table(name, env)
    clips = _common.BENCH_OUT / "clips-15s"
    same = _common.paired(lambda: reference(clips, ffmpeg), lambda: vlprep(clips, env))
    _common.row("reference script (pool of 16, all frames, q:v 2), 16 clips", same.baseline)
    _common.line("vlprep, same settings", same.candidate, same.ratio_text("reference"))
    floors: dict[str, float] = {}
    for label, folder_name, options in CASES:
        folder = _common.BENCH_OUT / folder_name
        result = _common.paired(
            lambda folder=folder: decode_floor(folder, ffmpeg),
            lambda folder=folder, options=options: vlprep(folder, env, *options),
        )
        if folder_name not in floors:
            floors[folder_name] = result.baseline
            _common.row(f"decode floor, {label}", result.baseline)
        text = against(result, bundled_floors.get(folder_name))
        _common.line(f"vlprep {' '.join(options)}, {label}", result.candidate, text)
    return floors


def main() -> None:
    clips = corpus("clips-15s", 16, 15)
    long = corpus("long-180s", 3, 180, gop=120)
    repeated(clips, 4)
    repeated(long, 4)
    _common.header(
        "frames: 16 clips of 15 s (640x360, 30 fps) and 3 videos of 180 s (keyframe every 4 s); "
        f"each figure the median of {_common.RUNS} runs, each ratio the median of as many "
        "runs of the two back to back",
        table=False,
    )
    bundled = _common.bundled_ffmpeg()
    floors = rows_for("no system ffmpeg: the bundled one", _common.user_env(None), bundled, {})
    system = _common.system_ffmpeg()
    if system:
        version = _common.ffmpeg_version(system)
        on_path = _common.user_env(system)
        rows_for(f"system ffmpeg {version} on PATH", on_path, system, floors)
        pinned = _common.user_env(system, FFMPEG=system)
        table(f"FFMPEG= the system ffmpeg {version}, set explicitly", pinned)
        for options in (("--num-frames", "32"), ("--fps", "1")):
            result = _common.paired(
                lambda: decode_floor(long, system),
                lambda options=options: vlprep(long, pinned, *options),
            )
            text = against(result, floors["long-180s"])
            _common.line(f"vlprep {' '.join(options)}, 3 videos of 180 s", result.candidate, text)
    for written in ("ref-frames", "vlprep-frames"):  # hundreds of MB of JPEGs: keep the corpora
        shutil.rmtree(_common.BENCH_OUT / written)


if __name__ == "__main__":
    main()
