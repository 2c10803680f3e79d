"""Pre-sampled frames for LLaMA-Factory (`make activitynet_qa ... PRESAMPLE=1`).

LLaMA-Factory reads a video by decoding every frame of it, every epoch, to keep the 1-128 that
`_get_video_sample_indices` picks, then resizes each with PIL (`_preprocess_image`). It also takes
a video given as a list of frame images, which it reads as they are. This stage writes, once,
exactly the frames it would keep of each video, at exactly the size it would resize them to, so
that training reads a few small JPEGs instead of decoding the video, and the trainer's own resize
is a no-op:

- which frames: `sample_indices` over the stream's frame count and duration as PyAV reports them;
  for a container PyAV reports without them (Matroska, WebM) or with frames an edit list hides
  (an MP4 cut by `ffmpeg -ss ... -c copy`), over the real ones (the frames decoding yields
  counted, their span), which is what the trainer reads from its MP4 remux;
- their size: `regularized_size`, resized as PyAV's `to_image` and PIL's `Image.resize` do
  (`video.frame_commands.exact_size`), written as 4:4:4 JPEG at q:v 2;
- extracted by `video.frame_extract` with the given picks (seeking where it pays), atomically and
  resumably: a manifest in the frames folder records each video's source and options, and a
  rerun redoes only what is missing, failed, changed or made with other settings.

The folder is named after the settings (`presampled_fps2_maxlen128_pixels256-65536`), so datasets
made with other settings never overwrite each other's frames.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pyutils.core.errors import MediaError
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import FailureLog, log, plural, say
from pyutils.core.stage import run_stage
from pyutils.llamafactory.dataset_info import media_path
from pyutils.llamafactory.qwen_video import (
    Budget,
    qwen3_same_timestamps,
    qwen25_same_positions,
    read_stream,
    regularized_size,
    sample_indices,
)
from pyutils.video.frame_extract import extract_video
from pyutils.video.frame_plan import ExactFrames, FrameOptions, FrameTask
from pyutils.video.manifest import (
    MANIFEST,
    FramesGauge,
    exclusive,
    is_done,
    journal,
    read_manifest,
    refuse_other_options,
    refuse_reserved_stems,
)

STAGE = "presample"
QUALITY = 2  # ffmpeg's -q:v: 40-44 dB from the trainer's own frame (README, "Pre-sampled frames")
PREFIX = "image_%05d.jpg"
# Recorded with each video: frames made with another resize or JPEG are redone.
RESIZE = "rgb24 bilinear; bicubic B=0 C=0.5 (PIL's default); yuvj444p"


def frames_folder(out: Path, budget: Budget) -> Path:
    """Where the frames of these trainer settings go by default: one folder per settings."""
    fps = f"{budget.video_fps:g}".replace(".", "p")
    pixels = f"{budget.video_min_pixels}-{budget.video_max_pixels}"
    return out / f"presampled_fps{fps}_maxlen{budget.video_maxlen}_pixels{pixels}"


# The settings a presample folder is made with, by their Make variables.
SETTING_NAMES = {
    "video_fps": "VIDEO_FPS",
    "video_maxlen": "VIDEO_MAXLEN",
    "video_max_pixels": "VIDEO_MAX_PIXELS",
    "video_min_pixels": "VIDEO_MIN_PIXELS",
}


def refuse_other_settings(
    folder: Path,
    budget: Budget,
    stems: Iterable[str] | None = None,
    manifest: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Refuse (UserError) to replace what `folder` holds for `stems` (default: every video it
    holds) made with other trainer settings, naming both."""
    if manifest is None:
        manifest = read_manifest(folder / MANIFEST)
    held = manifest if stems is None else stems
    refuse_other_options(
        manifest, held, options_of(budget), folder, SETTING_NAMES, "--presample-dir"
    )


def options_of(budget: Budget) -> dict[str, Any]:
    """What decides a video's frames, as the manifest records it."""
    return {
        "video_fps": budget.video_fps,
        "video_maxlen": budget.video_maxlen,
        "video_max_pixels": budget.video_max_pixels,
        "video_min_pixels": budget.video_min_pixels,
        "quality": QUALITY,
        "prefix": PREFIX,
        "resize": RESIZE,
    }


@dataclass(frozen=True)
class Sampling:
    """What LLaMA-Factory samples from one video, and whether a list of those frames is the same
    thing to each model (README, "PRESAMPLE")."""

    frame_count: int  # what the indices are spread over
    duration: float  # seconds
    counted: bool  # frame count and duration from the packets (the header has none, or hides)
    indices: tuple[int, ...]  # 0-based, in decoding order
    width: int  # the decoded frame's size
    height: int
    size: tuple[int, int]  # after the trainer's _preprocess_image: what is written
    capped: bool  # VIDEO_MAXLEN frames, fewer than duration x VIDEO_FPS
    resized_again: bool  # the trainer's resize is no no-op on `size` (extreme settings only)
    qwen25_same: bool  # Qwen2.5-VL gives the list the video's temporal position ids
    qwen3_same: bool  # Qwen3-VL writes the video's timestamps for the list


