"""Extracting the frames of one video: the worker that `pyutils.video.frames` runs in parallel.

`extract_video(FrameTask) -> FrameResult` takes and returns frozen dataclasses (paths as str),
never raises for a bad video and touches nothing outside its own destination folder, so the same
function runs in this process, in loky workers, or as a task on a Dask cluster.

Frames are written into a temporary folder beside the destination and renamed into place only
when ffmpeg succeeded and the number of frames is the one the probe predicts. The ffmpeg command
lines are built with ffmpeg-python, which escapes the filter arguments.
"""

from __future__ import annotations

import bisect
import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import ffmpeg

from pyutils.core.atomic import atomic_dir
from pyutils.core.errors import MediaError
from pyutils.core.media import Ffmpeg, VideoInfo, choose_ffmpeg, ffmpeg_command, probe
from pyutils.core.parallel import threads_here

# Containers whose packets come in the same order and number to PyAV and to ffmpeg, with
# reliable keyframe flags; elsewhere (MPEG-PS, AVI, ASF) only the sequential pass is trusted.
SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")
# What one more stretch costs beyond its frames, in decoded frames, by seeking method: a margin
# that keeps the one pass (no fallback risk) when skipping would save little, and the gap under
# which two stretches are decoded as one. An input of its own (-ss) costs about 7 ms to open and
# probe (bench/frames.py), some 35 frames of a 640x360 H.264 decode.
SEEK_OVERHEAD_FRAMES = {"seek_bsf": 15, "seek_inputs": 40}
# Frames covering less than this share of the declared duration means the file was cut short.
TRUNCATION_TOLERANCE = 0.9
# Names of the distinct picked frames before they get their final names (never a valid prefix:
# prefixes may not start with a dot).
PICK_PATTERN = ".pick_%05d.jpg"
# A part of a video that `--fps` splits among one-thread ffmpegs has at least this many frames:
# starting one more ffmpeg (~20 ms) costs about a hundred 640x360 H.264 frames of decoding.
PART_MIN_FRAMES = 100
# The last packet number of the last part: every packet from its keyframe on, as the one pass.
TO_THE_END = 2**53
# One filter thread for a filterless run's implicit graph and for ffmpeg-python's graphs.
ONE_FILTER_THREAD = ("-filter_threads", "1", "-filter_complex_threads", "1")

# How the uniform picks are reached: one ffmpeg input whose decoder gets only the needed packets
# (a bitstream filter before -i drops the rest: ffmpeg 9.0, not Debian 12's 5.1), one input per
# stretch opened at its keyframe (-ss before -i: any ffmpeg), or one pass through every frame.
SeekMethod = Literal["seek_bsf", "seek_inputs"]
Method = Literal["native", "fps", "fps_parts", "seek_bsf", "seek_inputs", "sequential"]
METHOD_TEXT = {
    "seek_bsf": "seeking by input bitstream filter",
    "seek_inputs": "seeking with one input per stretch (-ss before -i)",
}


class ExtractionError(Exception):
    """A video whose frames could not be extracted as asked; the message says why."""


@dataclass(frozen=True)
class FrameOptions:
    """What to extract; recorded per video in the manifest, so that other options redo it."""

    fps: str | None  # output frame rate (a fraction); None: native
    short_side: int | None  # scale so the shorter side is this many pixels; None: native
    num_frames: int | None  # exactly K frames, AdaCLIP's uniform picks; None: every frame
    quality: int  # ffmpeg's -q:v
    prefix: str  # frame file names, printf-style


@dataclass(frozen=True)
class ExactFrames:
    """Given frames at a given size, in place of `num_frames` and `short_side`: what a trainer
    that decodes the whole video keeps of it (`pyutils.llamafactory.presample`).

    `indices` are 0-based frame numbers in decoding (presentation) order, ascending. Each frame
    is converted to RGB and resized to exactly width x height as Python trainers do it (PyAV's
    `to_image`, then PIL's `Image.resize`: see `exact_size`), and written as a full-chroma JPEG.
    """

    indices: tuple[int, ...]
    width: int
    height: int


