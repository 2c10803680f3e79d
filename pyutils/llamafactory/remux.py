"""Copy the videos LLaMA-Factory would misread into MP4, where PyAV reports what it needs.

Matroska and WebM carry no per-stream frame count or duration, so LLaMA-Factory's
`_get_video_sample_indices` takes such a video as "infinite" and trains on its first VIDEO_MAXLEN
frames timed 1/VIDEO_FPS apart (a 20 s mkv becomes its first 5 s, timed as 64 s). MP4 holds both.
Each such video's first video stream is copied (`-c copy`: no re-encoding, same frames) into
`<remux dir>/<stem>.mp4`; a stream that MP4 cannot hold (VP8, Theora, ...) is transcoded to H.264
instead, with `make didemo-mp4`'s settings. Audio is left out: the trainer reads frames only.

An MP4 with an edit list (`ffmpeg -ss ... -c copy`, yt-dlp's --download-sections) counts frames
it never shows, so LLaMA-Factory spreads its picks past the last frame it decodes and loses them
(`replay._edit_list_cost`). Its copy keeps the edit list, so such a video is transcoded instead,
which writes exactly the frames shown, and checked to have as many.

A stage (`core.stage`): one `RemuxTask` per video, the worker `remux_one`, failures listed in
`<remux dir>/remux_failures.jsonl`. Outputs are written under a temporary name and renamed once
PyAV reads them back with a frame count and a stream duration. `<remux dir>/remux_manifest.json`
records each output's source (path, size, mtime); a rerun reuses what is still current and redoes
only the rest.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg
import orjson

from pyutils.core.atomic import atomic_file, atomic_write_bytes, remove_stale_temporaries
from pyutils.core.errors import MediaError
from pyutils.core.media import ffmpeg_command
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import FailureLog, log
from pyutils.core.stage import run_stage
from pyutils.llamafactory.qwen_video import misread_reason, read_stream
from pyutils.video.transcode import TranscodeTask, transcode_command

STAGE = "remux"
MANIFEST = "remux_manifest.json"


@dataclass
class RemuxSummary:
    """What the remux step added: videos copied, transcoded, reused, failed; bytes; seconds."""

    copied: int = 0
    transcoded: int = 0
    reused: int = 0
    failed: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    def line(self, folder: Path) -> str:
        return (
            f"remux: {self.copied} copied and {self.transcoded} transcoded into MP4 "
            f"({self.bytes_written / 1e6:.1f} MB written in {self.seconds:.1f} s), "
            f"{self.reused} reused, {self.failed} failed, in {folder}"
        )


@dataclass(frozen=True)
class RemuxTask:
    """One video to put into MP4: the work unit."""

    source: str
    target: str
    threads: int | None  # the transcode fallback's threads; None on Dask, sized by the worker


@dataclass(frozen=True)
class RemuxResult:
    source: str
    target: str
    method: str = ""  # "copy" or "transcode"; empty when it failed
    bytes: int = 0
    error: str = ""

    @property
    def item(self) -> str:
        return self.source


def copy_command(source: str, target: str) -> list[str]:
    """The first video stream of `source` copied as it is (no re-encoding) into MP4 `target`;
    "file:" so that a name like "a:b.mkv" is never read as a protocol."""
    video = ffmpeg.input(f"file:{os.path.abspath(source)}")["v:0"]
    output = video.output(target, f="mp4", movflags="+faststart", **{"c:v": "copy"})
    return ffmpeg_command(output, overwrite=True)


def _run(args: list[str]) -> str:
    """ffmpeg's error text, "" on success."""
    result = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if result.returncode == 0:
        return ""
    return result.stderr.strip() or f"ffmpeg exited with status {result.returncode}"


def remux_one(task: RemuxTask) -> RemuxResult:
    """Worker: copy (else transcode) `task.source` to `task.target`; never raises."""
    import av  # on first use: a run that needs no video never loads PyAV

    try:
        with atomic_file(task.target) as temporary:
            method, error = "copy", _run(copy_command(task.source, str(temporary)))
            # A copy keeps an edit list and the packets it hides (the references of the first
            # frames shown): such a video is transcoded, which writes only the frames shown.
            copied = None if error else read_stream(temporary)
            if error or (copied and copied.hidden):
                method = "transcode"
                transcode = TranscodeTask(task.source, task.target, task.threads, 20, "veryfast")
                error = _run(transcode_command(transcode, str(temporary)))
            if error:
                raise MediaError(error)
            written = read_stream(temporary)
            still = misread_reason(written)
            if still:
                raise MediaError(f"the MP4 still reads with {still}")
            if copied and copied.hidden and written.frames != copied.decodable:
                raise MediaError(
                    f"the MP4 has {written.frames} frames, the original shows {copied.decodable}"
                )
        return RemuxResult(task.source, task.target, method, os.path.getsize(task.target))
    except (OSError, ValueError, av.FFmpegError, MediaError) as exc:
        return RemuxResult(task.source, task.target, error=f"remux to mp4 failed: {exc}")


def _fingerprint(path: str) -> dict[str, Any]:
    status = os.stat(path)
    return {"source": os.path.abspath(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _current(known: dict[str, Any] | None, video: str, target: Path) -> bool:
    """A remux from this same source file (path, size, mtime) that is still whole on disk."""
    if not known or known.get("source_file") != _fingerprint(video):
        return False
    return target.is_file() and os.path.getsize(target) == known.get("bytes")


def _load_manifest(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def remux_misread(
    videos: list[str], folder: Path, parallel: ParallelOptions
) -> tuple[dict[str, str], RemuxSummary, int]:
    """Remux `videos`, which LLaMA-Factory would misread (the caller knows which from the probes'
    `VideoInfo.header_gaps`, cached ones included: no file is opened to decide), into `folder`.

    Returns (source path -> MP4 path for each one now readable, summary, exit status: 1 when a
    video could be neither copied nor transcoded). Videos are named `<stem>.mp4`; stems are
    unique (the caller's index refuses duplicates).
    """
    start = time.monotonic()
    summary = RemuxSummary()
    todo = list(dict.fromkeys(videos))
    if not todo:
        return {}, summary, 0
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    manifest_path = folder / MANIFEST
    manifest = _load_manifest(manifest_path)
    mapping: dict[str, str] = {}
    tasks = []
    threads = parallel.ffmpeg_threads()
    for video in todo:
        name = f"{Path(video).stem}.mp4"
        target = folder / name
        if _current(manifest.get(name), video, target):
            mapping[video] = str(target)
            summary.reused += 1
            continue
        tasks.append(RemuxTask(video, str(target), threads))
    failures = FailureLog(STAGE, folder)
    for result in run_stage("remux to mp4", remux_one, tasks, parallel, failures, [str(folder)]):
        name = Path(result.target).name
        if result.error:
            summary.failed += 1
            manifest.pop(name, None)
            continue
        mapping[result.source] = result.target
        summary.bytes_written += result.bytes
        if result.method == "copy":
            summary.copied += 1
        else:
            summary.transcoded += 1
        manifest[name] = {
            "source_file": _fingerprint(result.source),
            "method": result.method,
            "bytes": result.bytes,
        }
    status = 0
    if tasks:
        ordered = {k: manifest[k] for k in sorted(manifest)}
        atomic_write_bytes(manifest_path, orjson.dumps(ordered, option=orjson.OPT_INDENT_2))
        status = failures.finish()
    summary.seconds = time.monotonic() - start
    log(summary.line(folder))
    return mapping, summary, status
