"""LLaMA-Factory's training settings as command-line options, under its own names.

`make preflight` replays them and `make activitynet_qa PRESAMPLE=1` samples frames with them, so
both take them the same way: as text (make passes whatever was typed), checked here into a
`Budget`, with a one-line error that names the Make variable and the flag
(`VIDEO_FPS=x (--video-fps): expected a positive number`).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from pyutils.core.errors import UserError
from pyutils.llamafactory.qwen_video import (
    CUTOFF_LEN,
    VIDEO_FPS,
    VIDEO_MAX_PIXELS,
    VIDEO_MAXLEN,
    VIDEO_MIN_PIXELS,
    Budget,
)


def add_budget_options(parser: argparse.ArgumentParser, cutoff: bool = True) -> None:
    """--video-fps, --video-maxlen, --video-max-pixels, --video-min-pixels (and --cutoff-len)."""
    parser.add_argument("--video-fps", default=f"{VIDEO_FPS}", help="VIDEO_FPS")
    parser.add_argument("--video-maxlen", default=f"{VIDEO_MAXLEN}", help="VIDEO_MAXLEN")
    parser.add_argument(
        "--video-max-pixels", default=f"{VIDEO_MAX_PIXELS}", help="VIDEO_MAX_PIXELS"
    )
    parser.add_argument(
        "--video-min-pixels", default=f"{VIDEO_MIN_PIXELS}", help="VIDEO_MIN_PIXELS"
    )
    if cutoff:
        parser.add_argument("--cutoff-len", default=f"{CUTOFF_LEN}", help="CUTOFF_LEN")


def number(text: str, variable: str, flag: str, kind: type, minimum: float = 1) -> Any:
    """`text` as a `kind` of at least `minimum`; else a one-line error naming the variable."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (kind is float and not math.isfinite(value)):
        what = "a positive number" if kind is float else f"a whole number >= {minimum}"
        raise UserError(f"{variable}={text} ({flag}): expected {what}")
    return value


def budget_from(args: argparse.Namespace) -> Budget:
    """The settings `add_budget_options` took, checked."""
    cutoff = getattr(args, "cutoff_len", None)
    budget = Budget(
        video_fps=number(args.video_fps, "VIDEO_FPS", "--video-fps", float, 1e-9),
        video_maxlen=number(args.video_maxlen, "VIDEO_MAXLEN", "--video-maxlen", int),
        video_max_pixels=number(
            args.video_max_pixels, "VIDEO_MAX_PIXELS", "--video-max-pixels", int
        ),
        video_min_pixels=number(
            args.video_min_pixels, "VIDEO_MIN_PIXELS", "--video-min-pixels", int
        ),
        cutoff_len=CUTOFF_LEN
        if cutoff is None
        else number(cutoff, "CUTOFF_LEN", "--cutoff-len", int),
    )
    if budget.video_max_pixels < budget.video_min_pixels:
        raise UserError(
            f"VIDEO_MAX_PIXELS={budget.video_max_pixels} is below VIDEO_MIN_PIXELS="
            f"{budget.video_min_pixels} (LLaMA-Factory refuses that too)"
        )
    return budget
