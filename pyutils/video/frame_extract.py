"""Extracting the frames of one video: the work unit that `pyutils.video.frames` runs in parallel.

`extract_video(task) -> result` takes and returns plain dicts (paths as str), never raises for a
bad video and touches nothing outside its own destination folder, so the same function runs in
this process, in loky workers, or as a task on a Dask cluster.

Frames are written into a temporary folder beside the destination and renamed into place only
when ffmpeg succeeded and the number of frames is the one the probe predicts.
"""

from __future__ import annotations

import bisect
import os
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pyutils.core.atomic import atomic_dir
from pyutils.core.errors import MediaError
from pyutils.core.media import VideoInfo, find_ffmpeg, probe
from pyutils.core.parallel import threads_per_task

# Containers whose packets come in the same order and number to PyAV and to ffmpeg, with
# reliable keyframe flags; elsewhere (MPEG-PS, AVI, ASF) only the sequential pass is trusted.
SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")
# What one more stretch costs beyond its frames, in decoded frames: a margin that keeps the one
# pass (no fallback risk) when skipping would save little.
SEEK_OVERHEAD_FRAMES = 15
# Fewer frames than this share of duration x rate means the file was cut short. Loose, because
# the average rate of variable-rate videos is itself an estimate.
TRUNCATION_TOLERANCE = 0.9
# Names of the distinct picked frames before they get their final names (never a valid prefix:
# prefixes may not start with a dot).
PICK_PATTERN = ".pick_%05d.jpg"


class ExtractionError(Exception):
    """A video whose frames could not be extracted as asked; the message says why."""


def _threads_on_this_worker() -> int:
    """Inside a Dask worker: its machine's cores shared among the worker's task slots."""
    from distributed import get_worker

    return threads_per_task(get_worker().state.nthreads)


def uniform_indices(total: int, count: int) -> list[int]:
    """The 0-based frame numbers AdaCLIP's uniform sampler picks: `count` out of `total`.

    From SamsungLabs/AdaCLIP, datasets/dataset.py, BaseDataset.sample_images (uniform sampling):
        indices = np.linspace(0, num_frames, num=self.num_frm, endpoint=False, dtype=int)
    numpy computes that as the float64 product `i * (num_frames / num_frm)` truncated to int; the
    same arithmetic here gives the same indices without numpy. With count > total, indices repeat,
    exactly as AdaCLIP would read repeated frames.
    """
    step = total / count
    return [int(i * step) for i in range(count)]


def scale_filter(short_side: int) -> str:
    """Scale so the shorter side is `short_side`, never up, the other side even.

    Written as expressions on the decoded (auto-rotated) size, so portrait videos, including phone
    videos stored landscape with a rotation flag, stay portrait.
    """
    s = short_side
    return (
        f"scale=w='if(lt(iw\\,ih)\\,min({s}\\,iw)\\,-2)':h='if(lt(iw\\,ih)\\,-2\\,min({s}\\,ih))'"
    )


def select_filter(values: list[int], variable: str = "n") -> str:
    """Keep only the frames whose `variable` is one of `values`: their 0-based numbers (in
    presentation order) by default, or their timestamps with "pts"."""
    return "select='" + "+".join(f"eq({variable}\\,{v})" for v in values) + "'"


