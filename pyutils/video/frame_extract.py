"""Extracting the frames of one video: the worker that `pyutils.video.frames` runs in parallel.

`extract_video(FrameTask) -> FrameResult` takes and returns frozen dataclasses (paths as str),
never raises for a bad video and touches nothing outside its own destination folder, so the same
function runs in this process, in loky workers, or as a task on a Dask cluster.

Frames are written into a temporary folder beside the destination and renamed into place only
when ffmpeg succeeded and the number of frames is the one the probe predicts. What to decode is
planned in `pyutils.video.frame_plan`, the commands are built and run by
`pyutils.video.frame_commands`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pyutils.core.atomic import atomic_dir
from pyutils.core.errors import MediaError
from pyutils.core.media import Ffmpeg, VideoInfo, choose_ffmpeg, probe
from pyutils.core.parallel import threads_here
from pyutils.video.frame_commands import (
    PICK_PATTERN,
    PLANNING,
    frames_command,
    part_command,
    run_ffmpeg,
    seek_commands,
    selection,
)
from pyutils.video.frame_plan import (
    TO_THE_END,
    ExtractionError,
    FrameTask,
    FrameTimes,
    Method,
    SeekMethod,
    choose_method,
    clipped,
    decoded_for,
    fps_kept,
    frame_times,
    may_spare_packets,
    part_starts,
    spared,
    uniform_indices,
    without,
)

# Frames covering less than this share of the declared duration means the file was cut short.
TRUNCATION_TOLERANCE = 0.9

# How a run's first line names each seeking method.
METHOD_TEXT = {
    "seek_bsf": "seeking by input bitstream filter",
    "seek_inputs": "seeking with one input per stretch (-ss before -i)",
}


@dataclass(frozen=True)
class FrameResult:
    """One video's outcome; its fields are the manifest record's, in the manifest's order."""

    stem: str
    source: str
    status: str  # "ok" or "failed"
    frames: int = 0
    duration: float | None = None
    method: Method | None = None
    error: str = ""

    @property
    def item(self) -> str:
        return self.source


def extract_video(task: FrameTask) -> FrameResult:
    """Extract one video's frames as `task` says; return its result (never raises)."""
    try:
        with PLANNING.taken():
            frames, duration, method = _extract(task)
        return FrameResult(task.stem, task.source, "ok", frames, duration, method)
    except (ExtractionError, MediaError) as exc:
        error = str(exc)
    except Exception as exc:  # a worker reports, never raises: one bad video never stops others
        error = f"{type(exc).__name__}: {exc}"
    return FrameResult(task.stem, task.source, "failed", error=error)


def _extract(task: FrameTask) -> tuple[int, float, Method]:
    options = task.options
    fps, count = options.fps, options.num_frames
    info = probe(task.source, count_frames=not (fps or count or task.exact))
    method: Method
    with atomic_dir(task.dest, replace=True) as tmp:
        if count or task.exact:
            method, stderr, expected = _extract_picks(task, tmp, info)
            tolerance = 0.0
        elif fps:
            method, stderr = _extract_fps(task, tmp)
            expected, tolerance = _fps_frame_count(task.source, info, fps, len(os.listdir(tmp)))
        else:
            method = "native"
            stderr = run_ffmpeg(tmp, frames_command(task))
            _check_not_truncated(frame_times(task.source), info, stderr)
            expected, tolerance = info.frame_count, 0.0
        written = len(os.listdir(tmp))
        if abs(written - expected) > tolerance:
            within = f" (+-{tolerance:g})" if tolerance else ""
            raise ExtractionError(
                f"{written} frames written, expected {expected:g}{within}; ffmpeg: "
                f"{stderr or 'no error reported'}"
            )
    return written, round(info.duration, 3), method


def _fps_frame_count(source: str, info: VideoInfo, fps: str, written: int) -> tuple[float, float]:
    """How many frames the fps filter writes, within how many: the declared duration x rate,
    unless the video's frames say otherwise. The fps filter runs from the first frame to the end
    of the last; where the video starts after its container (Matroska and WebM keep an offset,
    or audio that starts first, in the container's duration, and have no duration per stream:
    `FrameTimes.lead`), that span is shorter than the duration, and the frames' own span counts
    once they cover enough of the duration not to be a file cut short."""
    rate = float(Fraction(fps))
    expected = info.duration * rate
    if abs(written - expected) <= 1.0:
        return expected, 1.0
    frames = frame_times(source)
    _check_not_truncated(frames, info)
    return frames.span() * rate, 1.0


