"""`make demo`: build a small generated sample and run every vlprep stage on it, end to end.

Each stage adds one row to the summary table; a stage that fails makes the demo exit non-zero.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pyutils.atomic import atomic_dir
from pyutils.contact_sheet import write_contact_sheet
from pyutils.errors import UserError, run_cli
from pyutils.media import find_ffmpeg, find_ffprobe, probe
from pyutils.sample import DEMO_VIDEOS, build_demo_sample, make_video
from pyutils.transcode import transcode_all


def probe_sample(root: Path, table: Table) -> None:
    for name, seconds in DEMO_VIDEOS:
        info = probe(root / "videos" / name)
        table.add_row(
            "probe",
            name,
            f"{info.duration:.2f} s (generated {seconds:.2f} s), {info.width}x{info.height}, "
            f"{info.fps:g} fps, {info.frame_count} frames",
        )


# DiDeMo-style originals: odd containers, and a bare-dot name whose format only its bytes tell.
DIDEMO_ORIGINALS = [
    ("10015567@N08_3655084291_d8b58466fa.mov", 2.0, None),
    ("video 'odd' $(touch pwned).avi", 1.5, None),
    ("10052357@N03_7585070382_5762149bfc.", 1.0, "mp4"),
]


def transcode_didemo(root: Path, table: Table) -> None:
    source, dest = root / "didemo" / "originals", root / "didemo" / "videos"
    for name, seconds, container in DIDEMO_ORIGINALS:
        if not (source / name).exists():
            make_video(source / name, seconds, container=container)
    if transcode_all(source, dest, jobs=2):
        raise UserError(f"didemo-mp4 failed on the demo sample: see {dest}")
    for name, seconds, _ in DIDEMO_ORIGINALS:
        info = probe(dest / f"{name}.mp4")
        table.add_row("didemo-mp4", f"{name}.mp4", f"{info.duration:.2f} s (original {seconds} s)")


def contact_sheet(root: Path, table: Table) -> None:
    """Frames at 2 fps of the transcoded demo videos (one ffmpeg each), then their sheet."""
    frames = root / "didemo" / "frames"
    for video in sorted((root / "didemo" / "videos").glob("*.mp4")):
        if (frames / video.stem).is_dir():
            continue
        with atomic_dir(frames / video.stem) as folder:
            pattern = str(folder).replace("%", "%%") + "/image_%05d.jpg"
            args = [find_ffmpeg(), "-nostdin", "-v", "error", "-i", str(video), "-vf", "fps=2"]
            subprocess.run([*args, pattern], check=True)
    sheet = root / "didemo" / "contact_sheet.png"
    stems = write_contact_sheet(frames, sheet, columns=4)
    table.add_row("contact-sheet", str(sheet), f"{len(stems)} videos x 4 frames")


STAGES = [probe_sample, transcode_didemo, contact_sheet]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyutils.demo", description=__doc__)
    parser.add_argument("--dir", default="demo", help="where the sample and outputs go")
    args = parser.parse_args(argv)
    console = Console()
    console.print(
        f"ffmpeg: {find_ffmpeg()}\nffprobe: {find_ffprobe() or 'none (probing with PyAV)'}"
    )
    root = build_demo_sample(Path(args.dir))
    table = Table(title=f"vlprep demo ({root})")
    for column in ("stage", "item", "result"):
        table.add_column(column)
    for stage in STAGES:
        stage(root, table)
    console.print(table)
    return 0


if __name__ == "__main__":
    run_cli(main)