@dataclass(frozen=True)
class FrameTask:
    """One video to extract: the work unit."""

    stem: str
    source: str
    dest: str
    options: FrameOptions
    threads: int | None  # decoding threads; None on Dask, where the worker sizes them
    # With num_frames or exact: force a seeking method or "sequential" (to compare their bytes);
    # None chooses per video (`choose_method`) with the seeking method this ffmpeg can do.
    method: Literal["seek_bsf", "seek_inputs", "sequential"] | None = None
    exact: ExactFrames | None = None


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


def short_side_scale(short_side: int) -> tuple[str, str]:
    """The scale filter's width and height to make the shorter side `short_side`, the other side
    even; never up: a video whose shorter side is `short_side` or less keeps its size (rounding
    its other side to even would make a 1x1 video 2x1).

    Expressions on the decoded (auto-rotated) size, so portrait videos, including phone videos
    stored landscape with a rotation flag, stay portrait.
    """
    s, small = short_side, f"lte(min(iw,ih),{short_side})"
    return f"if({small},iw,if(lt(iw,ih),{s},-2))", f"if({small},ih,if(lt(iw,ih),-2,{s}))"


def exact_size(video: ffmpeg.nodes.FilterableStream, width: int, height: int) -> Any:
    """`video` resized to exactly width x height as a trainer reading it with PyAV and PIL does:
    `frame.to_image()` converts to RGB with swscale's bilinear flags (PyAV's default), then
    `Image.resize((w, h))` resamples with PIL's default for RGB, bicubic with a = -0.5, which is
    swscale's bicubic with B = 0, C = 0.5 (param0, param1). Written as 4:4:4 JPEG: 4:2:0 would
    halve the colour resolution of a frame already this small. Against PyAV + PIL: 56-61 dB
    written losslessly, 40-44 dB as JPEG at q:v 2 (tests/manual/compare_llamafactory.py)."""
    rgb = video.filter("scale", flags="bilinear").filter("format", "rgb24")
    resized = rgb.filter("scale", width, height, flags="bicubic", param0=0, param1=0.5)
    return resized.filter("format", "yuvj444p")


def any_of(terms: list[str]) -> str:
    """`a+b+...` for an ffmpeg expression. Its parser refuses a flat sum of more than 100 terms
    (its nesting limit), so longer sums are nested as a balanced tree of flat sums of at most 64:
    a few levels deep for thousands of terms, and unchanged up to 64."""
    if len(terms) <= 64:
        return "+".join(terms)
    middle = len(terms) // 2
    return f"({any_of(terms[:middle])})+({any_of(terms[middle:])})"


def selection(values: list[int], variable: str = "n") -> str:
    """The select filter's expression keeping only the frames whose `variable` is one of `values`:
    their 0-based numbers (in presentation order) by default, or their timestamps with "pts"."""
    return any_of([f"eq({variable},{v})" for v in values])


def packet_filter(keep: list[tuple[int, int]]) -> str:
    """The bitstream filter that drops every packet outside the `keep` stretches (first, last
    packet numbers, in decode order). The expression is quoted: a list of bitstream filters is
    split at commas."""
    stretches = any_of([f"between(n,{first},{last})" for first, last in keep])
    return f"noise=drop='not({stretches})'"


def frames_command(
    task: FrameTask,
    sample: tuple[str, str] | None = None,
    picks: int | None = None,
    keep: list[tuple[int, int]] | None = None,
    first: int = 1,
) -> list[str]:
    """The ffmpeg command that writes `task`'s frames into the folder it runs in.

    Every frame, or those that the `sample` filter ("fps" or "select", and its argument) lets
    through, scaled to the task's short side. With `picks`, decoding stops after that many frames,
    named PICK_PATTERN for `_name_picked_frames`, numbered from `first`. With `keep` (packet
    stretches), the bitstream filter drops every other packet before the decoder, and the
    container's timestamps are kept (-copyts) for a select on pts.
    """
    input_options = {"bsf:v": packet_filter(keep)} if keep else {}
    video = _input(task, **input_options)
    output = _jpeg_output(_sampled(video, sample, task), task, picks, first)
    return ffmpeg_command(output, *ONE_FILTER_THREAD, *(["-copyts"] if keep else []))


