"""`make demo`: build a small generated sample and run every vlprep stage on it, end to end.

Each stage adds one row to the summary table; a stage that fails makes the demo exit non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pyutils.check import human_size
from pyutils.datasets import DATASETS, inspect, prepare
from pyutils.errors import UserError, run_cli
from pyutils.local_server import LocalServer
from pyutils.media import find_ffmpeg, find_ffprobe, probe
from pyutils.sample import DEMO_VIDEOS, build_caltech_archive, build_demo_sample


def probe_sample(root: Path, table: Table) -> None:
    for name, seconds in DEMO_VIDEOS:
        info = probe(root / "videos" / name)
        table.add_row(
            "probe",
            name,
            f"{info.duration:.2f} s (generated {seconds:.2f} s), {info.width}x{info.height}, "
            f"{info.fps:g} fps, {info.frame_count} frames",
        )


def download_caltech101(root: Path, table: Table) -> None:
    """The real download path (fetch.sh, verify, extract, place, check) against a local server
    serving a Caltech101-shaped archive built from the demo images."""
    archive = build_caltech_archive(
        root / "images", root / "served" / "101_ObjectCategories.tar.gz"
    )
    split = root / "annotations" / "caltech101" / "split_zhou_Caltech101.json"
    data = root / "DATA"
    shutil.rmtree(data, ignore_errors=True)  # the stage shows a first download every time
    served = {"101_ObjectCategories.tar.gz": archive.read_bytes(), "split.json": split.read_bytes()}
    with LocalServer(served, cut={"101_ObjectCategories.tar.gz"}) as server:
        overrides = {
            "CALTECH101_URL": server.url("101_ObjectCategories.tar.gz"),
            "CALTECH101_SHA256": hashlib.sha256(served["101_ObjectCategories.tar.gz"]).hexdigest(),
            "CALTECH101_SPLIT_URL": server.url("split.json"),
            "CALTECH101_SPLIT_SHA256": "none",
        }
        if prepare(DATASETS["caltech101"], data, overrides) != 0:
            raise UserError("demo: make caltech101 against the local server failed (see above)")
        resumed = server.ranges_seen("101_ObjectCategories.tar.gz")
    table.add_row(
        "download",
        "101_ObjectCategories.tar.gz",
        f"{archive.stat().st_size:,} bytes, cut half-way and resumed ({', '.join(resumed)}), "
        "sha256 verified",
    )
    found = inspect(DATASETS["caltech101"], data)
    table.add_row(
        "check",
        "caltech101",
        f"{found.status}: {found.files} files, {human_size(found.size)} in {data / 'caltech-101'}",
    )


STAGES = [probe_sample, download_caltech101]


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
