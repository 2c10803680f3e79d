"""Safe extraction of zip and tar archives (any compression tarfile reads).

Every member is checked before anything is written, and one bad member refuses the whole archive:
a path leaving the target (`../`, absolute), any symbolic or hard link (the datasets need none,
and a chain of links that each point "inside" can still lead out: CVE-2025-4517), a device or
fifo, a name that is both a file and a folder or that is there twice (which one would be the
file?), or a declared size that is absurd (a decompression bomb) or larger than the free space.
An encrypted zip is refused in one line saying what to do; a Deflate64 zip (what Windows writes
for big archives, which Python's zipfile cannot read) is decoded with `inflate64`. Extraction
goes into a temporary folder renamed into place when complete, with a stamp file for `make`.

    python -m pyutils.fetch.extract ARCHIVE DEST     # DEST/.vlprep-extracted marks completion
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from pyutils.core.atomic import atomic_dir, atomic_write_text, disk_full_is_user_error
from pyutils.core.errors import UserError, run_cli
from pyutils.core.report import log, track

STAMP = ".vlprep-extracted"
# An archive is a bomb when its contents are over MAX_RATIO times its size AND over MAX_EXCESS
# bytes more than the largest registry file; real datasets (JPEG, MP4, JSON) stay far below both.
MAX_RATIO = 100
MAX_EXCESS = 1 << 30


class UnsafeArchive(UserError):
    """An archive with a member that must not be written (outside the target, a link, a device)."""


# Zip's compression method 9 (APPNOTE 4.4.5), "enhanced deflate": Deflate with a 64 KiB window.
DEFLATE64 = 9
ENCRYPTED = 0x1  # general purpose bit 0
CHUNK = 1 << 20


class Member(NamedTuple):
    name: str  # normalised relative path
    is_dir: bool
    size: int
    info: zipfile.ZipInfo | tarfile.TarInfo


def archive_kind(path: Path) -> str | None:
    """'zip' or 'tar' from the file's content (names lie: Kaggle and Drive rename files)."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        with tarfile.open(path, "r:*") as archive:
            return "tar" if archive.next() is not None else None
    except (tarfile.TarError, OSError, EOFError):
        return None


def _checked_name(name: str, archive: Path) -> str:
    """The member's normalised relative path, or UnsafeArchive if it would leave the target."""
    unix = name.replace("\\", "/")
    parts = [part for part in unix.split("/") if part not in ("", ".")]
    if unix.startswith("/") or (parts and parts[0].endswith(":")) or ".." in parts:
        raise UnsafeArchive(f"{archive}: member {name!r} would be written outside the target")
    return "/".join(parts)


def _refuse_link(archive: Path, name: str, kind: str, target: str) -> UnsafeArchive:
    shown = target if len(target) <= 80 else target[:77] + "..."
    return UnsafeArchive(
        f"{archive}: member {name!r} is a {kind} link (-> {shown!r}); archives with links are "
        "refused (no dataset needs one, and links can lead outside the target)"
    )


def _zip_member(info: zipfile.ZipInfo, archive: Path, zipped: zipfile.ZipFile) -> Member:
    name = _checked_name(info.filename, archive)
    if info.flag_bits & ENCRYPTED:
        raise UserError(
            f"{archive}: member {info.filename!r} is encrypted (the zip has a password); "
            f"extract it yourself with the password (`unzip {archive}` or `7z x {archive}`), "
            "zip the result again without one in its place, and rerun"
        )
    # Unix zips keep the mode in the high 16 bits; unzip (not Python) recreates these as links.
    if stat.S_ISLNK(info.external_attr >> 16):
        with zipped.open(info) as link:  # its data is the target path; a short look is enough
            target = link.read(256).decode("utf-8", "replace")
        raise _refuse_link(archive, info.filename, "symbolic", target)
    return Member(name, info.is_dir(), info.file_size, info)


def _tar_member(member: tarfile.TarInfo, archive: Path) -> Member:
    name = _checked_name(member.name, archive)
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        raise _refuse_link(archive, member.name, kind, member.linkname)
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"{archive}: member {member.name!r} is a device or fifo")
    return Member(name, member.isdir(), member.size if member.isfile() else 0, member)


def _check_names(members: list[Member], archive: Path) -> None:
    """A name that is a file and also a folder (explicitly or above another member), or a file
    twice (a zip or a tar appended to: which copy is the file?), cannot be extracted as the
    archive means it; refuse it before writing anything."""
    seen: set[str] = set()
    for member in members:
        if not member.is_dir and member.name in seen:
            raise UnsafeArchive(
                f"{archive}: member {member.name!r} is in the archive twice; which copy is the "
                "file cannot be told: fetch a clean copy of the archive"
            )
        seen.add(member.name)
    folders = {m.name for m in members if m.is_dir}
    for member in members:
        parts = member.name.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    both = next((m.name for m in members if not m.is_dir and m.name in folders), None)
    if both is not None:
        raise UnsafeArchive(f"{archive}: member {both!r} is both a file and a folder")


@contextlib.contextmanager
def _checked_members(
    archive: Path,
) -> Iterator[tuple[zipfile.ZipFile | tarfile.TarFile, list[Member]]]:
    """The open archive and its members, every one checked (UnsafeArchive on the first bad one);
    a damaged archive is one line saying so."""
    try:
        with _opened(archive) as (opened, members):
            _check_names(members, archive)
            yield opened, members
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise UserError(f"{archive}: damaged archive ({exc}); delete it, fetch it again") from None
    except NotImplementedError as exc:  # a zip method neither zipfile nor Deflate64 decoding reads
        raise UserError(
            f"{archive}: {exc}; extract it with a tool that can (7z x), zip it again with "
            "ordinary Deflate in its place, and rerun"
        ) from None


