"""Safe extraction of zip and tar archives (any compression tarfile reads).

Every member is checked before anything is written: a member that would land outside the target
(`../`, an absolute path, a link pointing out, a device file) refuses the whole archive. Extraction
goes into a temporary folder renamed into place when complete, with a stamp file for `make`.

    python -m pyutils.fetch.extract ARCHIVE DEST     # DEST/.vlprep-extracted marks completion
"""

from __future__ import annotations

import argparse
import posixpath
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

from pyutils.core.atomic import atomic_dir, atomic_write_text
from pyutils.core.errors import UserError, run_cli
from pyutils.core.report import log, track

STAMP = ".vlprep-extracted"


class UnsafeArchive(UserError):
    """An archive member that would be written outside the target folder."""


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


def _check_tar_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = _checked_name(member.name, archive)
    if member.issym() or member.islnk():
        # A symlink's target is relative to its own folder; a hard link's to the archive root.
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise UnsafeArchive(
                f"{archive}: link {member.name!r} -> {member.linkname!r} points outside the target"
            )
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"{archive}: member {member.name!r} is a device or fifo")


def extract_into(archive: Path, folder: Path) -> None:
    """Check every member of `archive`, then extract it into the existing `folder`."""
    try:
        _extract_checked(archive, folder)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise UserError(f"{archive}: damaged archive ({exc}); delete it, fetch it again") from None


def _extract_checked(archive: Path, folder: Path) -> None:
    kind = archive_kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for info in members:
                _checked_name(info.filename, archive)
            for info in track(members, len(members), f"extract {archive.name}"):
                zipped.extract(info, folder)
    elif kind == "tar":
        with tarfile.open(archive, "r:*") as tarred:
            members = tarred.getmembers()
            for member in members:
                _check_tar_member(member, archive)
            for member in track(members, len(members), f"extract {archive.name}"):
                # The "data" filter re-checks what we checked and drops owners and odd modes.
                tarred.extract(member, folder, filter="data")
    else:
        raise UserError(f"{archive}: not a zip or tar archive; delete it and download it again")


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract `archive` as `dest` (atomically, stamped); a stamped `dest` is left as it is."""
    if (dest / STAMP).exists():
        return dest
    with atomic_dir(dest, replace=True) as tmp:
        extract_into(archive, tmp)
        atomic_write_text(tmp / STAMP, f"{archive.name}\n")
    return dest


def copy_member(archive: Path, member: str, out: Path) -> None:
    """Copy one member of `archive` to the file `out` (used for archives inside archives)."""
    wanted = _checked_name(member, archive)
    kind = archive_kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zipped:
            names = {_checked_name(n, archive): n for n in zipped.namelist()}
            if wanted not in names:
                raise UserError(f"{archive}: no member {member!r}")
            with zipped.open(names[wanted]) as source, open(out, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    elif kind == "tar":
        with tarfile.open(archive, "r:*") as tarred:
            found = next((m for m in tarred if _checked_name(m.name, archive) == wanted), None)
            source = tarred.extractfile(found) if found is not None else None
            if source is None:
                raise UserError(f"{archive}: no file member {member!r}")
            with source, open(out, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    else:
        raise UserError(f"{archive}: not a zip or tar archive")


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
