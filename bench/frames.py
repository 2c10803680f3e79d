"""Frame extraction against the reference script and against what decoding costs, as users run
it: on a machine with no system ffmpeg (vlprep uses the bundled one), and, when this machine has
one, with that system ffmpeg first on PATH (vlprep picks what it can do) and set by FFMPEG
(vlprep uses it, whatever its age). Every figure is the median of _common.RUNS runs.

Two baselines: the limit, every video's single-thread decode time (`ffmpeg -threads 1 -f null`,
one video at a time), summed, over the cores: what the cores could do if decoding every frame
were the only work; and the old floor, those decodes run one per core (a pool of CPUS), whose
last videos leave cores idle. Each vlprep figure is timed back to back with the limit.

The limit counts every core as fast as one alone. Whether they are is measured too, per codec:
CPUS decodes side by side against one alone (`side_by_side`). Where the cores share what
decoding leans on (a host's hyperthreads, a shared cache: on a cloud VM's two vCPUs a second
busy core was seen to slow a decode by 15-30%), the cores together do less than CPUS times one,
and every figure that keeps them all busy, vlprep's included, pays that against the limit.

Corpora (generated once into bench/out): 16 clips of 15 s, 640x360, 30 fps, H.264 ~500 kb/s, as
in MSRVTT; 3 videos of 180 s with a keyframe every 4 s, as in ActivityNet (x264 ultrafast: no
B-frames); and 3 videos of 120 s, 640x360, 30 fps, a keyframe every 5 s, in each codec real
downloads hold: H.264 High from x264 medium (B-frames), VP9 in WebM (libvpx good, alt-ref
frames), AV1 from SVT-AV1 (preset 8). Each codec's 3 are one encode under three names (hard
links): encoding VP9 takes minutes, and decoding costs the same for a copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import _common

from pyutils.devtools.sample import make_video

CPUS = os.cpu_count() or 1
# Codec corpora: folder -> (extension, encoder options for `make_video`).
CODECS = {
    "h264-high-120s": (
        "mp4",
        {"c:v": "libx264", "preset": "medium", "profile:v": "high", "pix_fmt": "yuv420p"},
    ),
    "vp9-120s": (
        "webm",
        {"c:v": "libvpx-vp9", "deadline": "good", "cpu-used": "5", "row-mt": "1", "b:v": "800k"},
    ),
    "av1-120s": ("mp4", {"c:v": "libsvtav1", "preset": "8", "pix_fmt": "yuv420p"}),
}
VIDEO_SUFFIXES = (".mp4", ".webm")


def corpus(name: str, count: int, seconds: float, gop: int | None = None) -> Path:
    folder = _common.BENCH_OUT / name
    for index in range(count):
        video = folder / f"video{index:02d}.mp4"
        if not video.exists():
            make_video(video, seconds, 640, 360, 30, gop=gop, bitrate="500k")
    return folder


def codec_corpus(name: str) -> Path:
    """3 videos of 120 s in the codec of CODECS[name]: one encode, three names."""
    extension, encoder = CODECS[name]
    folder = _common.BENCH_OUT / name
    first = folder / f"video00.{extension}"
    if not first.exists():
        partial = folder / f".partial.{extension}"  # a killed encode is never taken as done
        make_video(partial, 120, 640, 360, 30, gop=150, encoder=encoder)
        partial.rename(first)
    for index in (1, 2):
        link = folder / f"video{index:02d}.{extension}"
        if not link.exists():
            os.link(first, link)
    return folder


def videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in VIDEO_SUFFIXES)


def repeated(folder: Path, times: int) -> Path:
    """`folder`'s videos `times` over (hard links under new names): the same work at a scale
    where a command's fixed start-up (about 0.2 s of interpreter and imports) stops mattering."""
    out = folder.with_name(f"{folder.name}-x{times}")
    out.mkdir(exist_ok=True)
    for copy in range(times):
        for video in videos_in(folder):
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

    run_each(videos_in(folder), 16, command)


def decode_command(ffmpeg: str, video: Path) -> list[str]:
    """Decoding every frame on one thread, and nothing else."""
    return [ffmpeg, "-nostdin", "-v", "error", "-threads", "1", "-i", str(video), "-f", "null", "-"]


def decode_floor(folder: Path, ffmpeg: str) -> None:
    """The old floor: every video decoded on one thread, one ffmpeg per core."""
    run_each(videos_in(folder), CPUS, lambda video: decode_command(ffmpeg, video))


def side_by_side(folder: Path, ffmpeg: str) -> float:
    """How many cores' worth of decoding this machine's cores do together: one decode alone
    against CPUS of the same video side by side (best of two rounds, each back to back)."""
    video = videos_in(folder)[0]
    command = decode_command(ffmpeg, video)
    rounds = []
    for _ in range(2):
        alone = _common.timed(lambda: subprocess.run(command, check=True))
        together = _common.timed(lambda: run_each([video] * CPUS, CPUS, lambda v: command))
        rounds.append(CPUS * alone / together)
    return max(rounds)


def decode_one_by_one(folder: Path, ffmpeg: str) -> None:
    """Every video decoded on one thread, one at a time: its wall time over CPUS is the limit."""
    run_each(videos_in(folder), 1, lambda video: decode_command(ffmpeg, video))


