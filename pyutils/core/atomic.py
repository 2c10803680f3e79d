"""Atomic writes: every output is built under a temporary name in its final folder, then renamed.

A killed run therefore leaves only temporaries (names containing TEMP_MARK), never a partial file
or folder under its final name; `remove_stale_temporaries` clears them before a rerun. The writer
of a temporary holds an flock on it while it works (released when the writer dies, however it
dies), so a run never removes the temporaries of another run still working in the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pyutils.core.errors import UserError

TEMP_MARK = ".vlprep-tmp"

# mkstemp/mkdtemp create 0600/0700 entries; outputs get the modes a plain open()/mkdir() would.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


# The longest file name most file systems take (ext4, xfs, btrfs: NAME_MAX bytes).
NAME_MAX = 255
RANDOM_CHARS = 8  # what mkstemp/mkdtemp add after the prefix


def temporary_name(name: str, tail: str, room: int = 0) -> str:
    """`.<name><TEMP_MARK><tail>`, with `room` bytes left for what the caller adds, in at most
    NAME_MAX bytes: the name of a temporary beside the file `name`. A name too long for that
    (a 240-byte video name is valid, its temporary would not be) is cut at a character boundary
    and given a digest of the whole, so that two long names sharing their start still differ
    (a partial download resumes from its own file only)."""
    budget = NAME_MAX - room - len(f".{TEMP_MARK}{tail}".encode())
    encoded = os.fsencode(name)
    if len(encoded) > budget:
        digest = hashlib.blake2b(encoded, digest_size=4).hexdigest()
        kept = encoded[: budget - len(digest) - 1].decode("utf-8", "ignore")
        name = f"{kept}~{digest}"
    return f".{name}{TEMP_MARK}{tail}"


def _temp_name(final: Path) -> str:
    return temporary_name(final.name, f"-{os.getpid()}-", RANDOM_CHARS)


def _owned_temporary(final: Path, folder: bool = False) -> tuple[int, Path]:
    """Create a temporary file (or folder) beside `final` and take its flock, which says it is in
    use; return (its locked descriptor, its path). A concurrent clean-up can remove it in the
    instant before the lock: then the path is no longer ours, and another is made."""
    final.parent.mkdir(parents=True, exist_ok=True)
    while True:
        if folder:
            tmp = Path(tempfile.mkdtemp(prefix=_temp_name(final), dir=final.parent))
            try:
                fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue
        else:
            fd, name = tempfile.mkstemp(prefix=_temp_name(final), dir=final.parent)
            tmp = Path(name)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """One process at a time in the block: an flock on `path` (created if absent, kept)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def write_target(path: str | os.PathLike[str]) -> Path:
    """The file that writing `path` must replace: a symlink's target, so that a linked output
    (LLaMA-Factory's own data/dataset_info.json linked into OUT) stays a link and is updated."""
    final = Path(path)
    return Path(os.path.realpath(final)) if final.is_symlink() else final


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file name beside `path` (beside its target if `path` is a symlink) for a
    writer (Python, ffmpeg, a copy); on success it becomes that file, on error it is removed."""
    final = write_target(path)
    fd, tmp = _owned_temporary(final)
    try:
        os.fchmod(fd, FILE_MODE)
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one."""
    with disk_full_is_user_error(str(path)), atomic_file(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_if_changed(path: str | os.PathLike[str], data: bytes, variable: str) -> bool:
    """`atomic_write_bytes` unless `path` already holds `data` (a rerun leaves its mtime, and
    whatever watches it, alone); True when written. A path that cannot be written is a user
    error naming the Make `variable` that chose it."""
    try:
        if Path(path).read_bytes() == data:
            return False
    except OSError:
        pass
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"{variable}: cannot write {path} ({exc.strerror})") from None
    return True


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def disk_full_is_user_error(what: str) -> Iterator[None]:
    """A full disk is one line naming what was being written, not a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(f"{what}: disk full ({exc.strerror}); free some space and rerun") from None


@contextlib.contextmanager
def temporary_dir(beside: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder beside `beside` (named after it), owned by this process for the block
    and removed, with whatever is still in it, when the block ends."""
    fd, tmp = _owned_temporary(Path(beside), folder=True)
    try:
        tmp.chmod(DIR_MODE)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it becomes `path`, on error it is removed.

    With `replace`, an existing `path` is swapped out only once the new folder is complete.
    """
    final = Path(path)
    with temporary_dir(final) as tmp:
        yield tmp
        if replace and final.exists():
            with temporary_dir(final) as old:
                os.replace(final, old / final.name)
                os.replace(tmp, final)
        else:
            os.replace(tmp, final)


def check_writable_folder(
    path: str | os.PathLike[str], variable: str, where: str | None = None
) -> None:
    """Refuse, in one line naming the Make `variable` and the path, an output folder that
    cannot be written into, before any work is done: a file or a path under a file, a dangling
    link, a folder that permission or a read-only mount keeps closed. Tried by creating (and
    removing) a temporary in the folder, or in the nearest existing folder above it when it does
    not exist yet, so that root's rights, ACLs, immutable flags and read-only mounts all answer
    as they will for the real outputs. Creates nothing that stays. `where` replaces the message's
    `VARIABLE=path` when the folder is not what the user typed but follows from it."""
    folder = Path(path)
    where = where or f"{variable}={path}"
    existing = folder
    while not existing.is_dir():
        if existing.is_symlink() and not existing.exists():
            raise UserError(
                f"{where}: {existing} is a link to {os.readlink(existing)}, which does not exist; "
                "remove the link or make its target"
            )
        if existing.exists():
            what = "is a file" if existing == folder else f"is under {existing}, which is a file"
            raise UserError(f"{where}: {what}, not a folder; choose a folder for {variable}")
        if existing == existing.parent:
            break
        existing = existing.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=f".probe{TEMP_MARK}-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        inside = "" if existing == folder else f" (nor can {folder} be made in {existing})"
        raise UserError(
            f"{where}: cannot write there{inside}: {reason}; choose a folder you can write to "
            "or fix its permissions"
        ) from None


def is_temporary(path: str | os.PathLike[str]) -> bool:
    return TEMP_MARK in Path(path).name


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove what dead runs left in `folder` (not recursive); return what was removed. A
    temporary whose writer still holds its flock is left alone."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return [entry for entry in root.iterdir() if is_temporary(entry) and _remove_orphan(entry)]


def _remove_orphan(entry: Path) -> bool:
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # gone already (another run cleaned it), or not something we create
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # its writer is at work
        os.close(fd)
        return False
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True