def _check_not_truncated(frames: FrameTimes, info: VideoInfo, stderr: str | None = None) -> None:
    """A file cut short still demuxes and decodes what it has, so a frame count that matches its
    packets proves nothing: its frames must also cover the duration the container declares.
    Judged by the frames' timestamps, not by their number against duration x nominal rate,
    which a variable-rate video (a phone clip, a screen capture) never reaches; the duration
    counted from the first frame (`FrameTimes.lead`)."""
    covered, declared = frames.span(), info.duration - float(frames.lead)
    if covered < declared * TRUNCATION_TOLERANCE:
        said = "" if stderr is None else f"; ffmpeg: {stderr or 'no error reported'}"
        raise ExtractionError(
            f"truncated: its {len(frames.times)} frames cover {covered:.2f} s of a declared "
            f"{declared:g} s" + said
        )


def seek_method(tool: Ffmpeg) -> SeekMethod:
    """How this ffmpeg reaches the picks without decoding every frame."""
    return "seek_bsf" if tool.input_bsf else "seek_inputs"


def _extract_picks(task: FrameTask, tmp: Path, info: VideoInfo) -> tuple[Method, str, int]:
    """The picked frames (AdaCLIP's uniform ones, or the task's exact ones), by seeking or in
    one pass; returns the method, ffmpeg's messages and how many files there must be."""
    frames = frame_times(task.source)
    _check_not_truncated(frames, info)
    if task.exact:
        wanted = list(task.exact.indices)
        if not wanted or wanted[-1] >= len(frames.times):
            raise ExtractionError(
                f"frame {wanted[-1] if wanted else '(none)'} asked for, but the video has "
                f"{len(frames.times)} frames"
            )
    else:
        wanted = uniform_indices(len(frames.times), task.options.num_frames or 0)
    picks = sorted(set(wanted))
    tool = choose_ffmpeg().tool
    method: Method = task.method or choose_method(frames, picks, seek_method(tool))
    if method == "seek_bsf" and not tool.input_bsf:  # a forced method this ffmpeg cannot do
        raise ExtractionError(f"{tool.named()} at {tool.path} cannot seek by bitstream filter")
    if method in METHOD_TEXT and not _extract_by_seeking(task, tmp, frames, picks, method):
        method = "sequential"
    stderr = ""
    if method == "sequential":
        stderr = run_ffmpeg(tmp, _one_pass_command(task, frames, picks, tool))
    _name_picked_frames(tmp, wanted, picks, task.options.prefix)
    return method, stderr, len(wanted)


def _one_pass_command(
    task: FrameTask, frames: FrameTimes, picks: list[int], tool: Ffmpeg
) -> list[str]:
    """The picks in one pass from the first packet, selected by frame number; or, where this
    ffmpeg can drop packets before its decoder and the video has packets the picks do not need
    (`decoded_for`, less the disposable frames not picked), selected by timestamp with those
    dropped (and nothing read past the last pick)."""
    kept = set(picks)
    keep = None
    if tool.input_bsf and frames.seekable:
        keep = without(decoded_for(frames, kept), spared(frames, kept))
    if not keep or keep == [(0, max(frames.packets[pick] for pick in picks))]:
        return frames_command(task, ("select", selection(picks)), len(picks))
    select = ("select", selection([frames.times[pick] for pick in picks], "pts"))
    return frames_command(task, select, len(picks), keep, copyts=True)


def _extract_by_seeking(
    task: FrameTask, tmp: Path, frames: FrameTimes, picks: list[int], method: SeekMethod
) -> bool:
    """Decode only the stretches from the keyframe before each group of picks to its last pick
    (`seek_commands`). A jump to a keyframe that is no clean start (open GOP, a non-IDR I-frame:
    the decoder loses frames after the gap) shows as missing or failed picks: then False, with
    `tmp` emptied, and the caller does the one pass."""
    try:
        run_ffmpeg(tmp, *seek_commands(task, frames, picks, method))
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


