"""`make check`: is each dataset on disk complete? One table row per dataset.

    python -m pyutils.catalog.check --data DATA [--annots ANNOTS] [DATASET ...]

A video dataset is checked to the end of its `make <dataset>-ready` chain: a video per annotated
id, frames per video ($(DATA)/<dataset>/frames, from its manifest), AdaCLIP splits in ANNOTS.

Exit status 0 when every dataset that is present is complete (absent ones are only reported),
1 when one is partial or corrupt.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pyutils.catalog.datasets import (
    COMPLETE_STAMP,
    DATASETS,
    PLACED_STAMP,
    Dataset,
    find_dataset,
    inspect,
)
from pyutils.catalog.layout import COMPLETE, MISSING, Inspection, Where
from pyutils.core.errors import EXIT_ITEM_FAILURES, run_cli

DEFAULT_ANNOTS = Path("annots")


def fix_command(dataset: Dataset, data: Path, inspection: Inspection, annots: Path) -> str:
    if inspection.status == COMPLETE:
        return ""
    make = f"make {dataset.ready or dataset.name} DATA={shlex.quote(str(data))}"
    if annots != DEFAULT_ANNOTS and dataset.chain:
        make += f" ANNOTS={shlex.quote(str(annots))}"
    if inspection.status == MISSING:
        return make
    root = data / dataset.folder
    if dataset.chain:
        # The chain's steps redo only what is missing once their stamps are gone.
        steps = dataset.chain.steps
        stamps = [root / COMPLETE_STAMP]
        stamps += [dataset.step_folder(s, data, annots) / s.stamp(dataset.name) for s in steps]
        stamps = [stamp for stamp in stamps if stamp.exists()] or stamps[:1]
        return f"rm -f {' '.join(shlex.quote(str(s)) for s in stamps)} && {make}"
    # Removing the stamps re-places every part from the verified archives in downloads/.
    quoted = shlex.quote(str(root))
    return f"rm -f {quoted}/{PLACED_STAMP}* {quoted}/{COMPLETE_STAMP} && {make}"


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _what_is_missing(dataset: Dataset, found: Inspection) -> str:
    if found.status == MISSING:  # a list of every absent file says nothing more than this
        return f"nothing on disk yet: {dataset.summary}"
    return "; ".join(found.problems)


def check(names: list[str], data: Path, annots: Path = DEFAULT_ANNOTS) -> tuple[Table, int]:
    """(table, number of datasets present but not complete)."""
    table = Table(title=f"datasets in {data}")
    for column in ("dataset", "status", "files", "size", "what is missing", "fix"):
        table.add_column(column, overflow="fold")
    bad = 0
    for dataset in [find_dataset(n) for n in names] or DATASETS.values():
        found = inspect(dataset, data, Where(annots=annots))
        bad += found.status not in (COMPLETE, MISSING)
        table.add_row(
            dataset.name,
            found.status,
            f"{found.files:,}",
            human_size(found.size),
            _what_is_missing(dataset, found),
            fix_command(dataset, data, found, annots),
        )
    return table, bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyutils.catalog.check", description=__doc__)
    parser.add_argument("datasets", nargs="*", help=f"default: all of {', '.join(DATASETS)}")
    parser.add_argument("--data", default="datasets", help="dataset root ($(DATA))")
    parser.add_argument(
        "--annots", type=Path, default=DEFAULT_ANNOTS, help="AdaCLIP splits folder ($(ANNOTS))"
    )
    args = parser.parse_args(argv)
    table, bad = check(args.datasets, Path(args.data), args.annots)
    Console().print(table)
    return EXIT_ITEM_FAILURES if bad else 0


if __name__ == "__main__":
    run_cli(main)
