"""Finding ffmpeg, compiling ffmpeg commands, and probing videos, on machines with or without a
system ffmpeg.

ffmpeg is looked up in $FFMPEG, then PATH, then the static binary that the imageio-ffmpeg wheel
ships. Command lines are built with ffmpeg-python and compiled here to an argument list for that
ffmpeg. Probing is done in-process with PyAV, so it needs no ffprobe at all and costs no process
start per video.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pyutils.core.errors import MediaError, UserError


@functools.cache
def find_ffmpeg() -> str:
    """Path of the ffmpeg to run: $FFMPEG, then PATH, then imageio-ffmpeg's bundled binary."""
    found = _from_env_or_path("FFMPEG", "ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise UserError(
            "ffmpeg not found: set FFMPEG=/path/to/ffmpeg, install it, or run `make setup`"
        ) from None


def ffmpeg_command(output: Any, *global_args: str, overwrite: bool = False) -> list[str]:
    """The argument list (never a shell string) that runs an ffmpeg-python output with the ffmpeg
    `find_ffmpeg` chose: reading nothing from stdin, printing only errors, with `global_args`
    (which ffmpeg-python puts after the outputs; ffmpeg reads global options anywhere)."""
    command = output.global_args("-nostdin", "-v", "error", *global_args)
    return command.compile(cmd=find_ffmpeg(), overwrite_output=overwrite)


def _from_env_or_path(variable: str, name: str) -> str | None:
    configured = os.environ.get(variable)
    if configured:
        resolved = shutil.which(configured)
        if resolved is None:
            raise UserError(f"${variable}={configured} is not an executable file")
        return resolved
    return shutil.which(name)


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of vlprep needs to know about a video before touching its frames."""

    duration: float  # seconds; the video stream's, else the container's
    width: int
    height: int
    fps: float  # average frame rate
    frame_count: int  # from the header, else counted packets, else duration x fps
    frame_count_exact: bool  # False when it is only the duration x fps estimate

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def probe(path: str | os.PathLike[str], count_frames: bool = False) -> VideoInfo:
    """Read a video's duration, size, frame rate and frame count.

    WebM and Matroska carry no per-stream duration or frame count: the container's duration is
    used, and with `count_frames` the video packets are counted (demuxing only, no decoding).
    Raises MediaError with the demuxer's reason for anything that is not a readable video.
    """
    source = Path(path)
    if not source.is_file():
        raise MediaError(f"{source}: no such file")
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise MediaError(f"{source}: not a video (no video stream)")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            frames = stream.frames
            exact = frames > 0
            if not exact and count_frames:
                frames = sum(1 for packet in container.demux(stream) if packet.size)
                exact = True
            if not exact:
                frames = round(duration * fps)
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.FFmpegError as exc:
        raise MediaError(f"{source}: not a readable video ({_reason(exc)})") from None
    if duration <= 0 or width <= 0 or height <= 0:
        raise MediaError(f"{source}: not a readable video (no duration or frame size)")
    return VideoInfo(duration, width, height, fps, frames, exact)


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * Fraction(stream.time_base))
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _reason(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)