def inputs_command(
    task: FrameTask, frames: FrameTimes, groups: list[list[int]], first: int = 1
) -> list[str]:
    """The ffmpeg command that writes the picks of `groups` (`seek_groups`) as PICK_PATTERN
    frames numbered from `first`: one input per group, opened at the group's keyframe (-ss before
    -i, no trimming: decoding starts at that keyframe), the group's picks selected by pts
    (-copyts keeps the container's), each group's output stopping after its picks. The same
    decoder, filters and encoder as the one pass, so the same bytes."""
    outputs = []
    for group in groups:
        keyframe = keyframe_before(frames, group[0])
        video = _input(task, ss=frames.seek_position(keyframe), noaccurate_seek=None)
        select = ("select", selection([frames.times[pick] for pick in group], "pts"))
        sampled = _sampled(video, select, task)
        outputs.append(_jpeg_output(sampled, task, len(group), first))
        first += len(group)
    return ffmpeg_command(ffmpeg.merge_outputs(*outputs), *ONE_FILTER_THREAD, "-copyts")


def _input(task: FrameTask, **options: Any) -> Any:
    # "file:" so that names like "a:b.mp4" or "-x.mp4" are never read as protocols or options.
    source = f"file:{os.path.abspath(task.source)}"
    if task.exact:
        options["noautorotate"] = None  # PyAV gives frames as stored, unrotated
    return ffmpeg.input(source, threads=threads_here(task.threads), **options)["v:0"]


def _sampled(video: Any, sample: tuple[str, str] | None, task: FrameTask) -> Any:
    if sample:
        video = video.filter(*sample)
    if task.exact:
        video = exact_size(video, task.exact.width, task.exact.height)
    elif task.options.short_side:
        video = video.filter("scale", *short_side_scale(task.options.short_side))
    return video


def _jpeg_output(
    video: Any, task: FrameTask, picks: int | None, first: int = 1, slots_in: str | None = None
) -> Any:
    # One encoder thread: MJPEG with several threads writes slices, which would make the bytes
    # depend on the thread count and so on --jobs. The standard Huffman tables instead of
    # per-image optimal ones: the same pixels, ~7% bigger files, ~16% less CPU (JPEG encoding,
    # not decoding, is most of the cost of extracting every frame).
    # Numbered from `first`, or, `slots_in` a folder, named by their timestamps (image2's
    # frame_pts): the fps filter's output slots (`_extract_in_parts`).
    numbering = {"start_number": first} if first != 1 else {}
    if slots_in:
        pattern, numbering = f"{slots_in}/%d.jpg", {"frame_pts": 1}
    else:
        pattern = PICK_PATTERN if picks else task.options.prefix
    return video.output(
        pattern,
        f="image2",
        fps_mode="passthrough",
        threads=1,
        huffman="default",
        **{"q:v": task.options.quality, **({"frames:v": picks} if picks else {}), **numbering},
    )


def extract_video(task: FrameTask) -> FrameResult:
    """Extract one video's frames as `task` says; return its result (never raises)."""
    try:
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
            stderr = _run_ffmpeg(tmp, frames_command(task))
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