@contextlib.contextmanager
def _opened(archive: Path) -> Iterator[tuple[zipfile.ZipFile | tarfile.TarFile, list[Member]]]:
    kind = archive_kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zipped:
            yield zipped, [_zip_member(info, archive, zipped) for info in zipped.infolist()]
    elif kind == "tar":
        with tarfile.open(archive, "r:*") as tarred:
            yield tarred, [_tar_member(member, archive) for member in tarred.getmembers()]
    else:
        raise UserError(f"{archive}: not a zip or tar archive; delete it and download it again")


def _check_size(
    archive: Path, members: list[Member], folder: Path, largest: int, excess: int
) -> None:
    total = sum(member.size for member in members)
    packed = archive.stat().st_size
    if total > MAX_RATIO * packed and total > largest + excess:
        raise UnsafeArchive(
            f"{archive}: declares {total:,} bytes of contents in {packed:,} bytes "
            f"({total // max(packed, 1):,}x); refused as a decompression bomb (limits: "
            f"{MAX_RATIO}x and {largest + excess:,} bytes)"
        )
    free = shutil.disk_usage(folder).free
    if total > free:
        raise UserError(
            f"{archive}: needs {total:,} bytes to extract, {folder.parent} has {free:,} free; "
            "free some space and rerun"
        )


def extract_into(archive: Path, folder: Path, largest: int = 0, excess: int = MAX_EXCESS) -> None:
    """Check every member of `archive`, then extract it into the existing `folder`. `largest`
    is the largest registry file's size, `excess` how far beyond it contents may go (see
    MAX_EXCESS)."""
    with _checked_members(archive) as (opened, members):
        _check_size(archive, members, folder, largest, excess)
        with disk_full_is_user_error(f"{archive}: extracting into {folder}"):
            for member in track(members, len(members), f"extract {archive.name}"):
                if isinstance(opened, zipfile.ZipFile) and member.is_dir:
                    (folder / member.name).mkdir(parents=True, exist_ok=True)
                elif isinstance(opened, zipfile.ZipFile):  # names checked: written as they are
                    (folder / member.name).parent.mkdir(parents=True, exist_ok=True)
                    with open(folder / member.name, "wb") as out:
                        _copy_zip_member(opened, member.info, out)
                else:  # the "data" filter drops owners and odd modes
                    opened.extract(member.info, folder, filter="data")


def safe_extract(archive: Path, dest: Path, excess: int = MAX_EXCESS) -> Path:
    """Extract `archive` as `dest` (atomically, stamped); a stamped `dest` is left as it is."""
    if (dest / STAMP).exists():
        return dest
    with atomic_dir(dest, replace=True) as tmp:
        extract_into(archive, tmp, excess=excess)
        atomic_write_text(tmp / STAMP, f"{archive.name}\n")
    return dest


def copy_member(archive: Path, member: str, out: Path) -> None:
    """Copy one member of `archive` to the file `out` (used for archives inside archives)."""
    wanted = _checked_name(member, archive)
    with _checked_members(archive) as (opened, members):
        found = next((m for m in members if m.name == wanted and not m.is_dir), None)
        if found is None:
            raise UserError(f"{archive}: no file member {member!r}")
        with open(out, "wb") as target:
            if isinstance(opened, zipfile.ZipFile):
                _copy_zip_member(opened, found.info, target)
            else:
                source = opened.extractfile(found.info)
                assert source is not None  # a file member
                with source:
                    shutil.copyfileobj(source, target, CHUNK)


def _copy_zip_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, out: BinaryIO) -> None:
    """Write a zip member's contents to `out`, Deflate64 ones included (decoded by inflate64
    from the member's raw bytes, checked against its CRC-32 and size as zipfile checks others)."""
    if info.compress_type != DEFLATE64:
        with zipped.open(info) as source:
            shutil.copyfileobj(source, out, CHUNK)
        return
    import inflate64  # on first use: only Deflate64 archives need it

    raw = copy.copy(info)  # read as stored: the compressed bytes, unchecked (checked below)
    raw.compress_type, raw.file_size, raw.CRC = zipfile.ZIP_STORED, info.compress_size, None
    inflater, crc, size = inflate64.Inflater(), 0, 0
    with zipped.open(raw) as source:
        while chunk := source.read(CHUNK):
            try:
                data = inflater.inflate(chunk)
            except ValueError as exc:  # inflate64's word for corrupt data
                raise zipfile.BadZipFile(f"Deflate64 member {info.filename!r}: {exc}") from None
            crc, size = zlib.crc32(data, crc), size + len(data)
            out.write(data)
    if crc != info.CRC or size != info.file_size:
        raise zipfile.BadZipFile(f"Bad CRC-32 or size for Deflate64 member {info.filename!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyutils.fetch.extract", description=__doc__)
    parser.add_argument("archive", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        raise UserError(f"{args.archive}: archive not found")
    log(f"{safe_extract(args.archive, args.dest)}: extracted from {args.archive}")
    return 0


if __name__ == "__main__":
    run_cli(main)
