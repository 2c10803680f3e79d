"""The frames manifest, `FRAMES/frames_manifest.jsonl`: per video, what was extracted, from
which file, with which options. Read by the frames stages (`make frames`, and the pre-sampled
frames of `make activitynet_qa PRESAMPLE=1`: what is done) and by the catalogue (`make check`:
does every video have its frames), so it lives apart from them and imports only the core. Also
the bookkeeping of a frames folder those stages share: one writer at a time (`exclusive`), and
each finished video journalled at once (`journal`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import orjson

from pyutils.core.atomic import TEMP_MARK, remove_stale_temporaries
from pyutils.core.errors import UserError
from pyutils.core.jsonio import json_line, write_jsonl
from pyutils.core.report import failure_list, log, plural

MANIFEST = "frames_manifest.jsonl"
LOCK = ".frames.lock"

Result = TypeVar("Result")


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Latest record per stem. The manifest is vlprep's own cache: an unreadable line (a run
    killed mid-write, a hand edit) is skipped with a warning, and its video is simply redone."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            records[record["stem"]] = record
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log(f"frames: {path}:{number}: unreadable manifest line skipped (its video is redone)")
    return records


def write_manifest(path: Path, manifest: dict[str, dict[str, Any]]) -> None:
    write_jsonl(path, (manifest[stem] for stem in sorted(manifest)))


def is_done(
    record: dict[str, Any] | None, video: Path, options: dict[str, Any], folder: Path
) -> bool:
    """Done means: extracted successfully, from this same file, with these options, and the
    folder still holds that many frames (a folder that merely exists proves nothing)."""
    if not record or record.get("status") != "ok" or record.get("options") != options:
        return False
    if {k: record.get(k) for k in ("source_size", "source_mtime_ns")} != fingerprint(video):
        return False
    return frames_present(record, folder)


def refuse_other_options(
    manifest: dict[str, dict[str, Any]],
    stems: Iterable[str],
    options: dict[str, Any],
    folder: Path,
    names: dict[str, str],
    elsewhere: str,
) -> None:
    """Refuse (UserError) to replace frames the folder holds for `stems` that were made with
    other options: a forgotten FPS= would otherwise throw away a native extraction without a
    word. Says the options held and asked, by their Make variables (`names`: option -> variable),
    and what to set to go on (REPLACE=1, or `elsewhere`: how to name another folder)."""
    held = Counter(
        tuple(sorted(record["options"].items()))
        for stem in stems
        if (record := manifest.get(stem))
        and record.get("options") != options
        and frames_present(record, folder / stem)
    )
    if not held:
        return
    (other, count), *more = held.most_common()
    # Only the options that differ, each by its Make variable (its flag for the rest).
    differ = [k for k in names if dict(other).get(k) != options.get(k)] or list(names)

    def said(values: dict[str, Any]) -> str:
        return " ".join(
            f"{names[k]}={'' if values.get(k) is None else values.get(k)}" for k in differ
        )

    also = f" (and {sum(c for _, c in more)} with other options)" if more else ""
    raise UserError(
        f"{folder} holds frames of {plural(count, 'video')} made with {said(dict(other))}{also};"
        f" asked for {said(options)}: set REPLACE=1 (--replace) to replace them, or {elsewhere} "
        "to another folder"
    )


def frames_present(record: dict[str, Any] | None, folder: Path) -> bool:
    """The manifest says the video was extracted, and its folder still holds exactly what was
    written: the same files with the same sizes and times (a frame emptied, overwritten, deleted
    or joined by a stray file redoes the video; a count alone would not see it)."""
    if not record or record.get("status") != "ok":
        return False
    digest = folder_digest(folder)
    if digest is None:
        return False
    if "folder_digest" in record:
        return digest == record["folder_digest"]
    return len(os.listdir(folder)) == record.get("frames")  # a manifest from before digests


def folder_digest(folder: Path) -> str | None:
    """A short digest of every file's name, size and mtime in `folder`; None if it is gone.
    Costs one stat per frame, no reading: cheap next to decoding."""
    try:
        with os.scandir(folder) as entries:
            listing = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries)
    except OSError:
        return None
    return hashlib.blake2b(repr(listing).encode(), digest_size=8).hexdigest()


def fingerprint(video: Path) -> dict[str, int | None]:
    try:
        stat = video.stat()
    except OSError:
        return {"source_size": None, "source_mtime_ns": None}
    return {"source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


@contextmanager
def exclusive(frames_dir: Path, stage: str = "frames") -> Iterator[None]:
    """Hold `frames_dir` for one run, then remove what an interrupted run left there. Two runs
    into one folder would remove each other's temporaries: the second is refused. The lock dies
    with its process, so a killed run never blocks the next one."""
    with open(frames_dir / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{frames_dir}: another frame extraction is writing here") from None
        for stale in remove_stale_temporaries(frames_dir):
            log(f"{stage}: removed {stale.name}, left by an interrupted run")
        yield


def journal(
    results: Iterable[Result],
    frames_dir: Path,
    manifest: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> Iterator[Result]:
    """Yield each result (a dataclass with `stem`, `source` and `status`) after recording it,
    with its folder's digest when it worked: appended to the manifest at once (a kill loses at
    most the line being written, and its video is then simply redone), and kept in `manifest`;
    the whole manifest is rewritten compactly at the end."""
    with open(frames_dir / MANIFEST, "ab") as lines:
        for result in results:
            record = {**asdict(result), **fingerprint(Path(result.source)), "options": options}
            if result.status == "ok":
                record["folder_digest"] = folder_digest(frames_dir / result.stem)
            lines.write(json_line(record))
            lines.flush()
            manifest[record["stem"]] = record
            yield result
    write_manifest(frames_dir / MANIFEST, manifest)


def frames_in_progress(frames_dir: Path) -> int:
    """The frames the running extractions have written so far: the files in the folder's
    temporaries (one per video being extracted, parts in sub-folders). One listing of the
    folder and of each temporary: cheap enough to ask twice a second."""
    count = 0
    try:
        with os.scandir(frames_dir) as entries:
            temporaries = [e.path for e in entries if TEMP_MARK in e.name and e.is_dir()]
    except OSError:
        return 0
    for temporary in temporaries:
        for _, _, files in os.walk(temporary):  # gone mid-walk when renamed: counts nothing
            count += len(files)
    return count


class FramesGauge:
    """Progress in frames for a run into `frames_dir` (a `core.report.Gauge`): the frames of the
    videos finished (`add` each one's count) and of those being extracted."""

    noun = "frames"

    def __init__(self, frames_dir: Path) -> None:
        self.frames_dir = frames_dir
        self.finished = 0

    def add(self, frames: int) -> None:
        self.finished += frames

    def read(self) -> int:
        return self.finished + frames_in_progress(self.frames_dir)


def refuse_reserved_stems(videos: dict[str, Path], stage: str, where: str) -> None:
    """A video whose frame folder would take the name of one of the stage's own files (the
    manifest, the failure list, the lock) is an input error, said before any work."""
    reserved = {MANIFEST, failure_list(stage, "").name, LOCK} & set(videos)
    if reserved:
        stem = reserved.pop()
        raise UserError(
            f"{videos[stem]}: its frames would go to {where}/{stem}, the name of the stage's own "
            "file; rename the video"
        )
