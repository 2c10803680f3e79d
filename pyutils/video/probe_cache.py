"""Probing many videos once: parallel probes, remembered across runs in one JSON cache file.

A cached probe is reused only while the file's path, size and mtime_ns are unchanged, so an edited
or replaced video is probed again. The cache is a convenience, never an input: a missing, stale or
malformed cache file only costs a re-probe. Failed probes are not cached, so a rerun retries them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import orjson

from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.errors import MediaError
from pyutils.core.media import VideoInfo, probe
from pyutils.core.parallel import AUTO, ParallelOptions
from pyutils.core.report import log
from pyutils.core.stage import run_stage

# 2: VideoInfo.header_gaps; 3: codec and container (the ledger's); 4: frames an edit list hides
CACHE_VERSION = 4
INFO_KEYS = frozenset(field.name for field in fields(VideoInfo))

# Probes run on threads in this process: PyAV lets go of the GIL while it opens and demuxes a
# file, so 2 threads probe 1.4-1.9x as fast as one on 2 cores, and threads cost nothing to start
# where loky's worker processes take 0.3 s or more (each imports PyAV). Processes pay for
# themselves from about this many videos (bench/activitynet_qa.py measures both).
PROCESSES_FROM = 2000


@dataclass(frozen=True)
class Probe:
    """One video's probe: `info`, or the `error` that says why it is not a readable video."""

    path: str
    info: VideoInfo | None = None
    size: int | None = None
    mtime_ns: int | None = None
    error: str = ""

    @property
    def item(self) -> str:
        return self.path


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vlprep" / "probe-cache.json"


def cache_key(path: str) -> str:
    return os.path.abspath(path)


def probe_record(path: str) -> Probe:
    """Probe one video; never raises (a bad file gives a Probe with its error). The worker of
    `probe_videos`: it runs as-is in loky workers or as a Dask task."""
    try:
        status = os.stat(path)
        return Probe(path, probe(path), status.st_size, status.st_mtime_ns)
    except (MediaError, OSError) as exc:
        return Probe(path, error=str(exc))


class ProbeCache:
    """Probe records by absolute path, valid while size and mtime_ns match the file on disk."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        if self.path is not None and self.path.is_file():
            self.entries = self._load(self.path)

    @staticmethod
    def _load(path: Path) -> dict[str, dict[str, Any]]:
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

    def get(self, path: str) -> Probe | None:
        """The cached probe of `path` if the file is unchanged since it was probed."""
        entry = self.entries.get(cache_key(path))
        if entry is None:
            return None
        try:
            status = os.stat(path)
            if (status.st_size, status.st_mtime_ns) != (entry["size"], entry["mtime_ns"]):
                return None
            return Probe(path, VideoInfo(**entry["info"]), entry["size"], entry["mtime_ns"])
        except (OSError, KeyError, TypeError):  # gone, or an entry of another shape: probe again
            return None

    def put(self, result: Probe) -> None:
        if result.info is None:
            return
        entry = {"size": result.size, "mtime_ns": result.mtime_ns, "info": result.info.as_dict()}
        key = cache_key(result.path)
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


def probing_batches(
    parallel: ParallelOptions, misses: list[str]
) -> list[tuple[list[str], ParallelOptions]]:
    """Where the probes run: as asked, unless the stage left it to us (AUTO); then the first
    PROCESSES_FROM on threads in this process and the rest, if any, on loky worker processes,
    which are started only once a batch is big enough to pay for them (and a caller that stops
    early, N pairs found, has not paid for them)."""
    if parallel.backend != AUTO:
        return [(misses, parallel)]
    threads = replace(parallel, backend="threading")
    rest = replace(parallel, backend="loky" if parallel.jobs > 1 else "threading")
    batches = [(misses[:PROCESSES_FROM], threads), (misses[PROCESSES_FROM:], rest)]
    return [(batch, options) for batch, options in batches if batch]


def describe_probing(parallel: ParallelOptions) -> str:
    """How the probes run, for the line that opens the probing."""
    import av  # the probes that follow need it anyway

    if parallel.backend == "dask":
        where = parallel.where().removeprefix("on ")
    elif parallel.jobs == 1:
        where = "this process"
    elif parallel.backend == "loky":
        where = f"{parallel.jobs} worker processes (loky)"
    else:
        where = f"{parallel.jobs} threads of this process"
    return f"with PyAV {av.__version__} (no ffprobe, no process per video) on {where}"


def probe_videos(
    paths: Iterable[str], cache: ProbeCache, parallel: ParallelOptions
) -> Iterator[Probe]:
    """Yield one probe per distinct path: cache hits first, then fresh probes as they end.

    Misses are handed to the workers lazily and in the given order, so a caller that stops early
    (closes the generator) leaves the later videos unprobed. New probes are saved to the cache
    whenever the generator ends, early or not.
    """
    hits, misses = [], []
    for path in dict.fromkeys(paths):
        hit = cache.get(path)
        if hit is None:
            misses.append(path)
        else:
            hits.append(hit)
    if hits:
        log(f"probing videos: {len(hits)} in the probe cache, {len(misses)} to probe")
    yield from hits
    try:
        for batch, options in probing_batches(parallel, misses):
            log(f"probing videos: {len(batch)} to probe, {describe_probing(options)}")
            folders = sorted({os.path.dirname(path) for path in batch})
            probes = run_stage("probing videos", probe_record, batch, options, shared_paths=folders)
            try:
                for result in probes:
                    cache.put(result)
                    yield result
            finally:
                probes.close()
    finally:
        cache.save()