@dataclass(frozen=True)
class FrameTimes:
    """The first video stream's frames in presentation order: each one's timestamp (in the
    stream's time base) and packet number (in decode order), and which frames are keyframes."""

    times: list[int]
    packets: list[int]
    keyframes: list[int]
    seekable: bool
    time_base: Fraction = Fraction(1)
    start: Fraction = Fraction(0)  # the container's start time, in seconds (what -ss counts from)
    # Seconds of the container's duration before the first frame: Matroska and WebM count their
    # duration from 0 (the segment's start) and have no duration per stream, so a video that
    # starts later, or after its audio, is that much shorter than the duration they declare.
    lead: Fraction = Fraction(0)

    def span(self) -> float:
        """Seconds from the first frame to the end of the last (its length taken as the mean
        interval between frames)."""
        if len(self.times) < 2:
            return 0.0 if not self.times else float(self.time_base)
        first, last = self.times[0], self.times[-1]
        mean_interval = (last - first) / (len(self.times) - 1)
        return float((last - first + mean_interval) * self.time_base)

    def seek_position(self, keyframe: int) -> str:
        """-ss that opens the input at `keyframe` (a frame number): halfway between its time and
        the next frame's, so that rounding to microseconds never lands on the keyframe before."""
        following = self.times[keyframe + 1] if keyframe + 1 < len(self.times) else None
        time = self.times[keyframe] if following is None else (self.times[keyframe] + following) / 2
        micros = max(0, round((time * self.time_base - self.start) * 1_000_000))
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def frame_times(source: str) -> FrameTimes:
    """Demux (no decoding) the first video stream: every frame's time and packet, and where
    keyframes are."""
    import av  # on first use: a run that needs no video never loads PyAV

    try:
        with av.open(source, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            demuxed = container.demux(stream)
            head = list(itertools.islice(demuxed, 1))  # the first packet, for `_from_index`
            # Numbered as ffmpeg's bitstream filters count them: every packet of the stream.
            packets = _from_index(container.format.name, stream, head) or [
                (p.pts, number, p.is_keyframe)
                for number, p in enumerate(itertools.chain(head, demuxed))
                if p.size and p.pts is not None
            ]
            seekable = container.format.name.split(",")[0] in SEEKABLE_FORMATS
            time_base = Fraction(stream.time_base or 1)
            start = Fraction(container.start_time or 0, av.time_base)
            counted_from = Fraction(0) if container.format.name.startswith("matroska") else start
            has_duration = bool(stream.duration)
    except (av.FFmpegError, IndexError) as exc:
        raise ExtractionError(f"cannot read the frame times: {exc}") from None
    packets.sort()
    keyframes = [i for i, (_, _, key) in enumerate(packets) if key] or [0]
    times, numbers = [p[0] for p in packets], [p[1] for p in packets]
    first = times[0] * time_base if times else counted_from
    lead = Fraction(0) if has_duration else max(Fraction(0), first - counted_from)
    return FrameTimes(times, numbers, keyframes, seekable, time_base, start, lead)


def _from_index(
    format_name: str, stream: Any, head: list[Any]
) -> list[tuple[int, int, bool]] | None:
    """The packets of an MP4/MOV stream whose frames are shown in decoding order, from the
    container's sample index instead of a demux: about 7 ms for 5,400 samples against 46 ms,
    spent holding Python's lock. Its timestamps are decoding times; with no frame reordering
    (the decoder holds no frame back: no B-frames) each frame is shown at its decoding time plus
    the offset its first packet (`head`) shows. None (demux instead) for any other stream, an
    index with samples the demuxer would drop or skip (edit-list discards, empty samples) or
    that is not the whole stream (a fragmented MP4's grows as its fragments are read)."""
    if not format_name.startswith("mov") or stream.codec_context.has_b_frames or not head:
        return None
    entries = stream.index_entries
    if not entries or len(entries) != stream.frames:
        return None
    if any(entry.is_discard or not entry.size for entry in entries):
        return None
    first = head[0]
    if first.pts is None or first.dts != entries[0].timestamp:
        return None
    offset = first.pts - first.dts
    return [(e.timestamp + offset, n, e.is_keyframe) for n, e in enumerate(entries)]


def keyframe_before(frames: FrameTimes, pick: int) -> int:
    """The last keyframe at or before frame `pick`: where decoding for it has to start."""
    return frames.keyframes[max(bisect.bisect_right(frames.keyframes, pick) - 1, 0)]


def seek_groups(frames: FrameTimes, picks: list[int], gap: int) -> list[list[int]]:
    """The picks in groups decoded in one go from the keyframe before the group's first pick: a
    pick joins the group before it when it shares that group's keyframe or its own keyframe
    comes at most `gap` frames after the group's last pick (decoding on costs less than starting
    again)."""
    groups: list[list[int]] = []
    for pick in picks:
        keyframe = keyframe_before(frames, pick)
        if groups and keyframe - groups[-1][-1] <= gap:
            groups[-1].append(pick)
        else:
            groups.append([pick])
    return groups


def stretches(frames: FrameTimes, groups: list[list[int]]) -> list[tuple[int, int]]:
    """The packets (first, last, in decode order) the decoder needs for each group: from its
    keyframe's packet to the last packet of its picks (a B-frame comes after a later P-frame)."""
    return [
        (frames.packets[keyframe_before(frames, group[0])], max(frames.packets[p] for p in group))
        for group in groups
    ]


def seek_method(tool: Ffmpeg) -> SeekMethod:
    """How this ffmpeg reaches the picks without decoding every frame."""
    return "seek_bsf" if tool.input_bsf else "seek_inputs"


def choose_method(frames: FrameTimes, picks: list[int], seek: SeekMethod = "seek_bsf") -> Method:
    """`seek` when decoding only the stretches costs less than one pass up to the last pick
    (long videos, few frames), else 'sequential' (short clips, dense picks)."""
    if not frames.seekable:
        return "sequential"
    overhead = SEEK_OVERHEAD_FRAMES[seek]
    seek_cost = sum(
        group[-1] - keyframe_before(frames, group[0]) + 1 + overhead
        for group in seek_groups(frames, picks, overhead)
    )
    return seek if seek_cost < picks[-1] + 1 else "sequential"


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
        stderr = _run_ffmpeg(tmp, frames_command(task, ("select", selection(picks)), len(picks)))
    _name_picked_frames(tmp, wanted, picks, task.options.prefix)
    return method, stderr, len(wanted)


def _extract_by_seeking(
    task: FrameTask, tmp: Path, frames: FrameTimes, picks: list[int], method: SeekMethod
) -> bool:
    """Decode only the stretches from the keyframe before each group of picks to its last pick
    (`seek_commands`). A jump to a keyframe that is no clean start (open GOP, a non-IDR I-frame:
    the decoder loses frames after the gap) shows as missing or failed picks: then False, with
    `tmp` emptied, and the caller does the one pass."""
    try:
        _run_ffmpeg(tmp, *seek_commands(task, frames, picks, method))
        if len(os.listdir(tmp)) == len(picks):
            return True
    except ExtractionError:
        pass
    for written in tmp.iterdir():
        written.unlink()
    return False


def seek_commands(
    task: FrameTask, frames: FrameTimes, picks: list[int], method: SeekMethod
) -> list[list[str]]:
    """The commands that write the picks as PICK_PATTERN frames, selected by timestamp (-copyts
    keeps the container's), decoding only their stretches: with "seek_bsf", one input whose
    bitstream filter drops every packet outside the stretches before the decoder (the demuxer
    still reads them, which is cheap); with "seek_inputs", one input per stretch. Same decoder,
    filters and encoder as the one pass, so the same bytes.

    A task given several threads (the last videos of a draining batch, or fewer jobs than
    cores) gets that many commands, run side by side, each decoding its share of the stretches
    on one thread: a stretch decodes the same from its keyframe in any process, and processes
    use cores that a decoder's frame threads often cannot."""
    groups = seek_groups(frames, picks, SEEK_OVERHEAD_FRAMES[method])
    shares = even_shares(frames, groups, threads_here(task.threads))
    if len(shares) > 1:
        task = replace(task, threads=1)
    commands, first = [], 1
    for share in shares:
        share_picks = [pick for group in share for pick in group]
        if method == "seek_bsf":
            select = ("select", selection([frames.times[pick] for pick in share_picks], "pts"))
            keep = stretches(frames, share)
            commands.append(frames_command(task, select, len(share_picks), keep, first))
        else:
            commands.append(inputs_command(task, frames, share, first))
        first += len(share_picks)
    return commands


def even_shares(frames: FrameTimes, groups: list[list[int]], count: int) -> list[list[list[int]]]:
    """`groups` cut into at most `count` runs of consecutive groups with about as many frames
    to decode each."""
    costs = [group[-1] - keyframe_before(frames, group[0]) + 1 for group in groups]
    count, total = max(1, min(count, len(groups))), sum(costs)
    shares: list[list[list[int]]] = [[]]
    done = 0
    for group, cost in zip(groups, costs, strict=True):
        if shares[-1] and len(shares) < count and done >= total * len(shares) / count:
            shares.append([])
        shares[-1].append(group)
        done += cost
    return shares


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
    Returns the method and ffmpeg's messages. A video whose frame times cannot be read (PyAV's
    libraries may lack what the ffmpeg binary has) gets the one pass, as with one thread."""
    threads = threads_here(task.threads)
    if threads > 1 and choose_ffmpeg().tool.input_bsf:
        try:
            frames = frame_times(task.source)
        except ExtractionError:
            frames = None
        starts = part_starts(frames, threads) if frames and frames.seekable else [0]
        if frames and len(starts) > 1 and _extract_in_parts(task, tmp, frames, starts):
            return "fps_parts", ""
    return "fps", _run_ffmpeg(tmp, frames_command(task, ("fps", task.options.fps or "")))


def clean_keyframes(frames: FrameTimes) -> list[int]:
    """The keyframes where the video can be cut in two by packet number: every frame shown
    before one is decoded before it, every frame shown from it on is decoded from it on (no
    B-frame crosses it: an open GOP's leading pictures do)."""
    shown_before_max, cuts = -1, []
    decoded_after_min = list(frames.packets)
    for index in range(len(frames.packets) - 2, -1, -1):
        decoded_after_min[index] = min(decoded_after_min[index], decoded_after_min[index + 1])
    keyframes = set(frames.keyframes)
    for index, packet in enumerate(frames.packets):
        if index in keyframes and index and shown_before_max < packet == decoded_after_min[index]:
            cuts.append(index)
        shown_before_max = max(shown_before_max, packet)
    return cuts


def part_starts(frames: FrameTimes, count: int) -> list[int]:
    """Where the parts of a video split among `count` ffmpegs begin (frame numbers: 0, then
    clean keyframes), as even as the keyframes allow, each at least PART_MIN_FRAMES long."""
    total = len(frames.times)
    count = max(1, min(count, total // PART_MIN_FRAMES))
    cuts, starts = clean_keyframes(frames), [0]
    for part in range(1, count):
        target = total * part / count
        fits = [c for c in cuts if min(c - starts[-1], total - c) >= PART_MIN_FRAMES]
        if fits:
            starts.append(min(fits, key=lambda cut: abs(cut - target)))
    return starts


def _extract_in_parts(task: FrameTask, tmp: Path, frames: FrameTimes, starts: list[int]) -> bool:
    """The fps filter's frames, from one-thread ffmpegs side by side, each decoding one part of
    the video (its packets from its keyframe to the next part's; the others dropped before the
    decoder) and naming its frames by their output timestamp: the fps filter's slot numbers.

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
        commands.append(part_command(task, (first_packet, end), folder.name))
    try:
        _run_ffmpeg(tmp, *commands)
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


def part_command(task: FrameTask, keep: tuple[int, int], folder: str) -> list[str]:
    """One part of `_extract_in_parts`: the fps filter on the `keep` packets, one thread, the
    frames named by their slot (the image2 muxer's frame_pts) in `folder`."""
    video = _input(replace(task, threads=1), **{"bsf:v": packet_filter([keep])})
    sampled = _sampled(video, ("fps", task.options.fps or ""), task)
    output = _jpeg_output(sampled, task, None, slots_in=folder)
    return ffmpeg_command(output, *ONE_FILTER_THREAD)


def _run_ffmpeg(cwd: Path, *commands: list[str]) -> str:
    """Run the ffmpeg commands side by side inside the temporary folder (so a '%' in a folder
    name is never read as an image pattern); return their messages, or raise ExtractionError
    with those of the first that failed."""
    running: list[subprocess.Popen[str]] = []
    try:
        for command in commands:
            running.append(
                subprocess.Popen(
                    command,
                    cwd=cwd,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                )
            )
        said = [(process, process.communicate()[1].strip()) for process in running]
    finally:
        for process in running:
            if process.poll() is None:  # interrupted: leave no ffmpeg behind
                process.kill()
                process.wait()
    for process, stderr in said:
        if process.returncode != 0:
            raise ExtractionError(stderr or f"ffmpeg exited with status {process.returncode}")
    return "\n".join(stderr for _, stderr in said if stderr)