def counted_stream(path: str) -> tuple[int, float]:
    """The real frame count and stream duration of a container whose header has neither, or
    whose count includes frames an edit list hides: its video packets that decode to a frame
    counted (not those the demuxer flags as discarded), and their span (first timestamp to the
    last one's end), which is the stream duration an MP4 remux of it reports."""
    import av  # on first use: a run that needs no video never loads PyAV

    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        first = end = None
        count = 0
        for packet in container.demux(stream):
            if not packet.size or packet.pts is None or packet.is_discard:
                continue
            count += 1
            first = packet.pts if first is None else min(first, packet.pts)
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
        if not count or stream.time_base is None:
            raise MediaError(f"{path}: no video packets")
        return count, float((end - first) * Fraction(stream.time_base))


def plan(path: str, budget: Budget) -> Sampling:
    """The frames and size LLaMA-Factory would make of `path` (read as it reads it, or, where it
    misreads the container, as it would read it correctly)."""
    info = read_stream(path)
    frame_count, duration, counted = info.frames, info.duration, False
    if frame_count <= 0 or duration is None or info.hidden:
        (frame_count, duration), counted = counted_stream(path), True
    fps, maxlen = budget.video_fps, budget.video_maxlen
    indices = sample_indices(frame_count, duration, fps, maxlen)
    wanted = max(1, math.floor(duration * fps))
    size = regularized_size(
        info.width, info.height, budget.video_max_pixels, budget.video_min_pixels
    )
    again = regularized_size(*size, budget.video_max_pixels, budget.video_min_pixels)
    return Sampling(
        frame_count=frame_count,
        duration=duration,
        counted=counted,
        indices=tuple(indices),
        width=info.width,
        height=info.height,
        size=size,
        capped=len(indices) == maxlen < wanted,
        resized_again=again != size,
        qwen25_same=qwen25_same_positions(len(indices), duration, fps),
        qwen3_same=bool(info.average_fps)
        and qwen3_same_timestamps(indices, info.average_fps or 1.0, fps),
    )


@dataclass(frozen=True)
class PresampleTask:
    """One video to pre-sample: the work unit."""

    stem: str
    source: str
    dest: str  # its frame folder
    budget: Budget
    threads: int | None  # decoding threads; None on Dask, where the worker sizes them


@dataclass(frozen=True)
class PresampleResult:
    """One video's outcome: the frames stage's fields (the manifest record's), and its sampling."""

    stem: str
    source: str
    status: str
    frames: int = 0
    duration: float | None = None
    method: str | None = None
    error: str = ""
    sampling: Sampling | None = None

    @property
    def item(self) -> str:
        return self.source