def extract_video(task: dict[str, Any]) -> dict[str, Any]:
    """Extract one video's frames as `task` says; return a result record (never raises)."""
    result: dict[str, Any] = {
        "stem": task["stem"],
        "source": task["source"],
        "status": "failed",
        "frames": 0,
        "duration": None,
        "method": None,
        "error": "",
    }
    try:
        if task["threads"] is None:
            task = {**task, "threads": _threads_on_this_worker()}
        frames, duration, method = _extract(task)
        result.update(status="ok", frames=frames, duration=duration, method=method)
    except (ExtractionError, MediaError) as exc:
        result["error"] = str(exc)
    except Exception as exc:  # a worker reports, never raises: one bad video never stops others
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def _extract(task: dict[str, Any]) -> tuple[int, float, str]:
    source, fps, count = task["source"], task["fps"], task["num_frames"]
    info = probe(source, count_frames=not fps and not count)
    filters = [scale_filter(task["short_side"])] if task["short_side"] else []
    with atomic_dir(task["dest"], replace=True) as tmp:
        if count:
            method, stderr = _extract_uniform(task, filters, tmp, info)
            expected, tolerance = count, 0.0
        elif fps:
            method = "fps"
            stderr = _run_ffmpeg(tmp, [*_input(task), *_output(task, [f"fps={fps}", *filters])])
            expected, tolerance = info.duration * float(Fraction(fps)), 1.0
        else:
            method = "native"
            stderr = _run_ffmpeg(tmp, [*_input(task), *_output(task, filters)])
            _check_not_truncated(len(os.listdir(tmp)), info, stderr)
            expected, tolerance = info.frame_count, 0.0
        written = len(os.listdir(tmp))
        if abs(written - expected) > tolerance:
            within = f" (+-{tolerance:g})" if tolerance else ""
            raise ExtractionError(
                f"{written} frames written, expected {expected:g}{within}; ffmpeg: "
                f"{stderr or 'no error reported'}"
            )
    return written, round(info.duration, 3), method


def _check_not_truncated(frames: int, info: VideoInfo, stderr: str | None = None) -> None:
    """A file cut short still demuxes and decodes what it has, so a frame count that matches its
    packets proves nothing: it must also cover the duration the container declares."""
    declared = info.duration * info.fps
    if frames < declared * TRUNCATION_TOLERANCE:
        said = "" if stderr is None else f"; ffmpeg: {stderr or 'no error reported'}"
        raise ExtractionError(
            f"truncated: {frames} frames for a declared {info.duration:g} s at {info.fps:g} fps"
            + said
        )


@dataclass(frozen=True)
class FrameTimes:
    """The first video stream's frames in presentation order: each one's timestamp (in the
    stream's time base) and packet number (in decode order), and which frames are keyframes."""

    times: list[int]
    packets: list[int]
    keyframes: list[int]
    seekable: bool


