"""`make demo`: build a small generated sample and run every vlprep stage on it, end to end.

Each stage adds one row to the summary table; a stage that fails makes the demo exit non-zero.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pyutils import frames
from pyutils.errors import UserError, run_cli
from pyutils.media import find_ffmpeg, find_ffprobe, probe
from pyutils.sample import DEMO_VIDEOS, build_demo_sample


def probe_sample(root: Path, table: Table) -> None:
    for name, seconds in DEMO_VIDEOS:
        info = probe(root / "videos" / name)
        table.add_row(
            "probe",
            name,
            f"{info.duration:.2f} s (generated {seconds:.2f} s), {info.width}x{info.height}, "
            f"{info.fps:g} fps, {info.frame_count} frames",
        )


def extract_frames(root: Path, table: Table) -> None:
    """Every frame at native rate, then AdaCLIP's 8 uniform frames, each into its own folder."""
    for label, options in (("native", []), ("8 frames", ["--num-frames", "8"])):
        out = root / "frames" / label.replace(" ", "-")
        if frames.main([str(root / "videos"), str(out), *options]) != 0:
            raise UserError(f"frames ({label}) failed: see {out / frames.FAILURES}")
        for stem, record in sorted(frames.read_manifest(out / frames.MANIFEST).items()):
            table.add_row(
                f"frames ({label})", stem, f"{record['frames']} frames ({record['method']})"
            )


STAGES = [probe_sample, extract_frames]


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
