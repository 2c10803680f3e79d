"""`make <dataset>`: download, verify, extract and place every part of a dataset, then check it.

    python -m pyutils.catalog.prepare caltech101 --data DATA    # what `make caltech101` runs

Each part is placed once (its stamp makes a rerun skip it); the dataset's completion stamp is
written when its layout checks complete, and a video dataset's missing videos are listed in
`missing.txt` beside its annotations.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pyutils.catalog.datasets import (
    COMPLETE_STAMP,
    DATASETS,
    MISSING_LIST,
    PLACED_STAMP,
    Dataset,
    Part,
    find_dataset,
    inspect,
)
from pyutils.catalog.layout import COMPLETE, Where
from pyutils.catalog.xtune import remove_caches
from pyutils.core.atomic import (
    atomic_file,
    atomic_write_text,
    remove_stale_temporaries,
    temporary_dir,
)
from pyutils.core.cli import Parser
from pyutils.core.errors import EXIT_USAGE, UserError, error_line, run_cli
from pyutils.core.jsonio import parse_json, write_json
from pyutils.core.report import FailureLog, log
from pyutils.fetch.download import DownloadError, fetch, read_registry, record_proven
from pyutils.fetch.extract import UnsafeArchive, extract_into


def _locate(tree: Path, candidates: tuple[str, ...]) -> Path | None:
    roots = [tree]
    tops = [p for p in tree.iterdir()]
    if len(tops) == 1 and tops[0].is_dir():
        roots.append(tops[0])  # archives often wrap everything in one folder
    for root in roots:
        for candidate in candidates:
            if (root / candidate).exists():
                return root / candidate
    return None


def _first_link(tree: Path) -> Path | None:
    """A symlink at or anywhere below `tree`, or None."""
    if tree.is_symlink():
        return tree
    folders = [tree] if tree.is_dir() else []
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    return Path(entry.path)
                if entry.is_dir():
                    folders.append(Path(entry.path))
    return None


def rewrite_json(
    part: Part, found: Mapping[str, Path | None], download: Path, root: Path
) -> list[str]:
    """Apply the part's rewrites to its extracted JSON files (before they are placed), keep the
    original of each changed one as downloads/original/<dataset folder>/<dest>; say what changed."""
    notes = []
    for dest, rewrite in part.rewrites:
        source = found[dest]
        assert source is not None, dest  # every place was located
        where = f"{dest} in {download}"
        parsed = parse_json(source.read_bytes(), where)
        try:
            data, changes = rewrite(parsed)
        except UserError as exc:  # names the record, not the file
            raise UserError(f"{where}: {exc}") from None
        if not changes:
            continue
        original = download.parent / "original" / root.name / dest
        original.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(original) as tmp:
            shutil.copyfile(source, tmp)
        write_json(source, data)
        what = "; ".join(f"{kind}: {count:,}" for kind, count in sorted(changes.items()))
        notes.append(f"{dest} rewritten for xtune ({what}); the original is {original}")
    return notes


def place_part(part: Part, download: Path, root: Path, largest: int = 0) -> list[str]:
    """Put a verified download's contents where the layout wants them, each by one rename
    (`largest`: the largest registry file's size, for the extraction's size cap), arranged and
    rewritten into the trainer's form first; returns what was changed."""
    if not part.places:
        with atomic_file(root / (part.dest or part.file)) as tmp:
            shutil.copyfile(download, tmp)
        return []
    with temporary_dir(root / part.file) as tree:
        extract_into(download, tree, largest)
        found = {place.dest: _locate(tree, place.candidates) for place in part.places}
        absent = [dest for dest, source in found.items() if source is None]
        if absent:
            wanted = next(p.candidates for p in part.places if p.dest == absent[0])
            raise DownloadError(f"{download}: none of {', '.join(wanted)} in the archive")
        notes = rewrite_json(part, found, download, root)
        if part.arrange:
            found, arranged = part.arrange(found, Path(tempfile.mkdtemp(dir=tree)))
            notes += arranged
        for dest, source in found.items():
            # Extraction refuses links; this guards the move itself: a relative link moved to
            # another depth (MSRVTT/videos/all -> ../../x placed as videos) points elsewhere.
            link = _first_link(source)
            if link is not None:
                where = link.relative_to(tree)
                raise UnsafeArchive(f"{download}: {where} is a symbolic link; not placed as {dest}")
        for dest, source in found.items():
            target = root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # left by a run killed before this part's stamp
            elif target.exists():
                target.unlink()
            os.replace(source, target)
    return notes


def prepare(
    dataset: Dataset,
    data: Path,
    overrides: Mapping[str, str] | None = None,
    videos: Path | None = None,
) -> int:
    """Download, verify and place every part not yet placed, then check (a video dataset's videos
    in `videos`, default its videos/ folder); return the exit status."""
    root = data / dataset.folder
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    failures = FailureLog(dataset.name, data / "downloads")
    largest = max((entry.size or 0 for entry in read_registry().values()), default=0)
    usage = changed = False
    for part in dataset.parts:
        stamp = root / f"{PLACED_STAMP}{part.file}"
        if stamp.exists():
            failures.ok()
            continue
        try:
            download = fetch(part.file, data / "downloads", var=part.var, overrides=overrides)
            for note in place_part(part, download, root, largest):
                log(f"{dataset.name}: {note}")
            record_proven(download)
        except (UserError, DownloadError) as exc:
            log(error_line(exc))
            failures.fail(part.file, str(exc))
            usage = usage or isinstance(exc, UserError)
            continue
        atomic_write_text(stamp, f"{part.file}\n")
        changed = True
        failures.ok()
    if changed and dataset.trainer == "CLIP":
        removed = remove_caches(root)
        if removed:
            log(f"{dataset.name}: removed xtune's caches of the data before: {', '.join(removed)}")
    status = failures.finish()
    if status:
        return EXIT_USAGE if usage else status
    inspection = inspect(dataset, data, Where(videos=videos))
    missing_list = root / MISSING_LIST
    if inspection.missing:
        atomic_write_text(missing_list, "".join(f"{item}\n" for item in inspection.missing))
    else:
        missing_list.unlink(missing_ok=True)
    if inspection.status != COMPLETE:
        listed = f" (all listed in {missing_list})" if inspection.missing else ""
        problems = "; ".join(inspection.problems)
        log(error_line(f"{dataset.name}: {inspection.status}: {problems}{listed}"))
        return 1
    atomic_write_text(root / COMPLETE_STAMP, f"{dataset.name}\n")
    log(f"{dataset.name}: complete in {root} ({inspection.files} files)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.catalog.prepare",
        description=__doc__,
        make_names={"data": "DATA", "videos": "VIDEOS"},
    )
    parser.add_argument("dataset", help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("--data", default="datasets", help="dataset root ($(DATA))")
    parser.add_argument("--videos", type=Path, help="video datasets: where the videos are")
    args = parser.parse_args(argv)
    return prepare(find_dataset(args.dataset), Path(args.data), videos=args.videos)


if __name__ == "__main__":
    run_cli(main)
