"""`make frames`: extract the frames of every video into `FRAMES/<video stem>/image_%05d.jpg`.

This is the folder layout AdaCLIP's dataloader reads. Each video is extracted atomically (temporary
folder, frame count checked, renamed), so a killed run leaves only temporaries; a rerun removes
them and redoes only what is missing or failed; frames made with other options are refused
(naming both) unless --replace (REPLACE=1), then redone. The manifest
`FRAMES/frames_manifest.jsonl` records per video its source, frame count, duration, options,
status and error text.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from pyutils.core.atomic import check_writable_folder
from pyutils.core.cli import Parser
from pyutils.core.errors import UserError, run_cli
from pyutils.core.media import describe_ffmpeg, require
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import FailureLog, log, plural, say
from pyutils.core.stage import add_parallel_options, parallel_options, positive_int, run_stage
from pyutils.core.video_index import (
    VIDEO_EXTENSIONS,
    find_videos,
    index_by_stem,
    is_utf8,
    not_utf8_reason,
    printable,
)
from pyutils.video.frame_extract import METHOD_TEXT, extract_video, seek_method
from pyutils.video.frame_plan import FrameOptions, FrameTask
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

# The options a frames folder is made with, by the Make variable (or flag) that sets each.
OPTION_NAMES = {
    "fps": "FPS",
    "short_side": "SIZE",
    "num_frames": "NUM_FRAMES",
    "quality": "--quality",
    "prefix": "--prefix",
}

# One printf-style frame number, e.g. image_%05d.jpg (AdaCLIP's img_tmpl is image_{:05d}.jpg).
PREFIX_PATTERN = re.compile(r"[^%/.][^%/]*%0?\d*d[^%/]*\.(jpg|jpeg)")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    check_writable_folder(args.frames, "FRAMES")
    videos, refused = _select_videos(args)
    frames_dir = Path(args.frames)
    options = FrameOptions(args.fps, args.short_side, args.num_frames, args.quality, args.prefix)
    recorded = asdict(options)
    manifest = read_manifest(frames_dir / MANIFEST)
    if not (args.replace or args.overwrite):
        refuse_other_options(manifest, videos, recorded, frames_dir, OPTION_NAMES, "FRAMES=")
    todo = [
        stem
        for stem, video in videos.items()
        if args.overwrite or not is_done(manifest.get(stem), video, recorded, frames_dir / stem)
    ]
    parallel = parallel_options(args)
    log(f"frames: {describe_run(options, parallel)}")
    done = len(videos) - len(todo)
    said = f", {len(refused)} refused (path not UTF-8)" if refused else ""
    log(f"frames: {plural(len(videos), 'video')}, {done} already done, {len(todo)} to do{said}")
    if args.dry_run:
        for stem in todo:
            print(f"{videos[stem]} -> {frames_dir / stem}")
        return 0
    frames_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(frames_dir):
        threads = parallel.ffmpeg_threads()
        # Longest first (by size), so that the last to start are short and the cores they leave
        # idle at the end are few; those last ones get more decoder threads (`run_parallel`).
        todo.sort(key=lambda stem: -videos[stem].stat().st_size)
        tasks = [
            FrameTask(stem, str(videos[stem]), str(frames_dir / stem), options, threads)
            for stem in todo
        ]
        return _run(tasks, parallel, frames_dir, manifest, recorded, refused)


def _run(
    tasks: list[FrameTask],
    parallel: ParallelOptions,
    frames_dir: Path,
    manifest: dict[str, dict[str, Any]],
    options: dict[str, Any],
    refused: list[Path],
) -> int:
    failures = FailureLog("frames", frames_dir)
    for video in refused:
        failures.fail(printable(video), not_utf8_reason(video))
    shared = [str(Path(tasks[0].source).parent), str(frames_dir)] if tasks else []
    gauge = FramesGauge(frames_dir)
    results = run_stage("frames", extract_video, tasks, parallel, failures, shared, gauge)
    for result in journal(results, frames_dir, manifest, options):
        gauge.add(result.frames)
    say(f"frames: {gauge.finished} frames written into {frames_dir}")
    return failures.finish()


def describe_run(options: FrameOptions, parallel: ParallelOptions) -> str:
    """The run's first line: the options in effect, which ffmpeg and why, and how the frames
    are reached. Refuses (UserError) an ffmpeg that lacks what extracting frames needs."""
    tool = require("frames")
    if options.num_frames:
        what = f"{options.num_frames} uniformly spaced frames (AdaCLIP)"
        method = f"{METHOD_TEXT[seek_method(tool)]} where it saves decoding, else one pass"
    elif options.fps:
        what = f"{options.fps} frame{'' if Fraction(options.fps) == 1 else 's'} per second"
        method = "the fps filter in one pass" + (
            ", a video given several cores cut at keyframes among one-thread ffmpegs"
            if tool.input_bsf
            else ""
        )
    else:
        what, method = "every frame", "one pass"
    size = f"shorter side {options.short_side}" if options.short_side else "native size"
    where = parallel.where()
    return f"{what}, {size}, JPEG q{options.quality}, {where}; {describe_ffmpeg()}, {method}"


def _select_videos(args: argparse.Namespace) -> tuple[dict[str, Path], list[Path]]:
    """The videos to extract by stem, and those refused because their path is not UTF-8 (each
    that one item's failure: the others go on)."""
    if args.file_list:
        videos = _read_file_list(Path(args.file_list), Path(args.videos))
    else:
        videos = find_videos(args.videos, args.ext)
    if not videos:
        raise UserError(
            f"VIDEOS={args.videos}: no videos with extension {', '.join(args.ext)} found; set "
            "VIDEOS= to the folder of videos"
        )
    by_stem = index_by_stem(video for video in videos if is_utf8(video))
    refuse_reserved_stems(by_stem, "frames", "FRAMES")
    return by_stem, [video for video in videos if not is_utf8(video)]


def _read_file_list(path: Path, videos_dir: Path) -> list[Path]:
    """One video per line, absolute or relative to VIDEOS; every listed file must exist."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the file list ({exc.strerror})") from None
    videos = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        video = videos_dir / name  # an absolute name replaces VIDEOS
        if not video.is_file():
            raise UserError(f"{path}:{number}: {video}: no such video")
        videos.append(video)
    return videos


def _rate(text: str) -> str:
    try:
        if Fraction(text) > 0:
            return text
    except (ValueError, ZeroDivisionError):
        pass
    raise argparse.ArgumentTypeError(
        f"expected a positive rate such as 1, 0.5 or 30000/1001, got {text!r}"
    )


def _prefix(text: str) -> str:
    if not PREFIX_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a file name with one frame number and a .jpg extension, like image_%05d.jpg,"
            f" got {text!r}"
        )
    return text


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m pyutils.video.frames",
        description=__doc__.split("\n\n")[0],
        make_names={
            "videos": "VIDEOS",
            "frames": "FRAMES",
            "fps": "FPS",
            "num_frames": "NUM_FRAMES",
            "short_side": "SIZE",
            "replace": "REPLACE",
        },
    )
    parser.add_argument("videos", help="folder of videos (searched recursively)")
    parser.add_argument("frames", help="output folder: one sub-folder of frames per video")
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=_rate, help="output frame rate (default: native)")
    sampling.add_argument(
        "--num-frames",
        type=positive_int,
        metavar="K",
        help="exactly K frames, the ones AdaCLIP's uniform sampler picks",
    )
    parser.add_argument(
        "--short-side",
        type=positive_int,
        metavar="S",
        help="scale so the shorter side is S pixels (never up; default: native size)",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=2,
        choices=range(1, 32),
        metavar="Q",
        help="JPEG quality, ffmpeg's -q:v, 1 (best) to 31 (default: 2)",
    )
    parser.add_argument(
        "--prefix",
        type=_prefix,
        default="image_%05d.jpg",
        help="frame file names (default: image_%%05d.jpg, numbered from 1)",
    )
    parser.add_argument(
        "--ext",
        nargs="+",
        default=list(VIDEO_EXTENSIONS),
        help="video extensions to accept (default: %(default)s)",
    )
    parser.add_argument("--file-list", help="text file of videos to do, one per line")
    add_parallel_options(parser, "threading", "videos extracted")
    parser.add_argument("--dry-run", action="store_true", help="list what would be done")
    parser.add_argument("--overwrite", action="store_true", help="redo videos already done")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace frames made with other options (REPLACE=1; else refused)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_cli(main)