def frame_times(source: str) -> FrameTimes:
    """Demux (no decoding) the first video stream: every frame's time and packet, and where
    keyframes are."""
    try:
        with av.open(source, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            # Numbered as ffmpeg's bitstream filters count them: every packet of the stream.
            packets = [
                (p.pts, number, p.is_keyframe)
                for number, p in enumerate(container.demux(stream))
                if p.size and p.pts is not None
            ]
            seekable = container.format.name.split(",")[0] in SEEKABLE_FORMATS
    except (av.FFmpegError, IndexError) as exc:
        raise ExtractionError(f"cannot read the frame times: {exc}") from None
    packets.sort()
    keyframes = [i for i, (_, _, key) in enumerate(packets) if key] or [0]
    times, numbers = [p[0] for p in packets], [p[1] for p in packets]
    return FrameTimes(times, numbers, keyframes, seekable)


def stretches(frames: FrameTimes, picks: list[int]) -> list[tuple[int, int]]:
    """The packets (first, last, in decode order) the decoder needs for the picks: from the
    keyframe before each pick to the pick's own; picks that share a keyframe share a stretch."""
    merged: list[tuple[int, int]] = []
    for pick in picks:
        keyframe = frames.keyframes[max(bisect.bisect_right(frames.keyframes, pick) - 1, 0)]
        first, last = frames.packets[keyframe], frames.packets[pick]
        if merged and first <= merged[-1][1] + 1:
            first = merged.pop()[0]
        merged.append((first, max(first, last)))
    return merged


def choose_method(frames: FrameTimes, picks: list[int]) -> str:
    """'seek' when decoding only the stretches costs less than one pass up to the last pick
    (long videos, few frames), else 'sequential' (short clips, dense picks)."""
    if not frames.seekable:
        return "sequential"
    seek_cost = sum(
        last - first + 1 + SEEK_OVERHEAD_FRAMES for first, last in stretches(frames, picks)
    )
    return "seek" if seek_cost < picks[-1] + 1 else "sequential"


def _extract_uniform(
    task: dict[str, Any], filters: list[str], tmp: Path, info: VideoInfo
) -> tuple[str, str]:
    frames = frame_times(task["source"])
    _check_not_truncated(len(frames.times), info)
    wanted = uniform_indices(len(frames.times), task["num_frames"])
    picks = sorted(set(wanted))
    method = task.get("method") or choose_method(frames, picks)
    stop = ["-frames:v", str(len(picks))]  # no decoding past the last pick
    if method == "seek" and not _extract_by_seeking(task, filters, tmp, frames, picks, stop):
        method = "sequential"
    stderr = ""
    if method == "sequential":
        select = [select_filter(picks), *filters]
        stderr = _run_ffmpeg(tmp, [*_input(task), *_output(task, select, PICK_PATTERN, stop)])
    _name_picked_frames(tmp, wanted, picks, task["prefix"])
    return method, stderr


def _extract_by_seeking(
    task: dict[str, Any],
    filters: list[str],
    tmp: Path,
    frames: FrameTimes,
    picks: list[int],
    stop: list[str],
) -> bool:
    """The one-pass command with a bitstream filter in front of the decoder that drops every packet
    outside the stretches: the demuxer still reads them (cheap), the decoder gets only what the
    picks need, and the picks are selected by timestamp (-copyts keeps the container's). Same
    decoder, filters and encoder as the one pass, so the same bytes.

    A jump to a keyframe that is no clean start (open GOP, a non-IDR I-frame: the decoder loses
    frames after the gap) shows as missing or failed picks: then False, with `tmp` emptied, and
    the caller does the one pass."""
    keep = "+".join(f"between(n\\,{first}\\,{last})" for first, last in stretches(frames, picks))
    select = [select_filter([frames.times[pick] for pick in picks], "pts"), *filters]
    source = ["-copyts", "-bsf:v", f"noise=drop='not({keep})'", *_input(task)]
    try:
        _run_ffmpeg(tmp, [*source, *_output(task, select, PICK_PATTERN, stop)])
        if len(os.listdir(tmp)) == len(picks):
            return True
    except ExtractionError:
        pass
    for written in tmp.iterdir():
        written.unlink()
    return False


def _name_picked_frames(tmp: Path, wanted: list[int], picks: list[int], prefix: str) -> None:
    """Give the distinct picked frames their final names, copying a frame that AdaCLIP's sampler
    picks more than once (K larger than the video's frame count)."""
    position = {pick: i + 1 for i, pick in enumerate(picks)}
    last_use = {pick: number for number, pick in enumerate(wanted, start=1)}
    for number, pick in enumerate(wanted, start=1):
        source = tmp / (PICK_PATTERN % position[pick])
        if not source.exists():
            return  # fewer frames than asked: the count check reports it
        target = tmp / (prefix % number)
        if last_use[pick] == number:
            os.replace(source, target)
        else:
            shutil.copyfile(source, target)


def _input(task: dict[str, Any]) -> list[str]:
    # "file:" so that names like "a:b.mp4" or "-x.mp4" are never read as protocols or options.
    source = f"file:{os.path.abspath(task['source'])}"
    return ["-threads", str(task["threads"]), "-i", source]


def _output(
    task: dict[str, Any],
    filters: list[str],
    name: str | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    # One encoder thread: MJPEG with several threads writes slices, which would make the bytes
    # depend on the thread count and so on --jobs. The standard Huffman tables instead of
    # per-image optimal ones: the same pixels, ~7% bigger files, ~16% less CPU (JPEG encoding,
    # not decoding, is most of the cost of extracting every frame).
    args = ["-map", "0:v:0", "-fps_mode", "passthrough", "-threads", "1"]
    args += ["-huffman", "default"]
    if filters:
        args += ["-filter:v", ",".join(filters)]
    args += ["-q:v", str(task["quality"]), *(extra or []), "-f", "image2"]
    return [*args, name or task["prefix"]]


def _run_ffmpeg(cwd: Path, options: list[str]) -> str:
    """Run ffmpeg inside the temporary folder (so a '%' in a folder name is never read as an image
    pattern); return its messages, or raise ExtractionError with them if it failed."""
    args = [find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-filter_threads", "1"]
    args += options
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, errors="replace")
    stderr = done.stderr.strip()
    if done.returncode != 0:
        raise ExtractionError(stderr or f"ffmpeg exited with status {done.returncode}")
    return stderr