def presample_video(task: PresampleTask) -> PresampleResult:
    """Worker: plan the video's sampling, then extract those frames at that size; never raises."""
    import av  # on first use: a run that needs no video never loads PyAV

    try:
        sampling = plan(task.source, task.budget)
    except (OSError, ValueError, IndexError, av.FFmpegError, MediaError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return PresampleResult(task.stem, task.source, "failed", error=f"cannot read it: {reason}")
    options = FrameOptions(None, None, None, QUALITY, PREFIX)
    exact = ExactFrames(sampling.indices, *sampling.size)
    frames = FrameTask(task.stem, task.source, task.dest, options, task.threads, exact=exact)
    return PresampleResult(**asdict(extract_video(frames)), sampling=sampling)


def frame_paths(folder: Path, count: int) -> list[Path]:
    return [folder / (PREFIX % number) for number in range(1, count + 1)]


@dataclass
class Presampled:
    """The frames of each video (by source path), and the exit status of the stage."""

    frames: dict[str, list[Path]]
    status: int


def presample(
    videos: list[str],
    folder: Path,
    budget: Budget,
    parallel: ParallelOptions,
    replace: bool = False,
) -> Presampled:
    """Extract into `folder` the frames LLaMA-Factory would sample of each of `videos` (paths
    with distinct stems), reusing what a previous run made from the same files with the same
    settings; frames made with other settings are refused unless `replace`."""
    folder.mkdir(parents=True, exist_ok=True)
    options = options_of(budget)
    manifest = read_manifest(folder / MANIFEST)
    distinct = {Path(video).stem: video for video in dict.fromkeys(videos)}
    refuse_reserved_stems({stem: Path(v) for stem, v in distinct.items()}, STAGE, str(folder))
    if not replace:
        refuse_other_settings(folder, budget, distinct, manifest)
    done = {
        stem: video
        for stem, video in distinct.items()
        if is_done(manifest.get(stem), Path(video), options, folder / stem)
    }
    threads = parallel.ffmpeg_threads()
    todo = [(stem, video) for stem, video in distinct.items() if stem not in done]
    # The biggest first, so that a long video does not start last and run alone at the end.
    todo.sort(key=lambda item: -os.path.getsize(item[1]))
    tasks = [
        PresampleTask(stem, video, str(folder / stem), budget, threads) for stem, video in todo
    ]
    log(
        f"{STAGE}: {plural(len(distinct), 'video')} for VIDEO_FPS={budget.video_fps:g} "
        f"VIDEO_MAXLEN={budget.video_maxlen} VIDEO_MAX_PIXELS={budget.video_max_pixels} "
        f"VIDEO_MIN_PIXELS={budget.video_min_pixels}: {len(done)} already done, "
        f"{len(tasks)} to do, in {folder}"
    )
    failures = FailureLog(STAGE, folder)
    with exclusive(folder, STAGE):
        shared = [str(Path(tasks[0].source).parent), str(folder)] if tasks else []
        gauge = FramesGauge(folder)
        results = run_stage(STAGE, presample_video, tasks, parallel, failures, shared, gauge)
        for result in journal(results, folder, manifest, options):
            gauge.add(result.frames)  # the manifest keeps each result; `failures` counts them
    frames = {}
    for stem, video in distinct.items():
        record = manifest.get(stem)
        if record and record.get("status") == "ok":
            frames[video] = frame_paths(folder / stem, record["frames"])
    summarise([manifest[stem] for stem in distinct if stem in manifest], budget)
    return Presampled(frames, failures.finish())


def summarise(records: list[dict[str, Any]], budget: Budget) -> None:
    """What was written, and for which models the frame lists are not exactly their videos."""
    sampled = [r["sampling"] for r in records if r.get("status") == "ok" and r.get("sampling")]
    if not sampled:
        return
    frames = sum(len(s["indices"]) for s in sampled)
    say(f"{STAGE}: {plural(frames, 'frame')} of {plural(len(sampled), 'video')}")
    capped = sum(s["capped"] for s in sampled)
    qwen25 = sum(not s["qwen25_same"] for s in sampled)
    qwen3 = sum(not s["qwen3_same"] for s in sampled)
    again = sum(s["resized_again"] for s in sampled)
    span = budget.video_maxlen / budget.video_fps
    of = f"of {plural(len(sampled), 'video')}"
    # The trainer takes a frame list as frames 1/VIDEO_FPS apart from 0 s: only the models that
    # use time see a difference from the video (docs/presample.md works it through).
    say(f"{STAGE}: Qwen2-VL: every frame list is seen exactly as its video")
    if capped:
        say(
            f"{STAGE}: {capped} {of} capped at VIDEO_MAXLEN={budget.video_maxlen} frames: the "
            f"trainer takes their lists as {span:g} s long"
        )
    if qwen25:
        say(
            f"{STAGE}: Qwen2.5-VL: {qwen25} {of} get other temporal position ids from their "
            "frame list than from the video; for Qwen2.5-VL raise VIDEO_MAXLEN or lower "
            "VIDEO_FPS until this is 0, or train on the plain JSON"
        )
    else:
        say(f"{STAGE}: Qwen2.5-VL: every frame list gets its video's temporal position ids")
    if qwen3:
        say(
            f"{STAGE}: Qwen3-VL: {qwen3} {of} get other <t seconds> time stamps from their frame "
            "list than from the video; train Qwen3-VL on the plain JSON"
        )
    else:
        say(f"{STAGE}: Qwen3-VL: every frame list gets its video's <t seconds> time stamps")
    if again:
        say(
            f"{STAGE}: {plural(again, 'video')}: with VIDEO_MIN_PIXELS={budget.video_min_pixels} "
            "the trainer's own resize is no no-op on the frames' size; it resizes them again"
        )


def relative_lists(
    videos: list[str], frames: dict[str, list[Path]], media_dir: Path
) -> list[list[str] | None]:
    """Each video's frame list as a sharegpt file names it (relative to `media_dir`, as
    `dataset_info.media_path` writes a video), None for a video without frames."""
    named = {
        video: [media_path(frame, media_dir) for frame in frames[video]]
        for video in dict.fromkeys(videos)
        if video in frames
    }
    return [named.get(video) for video in videos]
