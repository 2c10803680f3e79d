"""`make didemo-mp4`: transcode every original video to `<original name>.mp4` (H.264, yuv420p).

The AdaCLIP DiDeMo splits key each video by its original file name (`x.mov`, `x.avi`, and names
ending in a bare `.` that carry no extension at all) and read `<original name>.mp4`. Inputs are
opened by content (ffmpeg probes the bytes, not the name), so an extensionless original works like
any other, and a file that is not a video fails with ffmpeg's own reason.

Each output is written under a temporary name in DEST and renamed when ffmpeg succeeded and the
result probes as a video; a rerun removes stale temporaries and skips finished outputs. Failures
are listed in `DEST/transcode_failures.jsonl`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from pyutils.core.atomic import (
    atomic_file,
    check_writable_folder,
    is_temporary,
    remove_stale_temporaries,
)
from pyutils.core.cli import Parser
from pyutils.core.errors import MediaError, UserError, run_cli
from pyutils.core.media import describe_ffmpeg, ffmpeg_command, probe, require
from pyutils.core.parallel import ParallelOptions, threads_here
from pyutils.core.report import FailureLog, log
from pyutils.core.stage import add_parallel_options, parallel_options, run_stage
from pyutils.core.video_index import (
    ORIGINAL_EXTENSIONS,
    is_utf8,
    not_utf8_reason,
    printable,
    require_folder,
)
from pyutils.video.frame_plan import ExtractionError, frame_times


def is_original(name: str) -> bool:
    """A video by its extension, or a name with no extension (`x.` or `x`): decided by content."""
    if name.startswith(".") or is_temporary(name):
        return False
    stem, dot, extension = name.rpartition(".")
    if not dot or not extension:
        return True
    return extension.lower() in ORIGINAL_EXTENSIONS


def find_originals(source: Path, dest: Path) -> list[Path]:
    """The originals directly in `source` (DiDeMo is one flat folder), sorted."""
    require_folder(source, "DIDEMO_SRC", "original videos")
    if source.resolve() == dest.resolve():
        raise UserError(f"{source}: write the .mp4 files to another folder (VIDEOS=), not here")
    return sorted(p for p in source.iterdir() if p.is_file() and is_original(p.name))


@dataclass(frozen=True)
class TranscodeTask:
    """One original to transcode: the work unit."""

    source: str
    target: str
    threads: int | None  # decoding and filter threads; None on Dask, where the worker sizes them
    crf: int
    preset: str


@dataclass(frozen=True)
class TranscodeResult:
    source: str
    error: str = ""

    @property
    def item(self) -> str:
        return Path(self.source).name


def transcode_command(task: TranscodeTask, target: str) -> list[str]:
    """One transcode into `target`. x264 gets a fixed thread count because its output bytes depend
    on it, and the same inputs must give the same files whatever JOBS is; decoding and scaling get
    the task's threads. Odd frame sizes are rounded down to even ones, which yuv420p requires."""
    threads = threads_here(task.threads)
    video = ffmpeg.input(task.source, threads=threads)["v:0"]
    video = video.filter("scale", "trunc(iw/2)*2", "trunc(ih/2)*2").filter("format", "yuv420p")
    output = video.output(
        target,
        f="mp4",
        preset=task.preset,
        crf=task.crf,
        movflags="+faststart",
        **{"c:v": "libx264", "x264-params": "threads=1"},
    )
    return ffmpeg_command(output, "-filter_complex_threads", str(threads), overwrite=True)


# A transcode shorter than this share of the duration the original's container declares means
# the original was cut short (a transfer that ended early): ffmpeg decodes what is there and
# would otherwise leave a healthy-looking short mp4.
WHOLE_SHARE = 0.9


