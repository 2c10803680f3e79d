"""Small JPEG thumbnails of frame images, made in-process with PyAV (no ffmpeg process, no
Pillow): the report page inlines a few dozen of them, so each must cost milliseconds and a few KB.
"""

from __future__ import annotations

import os
from fractions import Fraction

import av

PIXEL_FORMAT = "yuvj420p"  # full-range YUV, what the MJPEG encoder takes


def jpeg_thumbnail(path: str | os.PathLike[str], height: int) -> bytes | None:
    """The first frame of `path` (a JPEG frame, or any image or video PyAV reads) scaled to
    `height` pixels (even width, aspect kept) as JPEG bytes; None if it cannot be read."""
    try:
        with av.open(os.fspath(path)) as container:
            frame = next(container.decode(video=0))
    except (OSError, ValueError, StopIteration, av.FFmpegError):
        return None
    width = max(2, round(frame.width * height / max(1, frame.height) / 2) * 2)
    small = frame.reformat(width=width, height=height, format=PIXEL_FORMAT)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, PIXEL_FORMAT
    encoder.time_base = Fraction(1, 25)
    packets = [*encoder.encode(small), *encoder.encode(None)]
    return b"".join(bytes(packet) for packet in packets)
