"""Finding videos: one walk of a folder tree, then dictionary look-ups (never a walk per item)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pyutils.core.atomic import is_temporary
from pyutils.core.errors import UserError

# Every list of video extensions vlprep uses, in one place (each consumer reads its own).
# AdaCLIP's split scripts look for `<id>.<ext>` in this order; the first found is the video's.
SPLIT_EXTENSIONS = ("mp4", "mkv", "webm", "avi")
# What the ActivityNet-QA reference script and LLaMA-Factory's users keep (ActivityNet's own).
QA_EXTENSIONS = ("mp4", "mkv", "webm")
# What `make frames` looks for by default.
VIDEO_EXTENSIONS = (*SPLIT_EXTENSIONS, "mov", "m4v", "mpg", "3gp", "wmv")
# What DiDeMo's originals (Flickr uploads) come as, beyond the usual containers.
# (`.vob`: DVD rips among them.)
ORIGINAL_EXTENSIONS = frozenset(
    {*VIDEO_EXTENSIONS, "mts", "m2ts", "3g2", "flv", "ogv", "dv", "vob"}
)


def require_folder(folder: str | os.PathLike[str], variable: str, what: str) -> Path:
    """`folder` as a Path if it is a folder; else one line naming `variable` and saying whether
    it is missing or a file."""
    root = Path(folder)
    if root.is_dir():
        return root
    state = "is a file, not a folder" if root.exists() else "no such folder"
    raise UserError(f"{variable}={folder}: {state}; set {variable}= to the folder of {what}")


def printable(path: str | os.PathLike[str]) -> str:
    """A path as text any JSON file or terminal carries: bytes that are not UTF-8 (a Latin-1 name
    from an old archive or a Windows copy) shown as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(path: str | os.PathLike[str]) -> bool:
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def not_utf8_reason(path: str | os.PathLike[str]) -> str:
    """Why a video whose path is not UTF-8 is refused (as that one item's failure): no JSON file
    vlprep writes or its readers take (manifests, LLaMA-Factory's and AdaCLIP's annotations) can
    name it, so its outputs could never be found by name."""
    latin1 = os.fsencode(Path(path).name).decode("latin-1")
    return (
        "its path is not UTF-8, so no JSON file (manifest, annotations) can name it; rename it, "
        f"e.g. to {latin1!r} (its bytes read as Latin-1: `convmv -f latin1 -t utf8 --notest`)"
    )


def find_videos(
    folder: str | os.PathLike[str], extensions: Iterable[str] = VIDEO_EXTENSIONS
) -> list[Path]:
    """Every video below `folder` (recursively), sorted; skips hidden files and temporaries."""
    root = require_folder(folder, "VIDEOS", "videos")
    wanted = {ext.lower().lstrip(".") for ext in extensions}
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or is_temporary(name):
                continue
            if name.rpartition(".")[2].lower() in wanted:
                found.append(Path(directory) / name)
    return sorted(found)


def index_by_stem(videos: Iterable[Path]) -> dict[str, Path]:
    """Map each video's stem to its path; two videos with one stem are an input error."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for video in videos:
        by_stem[video.stem].append(video)
    clashes = {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}
    if clashes:
        stem, paths = next(iter(sorted(clashes.items())))
        listed = ", ".join(str(p) for p in paths)
        raise UserError(
            f"{len(clashes)} video name(s) occur more than once (e.g. {stem!r}: {listed}); "
            "outputs are named by stem, so rename or remove the duplicates"
        )
    return {stem: paths[0] for stem, paths in by_stem.items()}
