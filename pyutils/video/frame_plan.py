"""What to decode and what to keep: the task (`FrameTask`), the video's frame list (`frame_times`)
and the plans drawn from it, with no ffmpeg run here.

For NUM_FRAMES and exact picks: which frames are picked (`uniform_indices`), how they group
around keyframes (`seek_groups`), which packets each group needs (`stretches`), whether seeking
pays (`choose_method`) and how groups are shared among side-by-side ffmpegs (`even_shares`). For
FPS: where a video can be cut into parts (`clean_keyframes`, `part_starts`).
`pyutils.video.frame_commands` turns these into ffmpeg commands; `pyutils.video.frame_extract`
runs them and checks what they wrote.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from pyutils.core.media import hidden_frames
from pyutils.video.bitstream import Buffer, Test, packet_tests

# Containers whose packets come in the same order and number to PyAV and to ffmpeg, with
# reliable keyframe flags; elsewhere (MPEG-PS, AVI, ASF) only the sequential pass is trusted.
SEEKABLE_FORMATS = ("mov", "mp4", "matroska", "webm")

# What one more stretch costs beyond its frames, in decoded frames, by seeking method: a margin
# that keeps the one pass (no fallback risk) when skipping would save little, and the gap under
# which two stretches are decoded as one. An input of its own (-ss) costs about 7 ms to open and
# probe (bench/frames.py), some 35 frames of a 640x360 H.264 decode.
SEEK_OVERHEAD_FRAMES = {"seek_bsf": 15, "seek_inputs": 40}

# How far (seconds) a frame's time may be from where ffmpeg puts it (its start time is subtracted
# in microseconds, then rescaled to the stream's time base) before its fps slot is in doubt: a
# frame that close to a slot boundary is decoded, whichever slot it falls in.
SLOT_DOUBT = Fraction(1, 500)
# The last packet number of a stretch that runs to the end of the stream.
TO_THE_END = 2**53
# A part of a video that `--fps` splits among one-thread ffmpegs has at least this many frames:
# starting one more ffmpeg (~20 ms) costs about a hundred 640x360 H.264 frames of decoding.
PART_MIN_FRAMES = 100

# How the uniform picks are reached: one ffmpeg input whose decoder gets only the needed packets
# (a bitstream filter before -i drops the rest: ffmpeg 9.0, not Debian 12's 5.1), one input per
# stretch opened at its keyframe (-ss before -i: any ffmpeg), or one pass through every frame.
SeekMethod = Literal["seek_bsf", "seek_inputs"]
Method = Literal["native", "fps", "fps_parts", "seek_bsf", "seek_inputs", "sequential"]


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
    # Frames (presentation order) whose packets no other frame refers to (`packet_tests`):
    # the decoder can be spared them when they are not kept themselves.
    disposable: frozenset[int] = frozenset()
    # Keyframes (presentation order) whose packets start afresh (`packet_tests`): no frame from
    # them on refers to one before, so what lies between the last kept frame and one of them
    # need not be decoded.
    fresh: frozenset[int] = frozenset()

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
            disposable, fresh = packet_tests(stream)
            # The index says nothing of the packets' contents: a codec whose frames may be
            # disposable without being reordered (AV1's hidden frames) is demuxed.
            reads_packets = disposable and stream.codec_context.codec.canonical_name == "av1"
            listed = None if reads_packets else _from_index(container.format.name, stream, head)
            if listed and fresh:
                listed = _fresh_in_index(source, stream, listed, fresh)
            # The frames an edit list hides (`hidden_frames`) are decoded but never shown: they
            # are no frames of the video. Seeking would have to start at their keyframe, which
            # the shown frames' keyframes do not include, so such a video takes the one pass.
            hidden = 0 if listed else hidden_frames(container.format.name, stream)
            # Numbered as ffmpeg's bitstream filters count them: every packet of the stream.
            packets = listed or [
                _packet(p, number, disposable, fresh)
                for number, p in enumerate(itertools.chain(head, demuxed))
                if p.size and p.pts is not None and not p.is_discard
            ]
            seekable = not hidden and container.format.name.split(",")[0] in SEEKABLE_FORMATS
            time_base = Fraction(stream.time_base or 1)
            start = Fraction(container.start_time or 0, av.time_base)
            counted_from = Fraction(0) if container.format.name.startswith("matroska") else start
            has_duration = bool(stream.duration)
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise ExtractionError(f"cannot read the frame times: {exc}") from None
    packets.sort()
    keyframes = [i for i, (_, _, key, _) in enumerate(packets) if key] or [0]
    times, numbers = [p[0] for p in packets], [p[1] for p in packets]
    first = times[0] * time_base if times else counted_from
    lead = Fraction(0) if has_duration else max(Fraction(0), first - counted_from)
    disposable_frames = frozenset(i for i, (*_, kind) in enumerate(packets) if kind == DISPOSABLE)
    fresh_frames = frozenset(i for i, (*_, kind) in enumerate(packets) if kind == FRESH)
    return FrameTimes(
        times, numbers, keyframes, seekable, time_base, start, lead, disposable_frames, fresh_frames
    )


# What a packet's bytes say of its frame (`pyutils.video.bitstream`): nothing known, no other
# frame refers to it, or a keyframe that starts afresh.
REFERRED, DISPOSABLE, FRESH = 0, 1, 2
Packet = tuple[int, int, bool, int]  # pts, packet number, keyframe, what its bytes say


def _packet(packet: Any, number: int, disposable: Test, fresh: Test) -> Packet:
    """A demuxed packet's entry; its bytes are read (without a copy) only by a test that
    applies: fresh for a keyframe, disposable for the others."""
    test = fresh if packet.is_keyframe else disposable
    verdict = bool(test and test(memoryview(packet)))
    kind = (FRESH if packet.is_keyframe else DISPOSABLE) if verdict else REFERRED
    return packet.pts, number, packet.is_keyframe, kind


def _fresh_in_index(
    source: str, stream: Any, listed: list[Packet], fresh: Callable[[Buffer], bool]
) -> list[Packet]:
    """`listed` (from the index) with its keyframes' packets read where the index says they are
    in the file (a few dozen reads), to mark those that start afresh."""
    entries = stream.index_entries
    with open(source, "rb") as file:
        marked = []
        for pts, number, key, kind in listed:
            if key:
                file.seek(entries[number].pos)
                kind = FRESH if fresh(memoryview(file.read(entries[number].size))) else REFERRED
            marked.append((pts, number, key, kind))
    return marked


def may_spare_packets(source: str) -> bool:
    """Whether the first video stream's codec says in its headers which frames no other frame
    refers to, or which keyframes start afresh (`pyutils.video.bitstream`): opening the file
    costs a millisecond, demuxing it for `frame_times` tens."""
    import av

    try:
        with av.open(source, metadata_errors="ignore") as container:
            return any(packet_tests(container.streams.video[0]))
    except (av.FFmpegError, IndexError):
        return False


def _from_index(format_name: str, stream: Any, head: list[Any]) -> list[Packet] | None:
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
    # Its packets are not read here, so none is known to be disposable.
    return [(e.timestamp + offset, n, e.is_keyframe, REFERRED) for n, e in enumerate(entries)]


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


def spared(frames: FrameTimes, kept: set[int]) -> list[int]:
    """The packets of the disposable frames outside `kept`, in decode order: what the decoder
    need not see."""
    return sorted(frames.packets[i] for i in frames.disposable - kept)


def without(keep: list[tuple[int, int]], drops: list[int]) -> list[tuple[int, int]]:
    """The packet stretches `keep` (first, last; in order) less the packets `drops` (sorted)."""
    result = []
    drops_at = 0
    for first, last in keep:
        while drops_at < len(drops) and drops[drops_at] < first:
            drops_at += 1
        while drops_at < len(drops) and drops[drops_at] <= last:
            if drops[drops_at] > first:
                result.append((first, drops[drops_at] - 1))
            first = drops[drops_at] + 1
            drops_at += 1
        if first <= last:
            result.append((first, last))
    return result


def decoded_for(frames: FrameTimes, kept: set[int]) -> list[tuple[int, int]]:
    """The packet stretches (first, last, in decode order) that decode every frame of `kept`:
    from the last fresh keyframe at or before each one's packet (the first packet where there
    is none) to that packet, stretches that meet joined. What lies between one stretch's end
    and the next one's fresh keyframe, no frame kept refers to: everything before the end a
    frame kept may need is inside, and nothing from a fresh keyframe on refers back past it."""
    fresh = sorted(frames.packets[frame] for frame in frames.fresh)
    ends: dict[int, int] = {}
    for frame in kept:
        packet = frames.packets[frame]
        before = bisect.bisect_right(fresh, packet) - 1
        start = fresh[before] if before >= 0 else 0
        ends[start] = max(ends.get(start, packet), packet)
    joined: list[tuple[int, int]] = []
    for start in sorted(ends):
        if joined and start <= joined[-1][1] + 1:
            joined[-1] = (joined[-1][0], max(joined[-1][1], ends[start]))
        else:
            joined.append((start, ends[start]))
    return joined


def clipped(keep: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """The parts of the `keep` stretches between packets `first` and `last`."""
    clipped = ((max(start, first), min(end, last)) for start, end in keep)
    return [(start, end) for start, end in clipped if start <= end]


def fps_kept(frames: FrameTimes, fps: Fraction, cuts: list[int]) -> set[int]:
    """The frames that ffmpeg's fps filter may write at `fps`, and those that must stay for it to
    write the others: the first frame, whose slot is where the slots begin; the last, whose end
    is where they end; and the last before each of `cuts` (part starts), whose end is where a
    part's slots end.

    The fps filter (FFmpeg libavfilter/vf_fps.c, write_frame) rounds each frame's timestamp to
    the output rate (`round=near`) and drops its oldest frame while the next one's rounded
    timestamp is at most the slot to fill, so a frame is written only when the next frame rounds
    to a later slot. Timestamps are the container's less its start time (ffmpeg without
    -copyts); a frame within SLOT_DOUBT of a boundary counts both ways. In floats, whose error
    (under a nanosecond) is far inside that doubt, and which cost a fraction of Fractions."""
    rate, base, start = float(fps), float(frames.time_base), float(frames.start)
    doubt = float(SLOT_DOUBT) * rate
    slots = []
    for time in frames.times:
        slot = (time * base - start) * rate
        slots.append((_round_near(slot - doubt), _round_near(slot + doubt)))
    kept = {index for index in range(len(slots) - 1) if slots[index + 1][1] > slots[index][0]}
    return kept | {0, len(slots) - 1} | {cut - 1 for cut in cuts if cut > 0}


def _round_near(value: float) -> int:
    """av_rescale_q_rnd's AV_ROUND_NEAR_INF: to the nearest, halves away from zero."""
    whole = math.floor(abs(value) + 0.5)
    return whole if value >= 0 else -whole


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
