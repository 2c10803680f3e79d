"""The frames manifest, `FRAMES/frames_manifest.jsonl`: per video, what was extracted, from
which file, with which options. Read by the frames stage (what is done) and by the catalogue
(`make check`: does every video have its frames), so it lives
apart from both and imports only the core.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from pyutils.core.jsonio import write_jsonl
from pyutils.core.report import log

MANIFEST = "frames_manifest.jsonl"


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
