"""Probing many videos once: parallel probes, remembered across runs in one JSON cache file.

A cached probe is reused only while the file's path, size and mtime_ns are unchanged, so an edited
or replaced video is probed again. The cache is a convenience, never an input: a missing, stale or
malformed cache file only costs a re-probe. Failed probes are not cached, so a rerun retries them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.errors import MediaError
from pyutils.core.media import VideoInfo, probe
from pyutils.core.parallel import run_parallel
from pyutils.core.report import log

CACHE_VERSION = 1
INFO_KEYS = frozenset(field.name for field in fields(VideoInfo))

Record = dict[str, Any]


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vlprep" / "probe-cache.json"


def cache_key(path: str) -> str:
    return os.path.abspath(path)


def probe_record(path: str) -> Record:
    """Probe one video into a plain record; never raises (a bad file gives an `error` record).

    Plain in, plain out, module level: it runs as-is in loky workers or as a Dask task.
    """
    record: Record = {"path": path}
    try:
        status = os.stat(path)
        record.update(size=status.st_size, mtime_ns=status.st_mtime_ns)
        record["info"] = probe(path).as_dict()
    except (MediaError, OSError) as exc:
        record["error"] = str(exc)
    return record


class ProbeCache:
    """Probe records by absolute path, valid while size and mtime_ns match the file on disk."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, Record] = {}
        self.changed = False
        if self.path is not None and self.path.is_file():
            self.entries = self._load(self.path)

    @staticmethod
    def _load(path: Path) -> dict[str, Record]:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log(f"probe cache {path}: unreadable ({exc}); probing again and rewriting it")
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        usable = {key: entry for key, entry in entries.items() if _usable(entry)}
        if len(usable) < len(entries):
            bad = len(entries) - len(usable)
            log(f"probe cache {path}: {bad} malformed entries; probing those again")
        return usable

    def get(self, path: str) -> Record | None:
        """The cached record for `path` if the file is unchanged since it was probed."""
        entry = self.entries.get(cache_key(path))
        if entry is None:
            return None
        try:
            status = os.stat(path)
        except OSError:
            return None
        if (status.st_size, status.st_mtime_ns) != (entry.get("size"), entry.get("mtime_ns")):
            return None
        return {"path": path, **entry}

    def put(self, record: Record) -> None:
        if "info" not in record:
            return
        entry = {k: record[k] for k in ("size", "mtime_ns", "info")}
        key = cache_key(record["path"])
        if self.entries.get(key) != entry:
            self.entries[key] = entry
            self.changed = True

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        payload = {"version": CACHE_VERSION, "entries": self.entries}
        atomic_write_bytes(self.path, orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
        self.changed = False


def _usable(entry: Any) -> bool:
    """A cache entry of the shape `put` writes (a file edited by hand or by another version may
    be of the right version and still not be one)."""
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(key), int) for key in ("size", "mtime_ns"))
        and isinstance(entry.get("info"), dict)
        and entry["info"].keys() == INFO_KEYS
    )


def probe_videos(
    paths: Iterable[str],
    cache: ProbeCache,
    jobs: int,
    backend: str = "loky",
    scheduler: str | None = None,
) -> Iterator[Record]:
    """Yield one probe record per distinct path: cache hits first, then fresh probes as they end.

    Misses are handed to the workers lazily and in the given order, so a caller that stops early
    (closes the generator) leaves the later videos unprobed. New records are saved to the cache
    whenever the generator ends, early or not.
    """
    misses = []
    for path in dict.fromkeys(paths):
        hit = cache.get(path)
        if hit is None:
            misses.append(path)
        else:
            yield hit
    folders = sorted({os.path.dirname(path) for path in misses})
    results = run_parallel(
        probe_record, iter(misses), jobs, backend, scheduler, shared_paths=folders
    )
    try:
        for record in results:
            cache.put(record)
            yield record
    finally:
        with warnings.catch_warnings():
            # joblib warns that the tasks cancelled by an early stop were wasted; that is the point.
            warnings.filterwarnings("ignore", message=".*tasks have been successfully executed")
            results.close()
        cache.save()