def _check_whole(source: str, decoded: float) -> None:
    try:
        declared = probe(source).duration
        if decoded < declared * WHOLE_SHARE:
            # Matroska counts its duration from 0: a video that starts late (after its audio, or
            # with timestamps kept late) is that much shorter than what the container declares.
            declared -= float(frame_times(source).lead)
    except (MediaError, ExtractionError):
        return  # read by content only (ffmpeg opened it, PyAV cannot): nothing declared to trust
    if decoded < declared * WHOLE_SHARE:
        raise MediaError(
            f"the original is cut short: {decoded:.2f} s decoded of the {declared:.2f} s its "
            "container declares (an interrupted download?); fetch it again"
        )


def _refuse_without_video(source: str) -> None:
    """An original that holds only other streams (audio, subtitles) is said to be one, not left
    to ffmpeg's "Error binding filtergraph". A file PyAV cannot open goes on to ffmpeg, which
    reads more by content and says why it cannot."""
    import av  # on first use: 0.06 s of start-up

    try:
        with av.open(source, metadata_errors="ignore") as container:
            kinds = sorted({stream.type for stream in container.streams})
            has_video = bool(container.streams.video)
    except (av.FFmpegError, OSError, ValueError):
        return
    if not has_video:
        holds = f" (it holds {' and '.join(kinds)} only)" if kinds else ""
        raise MediaError(f"no video stream{holds}: not a video, nothing to transcode")


def transcode_one(task: TranscodeTask) -> TranscodeResult:
    """Worker: transcode `task.source` to `task.target`; never raises, reports instead."""
    try:
        _refuse_without_video(task.source)
        with atomic_file(task.target) as temporary:
            command = transcode_command(task, str(temporary))
            result = subprocess.run(command, capture_output=True, text=True, errors="replace")
            if result.returncode != 0:
                reason = result.stderr.strip() or f"ffmpeg exited with status {result.returncode}"
                raise MediaError(reason)
            written = probe(temporary)  # an output that does not read back is not done
            _check_whole(task.source, written.duration)
        return TranscodeResult(task.source)
    except (OSError, MediaError) as exc:
        return TranscodeResult(task.source, str(exc))


def transcode_all(
    source: Path,
    dest: Path,
    parallel: ParallelOptions,
    crf: int = 20,
    preset: str = "veryfast",
) -> int:
    originals = find_originals(source, dest)
    check_writable_folder(dest, "VIDEOS")
    require("transcode")
    log(
        f"transcode: H.264 (libx264, crf {crf}, preset {preset}, yuv420p), {parallel.where()}; "
        f"{describe_ffmpeg()}, one ffmpeg per video"
    )
    dest.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(dest)
    todo = [p for p in originals if not (dest / f"{p.name}.mp4").exists()]
    log(f"transcode: {len(originals)} originals in {source}, {len(originals) - len(todo)} done")
    threads = parallel.ffmpeg_threads()
    tasks = [
        TranscodeTask(str(p), str(dest / f"{p.name}.mp4"), threads, crf, preset)
        for p in todo
        if is_utf8(p)
    ]
    failures = FailureLog("transcode", dest)
    for original in todo:
        if not is_utf8(original):
            failures.fail(printable(original.name), not_utf8_reason(original))
    shared = [str(source), str(dest)]
    for _ in run_stage("transcode", transcode_one, tasks, parallel, failures, shared):
        pass  # the outputs are the files; `failures` counts the results
    return failures.finish()


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.video.transcode",
        description=__doc__,
        make_names={"source": "DIDEMO_SRC", "dest": "VIDEOS"},
    )
    parser.add_argument("source", type=Path, help="folder of original videos (flat)")
    parser.add_argument("dest", type=Path, help="folder for the <original name>.mp4 files")
    add_parallel_options(parser, "threading", "ffmpegs")
    parser.add_argument("--crf", type=int, default=20, help="x264 quality (lower is better)")
    parser.add_argument("--preset", default="veryfast", help="x264 speed preset")
    args = parser.parse_args(argv)
    return transcode_all(args.source, args.dest, parallel_options(args), args.crf, args.preset)


if __name__ == "__main__":
    run_cli(main)
