"""Small JPEG thumbnails of frames, made in-process with PyAV (no ffmpeg process, no Pillow): the
report page inlines a few dozen of them, so each must cost milliseconds and a few KB."""

from __future__ import annotations

import os
from fractions import Fraction

import av

PIXEL_FORMAT = "yuvj420p"  # full-range YUV, what the MJPEG encoder takes
FAILURES = (OSError, ValueError, StopIteration, av.FFmpegError)


def _jpeg(frame: av.VideoFrame, height: int) -> bytes:
    """`frame` scaled to `height` pixels (even width, aspect kept), as JPEG bytes."""
    width = max(2, round(frame.width * height / max(1, frame.height) / 2) * 2)
    small = frame.reformat(width=width, height=height, format=PIXEL_FORMAT)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, PIXEL_FORMAT
    encoder.time_base = Fraction(1, 25)
    return b"".join(bytes(packet) for packet in [*encoder.encode(small), *encoder.encode(None)])


def jpeg_thumbnail(path: str | os.PathLike[str], height: int) -> bytes | None:
    """The first frame of `path` (a frame image, or any image or video PyAV reads) as a
    thumbnail; None if it cannot be read."""
    try:
        with av.open(os.fspath(path)) as container:
            return _jpeg(next(container.decode(video=0)), height)
    except FAILURES:
        return None


def video_thumbnails(path: str | os.PathLike[str], indices: list[int], height: int) -> list[bytes]:
    """Thumbnails of the frames at `indices` of `path`, counted in decode order as LLaMA-Factory's
    `_regularize_videos` counts them (`enumerate(container.decode(video_stream))`); decoding stops
    at the last one. Fewer when the video ends or breaks first."""
    wanted, thumbs = set(indices), []
    try:
        with av.open(os.fspath(path)) as container:
            container.streams.video[0].thread_type = "AUTO"
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    thumbs.append(_jpeg(frame, height))
                if index >= max(wanted):
                    break
    except (*FAILURES, IndexError):
        pass
    return thumbs
