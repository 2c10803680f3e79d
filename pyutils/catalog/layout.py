"""What a complete dataset folder looks like, and how far a folder on disk is from it.

A dataset record (pyutils/catalog/datasets.py) names one of these layouts; `inspect(root)` walks
the folder once and says complete / partial / corrupt / missing, with what is missing. A video
dataset (`VideoFiles`) is also checked past its download: frames per video and AdaCLIP splits,
which live where `Where` says.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyutils.adaclip.splits import SplitRecipe
from pyutils.catalog import xtune
from pyutils.core.atomic import is_temporary
from pyutils.core.errors import UserError
from pyutils.core.jsonio import expect_type, read_json
from pyutils.core.video_index import SPLIT_EXTENSIONS
from pyutils.video.manifest import MANIFEST, frames_present, read_manifest

COMPLETE, PARTIAL, CORRUPT, MISSING = "complete", "partial", "corrupt", "missing"


@dataclass
class Inspection:
    status: str
    problems: list[str] = field(default_factory=list)
    files: int = 0
    size: int = 0
    missing: list[str] = field(default_factory=list)  # every referenced item not found

    def settled(self) -> Inspection:
        """A folder that was complete so far becomes partial once a problem is found."""
        if self.problems and self.status == COMPLETE:
            self.status = PARTIAL
        return self


@dataclass(frozen=True)
class Where:
    """Where a video dataset's videos and derived outputs are (None: inside the dataset folder).
    `annots` None means: check only what the download leaves, not frames and splits."""

    videos: Path | None = None
    frames: Path | None = None
    annots: Path | None = None


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


# ---- readers: the paths (or video ids) an annotation file references ------------------------


def coop_split_paths(split: Any) -> Iterable[str]:
    """CoOp split: {"train"|"val"|"test": [[relpath, label, classname], ...]}; Dassl's
    OxfordPets.read_split (xtune's Caltech101) opens os.path.join(image_dir, relpath)."""
    for rows in split.values():
        for row in rows:
            yield row[0]


def msrvtt_video_ids(data: Any) -> Iterable[str]:
    """CLIP4Clip's MSRVTT_data.json: {"videos": [{"video_id": ...}], "sentences": [...]}."""
    videos = expect_type(expect_type(data, dict, "top level")["videos"], list, "'videos'")
    for index, video in enumerate(videos):
        yield expect_type(video["video_id"], str, f"videos[{index}]: 'video_id'")


def didemo_video_ids(data: Any) -> Iterable[str]:
    """LocalizingMoments' <split>_data.json: [{"video": original file name, ...}]."""
    for index, record in enumerate(expect_type(data, list, "top level")):
        yield expect_type(record["video"], str, f"[{index}]: 'video'")


def activitynet_video_ids(data: Any) -> Iterable[str]:
    """ActivityNet Captions: {video_id: {duration, timestamps, sentences}}."""
    return iter(expect_type(data, dict, "top level"))


def _references(
    path: Path, reader: Callable[[Any], Iterable[str]], result: Inspection
) -> list[str]:
    """What the annotation file `path` references; unreadable or misshapen: `result` is corrupt."""
    try:
        data = read_json(path)
    except UserError as exc:
        result.problems.append(str(exc))
        result.status = CORRUPT
        return []
    try:
        return list(reader(data))
    except UserError as exc:  # a reader's own check, which names the record but not the file
        result.problems.append(f"{path}: {exc}")
    except (AttributeError, KeyError, TypeError, IndexError) as exc:
        result.problems.append(f"{path}: unexpected structure ({exc!r})")
    result.status = CORRUPT
    return []


def _first(items: list[str], what: str, total: int, where: Path) -> str:
    return f"{len(items)} of {total} {what} {where} (first: {items[0]})"


@dataclass(frozen=True)
class VideoFiles:
    """A video dataset: annotation files, `<id>.<ext>` for every annotated id in the video folder
    (the extensions AdaCLIP's splits look for), then `FRAMES/<id>/` per present video as the frames
    manifest records it, and the AdaCLIP split files in `ANNOTS/<splits>/`."""

    annotations: tuple[str, ...]  # every file the download must leave
    indexes: tuple[str, ...]  # the JSON ones among them that name the videos
    reader: Callable[[Any], Iterable[str]]
    splits: SplitRecipe  # AdaCLIP's splits of the dataset: their folder under ANNOTS and names
    videos_downloaded: bool = True  # False: videos come from a later step of the chain (DiDeMo)
    by_hand: str = ""  # what to do about missing videos

    def inspect(self, root: Path, where: Where | None = None) -> Inspection:
        where = where or Where()
        videos_dir = where.videos or root / "videos"
        result = Inspection(MISSING)
        ids: dict[str, None] = {}
        for name in self.annotations:
            path = root / name
            if not path.is_file():
                result.problems.append(f"missing {name}")
                continue
            result.files, result.size = result.files + 1, result.size + path.stat().st_size
            if name not in self.indexes:
                continue
            ids.update(dict.fromkeys(_references(path, self.reader, result)))
        sizes = _file_sizes(videos_dir)
        present = [i for i in ids if any(f"{i}.{ext}" in sizes for ext in SPLIT_EXTENSIONS)]
        result.files += len(present)
        result.size += sum(sizes.get(f"{i}.{e}", 0) for i in present for e in SPLIT_EXTENSIONS)
        if not result.files:
            return result
        if result.status == MISSING:
            result.status = COMPLETE
        if where.annots is not None or self.videos_downloaded:
            found = set(present)
            result.missing = [i for i in ids if i not in found]
            if result.missing:
                what = "annotated videos missing from"
                problem = _first(result.missing, what, len(ids), videos_dir)
                result.problems.append(problem + (f"; {self.by_hand}" if self.by_hand else ""))
        if where.annots is None:
            return result.settled()
        frames_dir = where.frames or root / "frames"
        manifest = read_manifest(frames_dir / MANIFEST)
        no_frames = [i for i in present if not frames_present(manifest.get(i), frames_dir / i)]
        if no_frames:
            result.problems.append(
                _first(no_frames, "videos have no frames in", len(present), frames_dir)
            )
        for split in self.splits.names:
            path = where.annots / self.splits.output_folder / f"{split}.json"
            if not path.is_file():
                result.problems.append(f"no AdaCLIP split {path}")
        return result.settled()


def _file_sizes(folder: Path) -> dict[str, int]:
    """name -> size of the files directly in `folder` (none if it does not exist)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.stat().st_size for e in entries if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return {}


Reader = Callable[[Any], Iterable[str]]


def placed_stamps(root: Path) -> list[Path]:
    """The stamps `make <dataset>` writes as it places each part: when the data last changed."""
    return sorted(root.glob(".vlprep-placed-*"))


@dataclass(frozen=True)
class ReferencedFiles:
    """Complete when the index files exist, each reads as its reader (the trainer's own rule)
    says, and every path they give exists as `os.path.join(<dataset folder>, folder, path)`: the
    exact path the trainer opens, never a file of the same name elsewhere."""

    indexes: tuple[tuple[str, Reader], ...]  # (file, what it references)
    folder: str = "."  # what the references are relative to, under the dataset folder
    what: str = "referenced files"

    def references(self, root: Path, result: Inspection) -> Iterable[tuple[str, str]]:
        """(reference, the path the trainer opens) for every reference of the index files."""
        for index, reader in self.indexes:
            path = root / index
            if not path.is_file():
                result.problems.append(f"missing {index}")
                continue
            for ref in _references(path, reader, result):
                yield ref, os.path.join(root, self.folder, ref)

    def inspect(self, root: Path, where: Where | None = None) -> Inspection:
        """`where` is for video layouts; everything an image layout needs is under `root`."""
        files, result = survey(root)
        if result.status == MISSING:
            return result
        prefix = str(root) + os.sep
        references = list(self.references(root, result))
        missing = result.missing = [
            ref
            for ref, path in references
            if not (path.startswith(prefix) and _relative(path, prefix) in files)
            and not os.path.isfile(path)
        ]
        if missing:
            first = f"(first: {missing[0]})"
            result.problems.append(
                f"{len(missing)} of {len(references)} {self.what} missing {first}"
            )
        data_files = [root / index for index, _ in self.indexes] + placed_stamps(root)
        stale = xtune.stale_cache_problem(root, data_files)
        if stale:
            result.problems.append(stale)
        return result.settled()


def _relative(path: str, prefix: str) -> str:
    return posixpath.normpath(path[len(prefix) :].replace(os.sep, "/"))


@dataclass(frozen=True)
class ClassFolders:
    """`<split>/<class>/<image>` folders with a class-name file ("<wnid> <name>" per line), judged
    by xtune's MiniImageNet (pyutils.catalog.xtune.class_folder_problems). There is no index of
    images, so completeness is the class folders and the images per class."""

    splits: tuple[str, ...]
    classes: int  # in every split
    classnames: str
    images_per_class: int  # in all splits together

    def problems(self, root: Path) -> list[str]:
        return xtune.class_folder_problems(
            root, self.splits, self.classes, self.classnames, self.images_per_class
        )

    def inspect(self, root: Path, where: Where | None = None) -> Inspection:
        _files, result = survey(root)
        if result.status == MISSING:
            return result
        result.problems += self.problems(root)
        stale = xtune.stale_cache_problem(root, [root / self.classnames, *placed_stamps(root)])
        if stale:
            result.problems.append(stale)
        return result.settled()