def _extract_fps(task: FrameTask, tmp: Path) -> tuple[Method, str]:
    """`--fps`: one pass through ffmpeg's fps filter, or, for a task given several threads (the
    last videos of a draining batch, fewer jobs than cores) when this ffmpeg can drop packets
    before its decoder, the same frames from parts of the video run side by side (`fps_parts`).
    Either way, where it can drop packets, the decoder gets only what the frames the fps filter
    needs (`fps_kept`) need: not the disposable frames outside them, nor the packets between the
    last of them and the next fresh keyframe (`decoded_for`). Returns the method and ffmpeg's
    messages."""
    fps = task.options.fps or ""
    threads = threads_here(task.threads)
    frames = _frames_to_spare(task.source, choose_ffmpeg().tool, parts=threads > 1)
    if frames is None:
        return "fps", run_ffmpeg(tmp, frames_command(task, ("fps", fps)))
    starts = part_starts(frames, threads) if threads > 1 else [0]
    kept = fps_kept(frames, Fraction(fps), starts)
    keep = without(decoded_for(frames, kept), spared(frames, kept))
    if len(starts) > 1 and _extract_in_parts(task, tmp, frames, starts, keep):
        return "fps_parts", ""
    everything = keep == [(0, max(frames.packets))]
    return "fps", run_ffmpeg(
        tmp, frames_command(task, ("fps", fps), keep=None if everything else keep)
    )


def _frames_to_spare(source: str, tool: Ffmpeg, parts: bool) -> FrameTimes | None:
    """The frame list that lets this ffmpeg drop packets before its decoder (frames the fps
    filter does not need, and `parts`), or None where it cannot: no input bitstream filter, a
    container whose packets PyAV may number otherwise (`SEEKABLE_FORMATS`), or frame times PyAV
    cannot read (its libraries may lack what the ffmpeg binary has); and None, without the demux
    it costs, for one pass of a codec whose headers are not read (`may_spare_packets`)."""
    if not tool.input_bsf or not (parts or may_spare_packets(source)):
        return None
    try:
        frames = frame_times(source)
    except ExtractionError:
        return None
    return frames if frames.seekable else None


def _extract_in_parts(
    task: FrameTask, tmp: Path, frames: FrameTimes, starts: list[int], keep: list[tuple[int, int]]
) -> bool:
    """The fps filter's frames, from one-thread ffmpegs side by side, each decoding one part of
    the video (the packets of `keep` from its keyframe to the next part's; the others dropped
    before the decoder) and naming its frames by their output timestamp: the fps
    filter's slot numbers.

    The fps filter (FFmpeg libavfilter/vf_fps.c, write_frame) gives output slot n the last frame
    whose timestamp, rounded to the output rate, is <= n, and numbers slots on from the first
    frame's. A part beginning at a clean keyframe K has every frame from K on, so from its first
    slot on it chooses as the one pass does; the part before it has every frame before K, so it
    does too below that slot, and what it writes past it (its end of stream) is dropped. Same
    timestamps (the container's, start time subtracted), decoder, filters and encoder as the one
    pass, so the same bytes. A part that falls short of the next one's first slot (a decoder
    that lost frames at a cut) leaves a gap: then False, `tmp` emptied, and the one pass runs."""
    parts = [tmp / f".part{number}" for number in range(len(starts))]
    ends = [frames.packets[start] - 1 for start in starts[1:]] + [TO_THE_END]
    commands = []
    for number, (folder, start, end) in enumerate(zip(parts, starts, ends, strict=True)):
        folder.mkdir()
        first_packet = 0 if number == 0 else frames.packets[start]
        commands.append(part_command(task, clipped(keep, first_packet, end), folder.name))
    try:
        run_ffmpeg(tmp, *commands)
        chosen = _slots_in_order(parts)
    except ExtractionError:
        chosen = None
    if chosen is not None:
        for number, frame in enumerate(chosen, start=1):
            os.replace(frame, tmp / (task.options.prefix % number))
    for folder in parts:
        shutil.rmtree(folder)
    return chosen is not None


def _slots_in_order(parts: list[Path]) -> list[Path] | None:
    """The frames of consecutive slots that each part owns (from its first slot to the next
    part's first), or None if a part's slots leave a gap."""
    slots = [sorted(int(name.split(".")[0]) for name in os.listdir(part)) for part in parts]
    if not all(slots):
        return None
    chosen = []
    for number, (part, owned) in enumerate(zip(parts, slots, strict=True)):
        end = slots[number + 1][0] if number + 1 < len(slots) else owned[-1] + 1
        owned = [slot for slot in owned if slot < end]
        if not owned or owned != list(range(owned[0], end)):
            return None
        chosen += [part / f"{slot}.jpg" for slot in owned]
    return chosen
