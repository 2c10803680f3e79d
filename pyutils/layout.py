"""What a complete dataset folder looks like, and how far a folder on disk is from it.

A dataset record (pyutils/datasets.py) names one of these layouts; `inspect(root)` walks the folder
once and says complete / partial / corrupt / missing, with what is missing. A video dataset adds a
reader for its annotation format and reuses `ReferencedFiles`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyutils.atomic import is_temporary
from pyutils.errors import UserError
from pyutils.jsonio import read_json

COMPLETE, PARTIAL, CORRUPT, MISSING = "complete", "partial", "corrupt", "missing"


@dataclass
class Inspection:
    status: str
    problems: list[str] = field(default_factory=list)
    files: int = 0
    size: int = 0

    def settled(self) -> Inspection:
        """A folder that was complete so far becomes partial once a problem is found."""
        if self.problems and self.status == COMPLETE:
            self.status = PARTIAL
        return self


def survey(root: Path) -> tuple[set[str], Inspection]:
    """Every file under `root` as a relative posix path (stamps and temporaries left out), and a
    first inspection (missing if there is nothing): one walk answers every existence question."""
    found, size = set(), 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not is_temporary(d)]
        rel = Path(folder).relative_to(root).as_posix()
        for name in names:
            if name.startswith(".vlprep") or is_temporary(name):
                continue
            found.add(name if rel == "." else f"{rel}/{name}")
            size += os.lstat(os.path.join(folder, name)).st_size
    return found, Inspection(COMPLETE if found else MISSING, files=len(found), size=size)


# ---- readers: the paths an annotation file references ----------------------------------------


def coop_split_paths(split: Any) -> Iterable[str]:
    """CoOp split: {"train"|"val"|"test": [[relpath, label, classname], ...]}."""
    for rows in split.values():
        for row in rows:
            yield row[0]


def caption_image_paths(data: Any) -> Iterable[str]:
    """Caption JSON: a list of {"image": path, ...} (BLIP/ALBEF) or COCO's {"images": [...]}."""
    records = data.get("images", []) if isinstance(data, dict) else data
    for record in records:
        yield record.get("image") or record["file_name"]


@dataclass(frozen=True)
class ReferencedFiles:
    """Complete when the index files exist and every file they reference exists.

    A reference is looked up under each `search` folder as written, then by its base name (the
    Flickr JSONs say `flickr30k-images/x.jpg`, some copies put images elsewhere)."""

    indexes: tuple[str, ...]
    reader: Callable[[Any], Iterable[str]]
    search: tuple[str, ...] = (".",)
    what: str = "referenced files"

    def inspect(self, root: Path) -> Inspection:
        files, result = survey(root)
        if result.status == MISSING:
            return result
        references: list[str] = []
        for index in self.indexes:
            if index not in files:
                result.problems.append(f"missing {index}")
                continue
            try:
                references += list(self.reader(read_json(root / index)))
            except UserError as exc:
                result.status = CORRUPT
                result.problems.append(str(exc))
            except (AttributeError, KeyError, TypeError, IndexError) as exc:
                result.status = CORRUPT
                result.problems.append(f"{root / index}: unexpected structure ({exc!r})")
        missing = [ref for ref in references if not self._found(ref, files)]
        if missing:
            first = f"(first: {missing[0]})"
            result.problems.append(
                f"{len(missing)} of {len(references)} {self.what} missing {first}"
            )
        return result.settled()

    def _found(self, ref: str, files: set[str]) -> bool:
        base = posixpath.basename(ref)
        for folder in self.search:
            for candidate in (ref, base):
                if posixpath.normpath(posixpath.join(folder, candidate)) in files:
                    return True
        return False


@dataclass(frozen=True)
class ClassFolders:
    """`<split>/<class>/<image>` folders with a class-name file ("<wnid> <name>" per line).
    There is no index of images, so completeness is the class count and images per class."""

    splits: dict[str, int]  # split folder -> number of classes
    classnames: str
    images_per_class: int

    def inspect(self, root: Path) -> Inspection:
        files, result = survey(root)
        if result.status == MISSING:
            return result
        if self.classnames not in files:
            result.problems.append(f"missing {self.classnames}")
        per_class: dict[tuple[str, str], int] = {}
        for path in files:
            parts = path.split("/")
            if len(parts) == 3 and parts[0] in self.splits:
                per_class[(parts[0], parts[1])] = per_class.get((parts[0], parts[1]), 0) + 1
        for split, expected in self.splits.items():
            classes = sorted(c for s, c in per_class if s == split)
            if len(classes) != expected:
                result.problems.append(f"{split}/: {len(classes)} classes, expected {expected}")
            short = [c for c in classes if per_class[(split, c)] < self.images_per_class]
            if short:
                result.problems.append(
                    f"{split}/: {len(short)} classes with fewer than {self.images_per_class} "
                    f"images (first: {short[0]})"
                )
        return result.settled()