def vlprep(folder: Path, env: dict[str, str], *options: str) -> None:
    out = fresh("vlprep-frames")
    args = [sys.executable, "-m", "pyutils.video.frames", str(folder), str(out), *options]
    _common.run_quiet(args, env)


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
    *(
        (f"3 videos of 120 s, {codec}", folder, options)
        for codec, folder in (
            ("H.264 High", "h264-high-120s"),
            ("VP9", "vp9-120s"),
            ("AV1", "av1-120s"),
        )
        for options in (("--num-frames", "32"), ("--fps", "1"))
    ),
]


def table(name: str, env: dict[str, str]) -> None:
    long = _common.BENCH_OUT / "long-180s"
    print(f"\n### {name}\n\nfirst line: `{first_line(long, env, '--num-frames', '32')}`")
    _common.table_head()


@dataclass(frozen=True)
class Baselines:
    """What decoding a corpus costs on one machine, in seconds: the limit and the old floor."""

    limit: float
    floor: float


def measured(
    folder: Path, env: dict[str, str], options: tuple[str, ...], ffmpeg: str
) -> tuple[_common.Paired, float]:
    """vlprep timed back to back with the one-by-one decodes, and the limit they give."""
    result = _common.paired(
        lambda: decode_one_by_one(folder, ffmpeg), lambda: vlprep(folder, env, *options)
    )
    return result, result.baseline / CPUS


def against(
    result: _common.Paired, ours: Baselines, bundled: Baselines | None, limit: float
) -> str:
    """The ratios of one vlprep figure: to the limit measured with it (and its CPU time to that
    of the decodes the limit sums), to the old floor, and to the bundled ffmpeg's limit when
    given."""
    text = (
        f"{result.candidate / limit:.2f}x the limit (CPU time {result.cpu_ratio:.2f}x); "
        f"{result.candidate / ours.floor:.2f}x the old floor"
    )
    if bundled is not None:
        text += f"; {result.candidate / bundled.limit:.2f}x the bundled ffmpeg's limit"
    return text


def rows_for(
    name: str, env: dict[str, str], ffmpeg: str, bundled: dict[str, Baselines]
) -> dict[str, Baselines]:
    """The rows for one machine: `ffmpeg` is what its reference script and the decodes run;
    vlprep runs in `env` and picks its own. Returns this machine's baselines, by corpus; the
    ratios are against them and, when given, the `bundled` ones."""
    table(name, env)
    clips = _common.BENCH_OUT / "clips-15s"
    same = _common.paired(lambda: reference(clips, ffmpeg), lambda: vlprep(clips, env))
    _common.row("reference script (pool of 16, all frames, q:v 2), 16 clips", same.baseline)
    _common.line("vlprep, same settings", same.candidate, same.ratio_text("reference"))
    baselines: dict[str, Baselines] = {}
    for label, folder_name, options in CASES:
        folder = _common.BENCH_OUT / folder_name
        result, limit = measured(folder, env, options, ffmpeg)
        if folder_name not in baselines:
            floor = _common.median_time(lambda folder=folder: decode_floor(folder, ffmpeg))
            baselines[folder_name] = Baselines(limit, floor)
            _common.row(f"limit (single-thread decodes summed / {CPUS} cores), {label}", limit)
            _common.row(f"old floor (one decode per core), {label}", floor, floor / limit, "limit")
            if folder_name in CODECS:
                scaling = side_by_side(folder, ffmpeg)
                _common.line(
                    f"{CPUS} decodes side by side against one alone, {label}",
                    None,
                    f"the {CPUS} cores decode {scaling:.2f}x one core",
                )
        text = against(result, baselines[folder_name], bundled.get(folder_name), limit)
        _common.line(f"vlprep {' '.join(options)}, {label}", result.candidate, text)
    return baselines


def main() -> None:
    clips = corpus("clips-15s", 16, 15)
    long = corpus("long-180s", 3, 180, gop=120)
    repeated(clips, 4)
    repeated(long, 4)
    for name in CODECS:
        codec_corpus(name)
    _common.header(
        "frames: 16 clips of 15 s (640x360, 30 fps), 3 videos of 180 s (keyframe every 4 s), "
        "3 videos of 120 s in H.264 High, VP9 and AV1 (keyframe every 5 s); each figure the "
        f"median of {_common.RUNS} runs; the limit is each video's single-thread decode, "
        f"summed, over {CPUS} cores, timed back to back with each vlprep run",
        table=False,
    )
    bundled = _common.bundled_ffmpeg()
    ours = rows_for("no system ffmpeg: the bundled one", _common.user_env(None), bundled, {})
    system = _common.system_ffmpeg()
    if system:
        version = _common.ffmpeg_version(system)
        on_path = _common.user_env(system)
        own = rows_for(f"system ffmpeg {version} on PATH", on_path, system, ours)
        pinned = _common.user_env(system, FFMPEG=system)
        table(f"FFMPEG= the system ffmpeg {version}, set explicitly", pinned)
        for options in (("--num-frames", "32"), ("--fps", "1")):
            result, limit = measured(long, pinned, options, system)
            text = against(result, own["long-180s"], ours["long-180s"], limit)
            _common.line(f"vlprep {' '.join(options)}, 3 videos of 180 s", result.candidate, text)
    for written in ("ref-frames", "vlprep-frames"):  # hundreds of MB of JPEGs: keep the corpora
        shutil.rmtree(_common.BENCH_OUT / written)


if __name__ == "__main__":
    main()
