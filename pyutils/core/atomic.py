"""Atomic writes: every output is built under a temporary name in its final folder, then renamed.

A killed run therefore leaves only temporaries (names containing TEMP_MARK), never a partial file
or folder under its final name; `remove_stale_temporaries` clears them before a rerun.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".vlprep-tmp"

# mkstemp/mkdtemp create 0600/0700 entries; outputs get the modes a plain open()/mkdir() would.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def _temp_name(final: Path) -> str:
    return f".{final.name}{TEMP_MARK}-{os.getpid()}-"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file name beside `path` for a writer (Python, ffmpeg, a copy); on
    success it becomes `path`, on error it is removed."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_name(final), dir=final.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one."""
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it becomes `path`, on error it is removed.

    With `replace`, an existing `path` is swapped out only once the new folder is complete.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_name(final), dir=final.parent))
    try:
        tmp.chmod(DIR_MODE)
        yield tmp
        if replace and final.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_name(final), dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_temporary(path: str | os.PathLike[str]) -> bool:
    return TEMP_MARK in Path(path).name


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed runs left in `folder` (not recursive); return what was removed."""
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    for entry in root.iterdir():
        if is_temporary(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
