"""The ffmpeg commands that write a `FrameTask`'s frames, and running them side by side.

Built with ffmpeg-python, which escapes the filter arguments, from the plans of
`pyutils.video.frame_plan`; every command of one task has the same decoder, filters and encoder
as the one pass, so whichever is run, the bytes are the same.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import ffmpeg

from pyutils.core.media import ffmpeg_command
from pyutils.core.parallel import threads_here
from pyutils.video.frame_plan import (
    SEEK_OVERHEAD_FRAMES,
    ExtractionError,
    FrameTask,
    FrameTimes,
    SeekMethod,
    even_shares,
    keyframe_before,
    seek_groups,
    spared,
    stretches,
    without,
)

# Names of the distinct picked frames before they get their final names (never a valid prefix:
# prefixes may not start with a dot).
PICK_PATTERN = ".pick_%05d.jpg"

# One filter thread for a filterless run's implicit graph and for ffmpeg-python's graphs.
ONE_FILTER_THREAD = ("-filter_threads", "1", "-filter_complex_threads", "1")


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
    packet numbers, in decode order, ascending). The stretch that may hold packet n is found by
    a binary search of nested if()s, which evaluate only the branch taken: a few comparisons per
    packet for thousands of stretches (a sum of one term per stretch would cost them all, for
    every packet). The expression is quoted: a list of bitstream filters is split at commas."""

    def within(part: list[tuple[int, int]]) -> str:  # n is at or after part[0]'s first packet
        if len(part) == 1:
            return f"lte(n,{part[0][1]})"
        middle = len(part) // 2
        return f"if(lt(n,{part[middle][0]}),{within(part[:middle])},{within(part[middle:])})"

    return f"noise=drop='not(if(lt(n,{keep[0][0]}),0,{within(keep)}))'"


def frames_command(
    task: FrameTask,
    sample: tuple[str, str] | None = None,
    picks: int | None = None,
    keep: list[tuple[int, int]] | None = None,
    first: int = 1,
    copyts: bool = False,
) -> list[str]:
    """The ffmpeg command that writes `task`'s frames into the folder it runs in.

    Every frame, or those that the `sample` filter ("fps" or "select", and its argument) lets
    through, scaled to the task's short side. With `picks`, decoding stops after that many frames,
    named PICK_PATTERN for `_name_picked_frames`, numbered from `first`. With `keep` (packet
    stretches), the bitstream filter drops every other packet before the decoder. With `copyts`,
    the container's timestamps are kept, for a select on pts.
    """
    input_options = {"bsf:v": packet_filter(keep)} if keep else {}
    video = _input(task, **input_options)
    output = _jpeg_output(_sampled(video, sample, task), task, picks, first)
    return ffmpeg_command(output, *ONE_FILTER_THREAD, *(["-copyts"] if copyts else []))


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


def seek_commands(
    task: FrameTask, frames: FrameTimes, picks: list[int], method: SeekMethod
) -> list[list[str]]:
    """The commands that write the picks as PICK_PATTERN frames, selected by timestamp (-copyts
    keeps the container's), decoding only their stretches: with "seek_bsf", one input whose
    bitstream filter drops every packet outside the stretches before the decoder (the demuxer
    still reads them, which is cheap), and inside them the disposable frames that are not
    picked (`spared`); with "seek_inputs", one input per stretch. Same decoder, filters and
    encoder as the one pass, so the same bytes.

    A task given several threads (the last videos of a draining batch, or fewer jobs than
    cores) gets that many commands, run side by side, each decoding its share of the stretches
    on one thread: a stretch decodes the same from its keyframe in any process, and processes
    use cores that a decoder's frame threads often cannot."""
    groups = seek_groups(frames, picks, SEEK_OVERHEAD_FRAMES[method])
    shares = even_shares(frames, groups, threads_here(task.threads))
    if len(shares) > 1:
        task = replace(task, threads=1)
    commands, first = [], 1
    drops = spared(frames, set(picks))
    for share in shares:
        share_picks = [pick for group in share for pick in group]
        if method == "seek_bsf":
            select = ("select", selection([frames.times[pick] for pick in share_picks], "pts"))
            keep = without(stretches(frames, share), drops)
            command = frames_command(task, select, len(share_picks), keep, first, copyts=True)
            commands.append(command)
        else:
            commands.append(inputs_command(task, frames, share, first))
        first += len(share_picks)
    return commands


def part_command(task: FrameTask, keep: list[tuple[int, int]], folder: str) -> list[str]:
    """One part of `_extract_in_parts`: the fps filter on the `keep` packets, one thread, the
    frames named by their slot (the image2 muxer's frame_pts) in `folder`."""
    video = _input(replace(task, threads=1), **{"bsf:v": packet_filter(keep)})
    sampled = _sampled(video, ("fps", task.options.fps or ""), task)
    output = _jpeg_output(sampled, task, None, slots_in=folder)
    return ffmpeg_command(output, *ONE_FILTER_THREAD)


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


class PlanningTurn:
    """One task's Python work (probing, reading the frame list, planning) at a time among the
    threads of a run, until its first ffmpeg starts (`run_ffmpeg`). That work holds Python's
    lock, so tasks that start together and share it all start their ffmpegs late, leaving
    cores idle: one at a time, the first starts as soon as its own plan is ready, and the
    others plan while it decodes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder = threading.local()

    @contextmanager
    def taken(self) -> Iterator[None]:
        self._lock.acquire()
        self._holder.turn = True
        try:
            yield
        finally:
            self.end()

    def end(self) -> None:
        """Give the turn up, if this thread holds it."""
        if getattr(self._holder, "turn", False):
            self._holder.turn = False
            self._lock.release()


PLANNING = PlanningTurn()


def run_ffmpeg(cwd: Path, *commands: list[str]) -> str:
    """Run the ffmpeg commands side by side inside the temporary folder (so a '%' in a folder
    name is never read as an image pattern); return their messages, or raise ExtractionError
    with those of the first that failed. Ends this thread's `PLANNING` turn first."""
    PLANNING.end()
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
