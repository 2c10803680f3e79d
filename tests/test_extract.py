"""Safe extraction: hostile members are refused before anything is written, results are atomic."""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from pyutils.core.errors import UserError
from pyutils.fetch.extract import STAMP, UnsafeArchive, copy_member, safe_extract
from tests.conftest import run_module


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


GOOD = [("top/a.jpg", b"a"), ("top/sub/b b $(touch pwned).jpg", b"b")]


@pytest.mark.parametrize(
    "hostile",
    [
        ("top/../../evil", b"x"),
        ("/tmp/absolute-evil", b"x"),
        link("top/out", "../../outside"),
        link("top/abs", "/etc/passwd"),
        link("top/hard", "../evil", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"],
)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path: Path, hostile) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [*GOOD, hostile])
    dest = tmp_path / "work" / "dest"
    with pytest.raises(UnsafeArchive, match="outside the target"):
        safe_extract(archive, dest)
    assert not dest.exists()
    assert list((tmp_path / "work").iterdir()) == []  # no temporary left either
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_hostile_zip_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"ok.txt": b"1", "../evil.txt": b"2"})
    with pytest.raises(UnsafeArchive):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_even_a_link_inside_the_target_is_refused(tmp_path: Path, kind: bytes) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [*GOOD, link("top/sub/alias.jpg", "top/a.jpg", kind)])
    with pytest.raises(UnsafeArchive, match="'top/sub/alias.jpg' is a (symbolic|hard) link"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extracts_with_awkward_names_and_stamps(tmp_path: Path, kind: str) -> None:
    archive = (
        make_tar(tmp_path / "a.tar.gz", GOOD)
        if kind == "tar"
        else make_zip(tmp_path / "a.zip", dict(GOOD))
    )
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "top" / "sub" / "b b $(touch pwned).jpg").read_bytes() == b"b"
    assert (dest / STAMP).exists()
    (dest / "top" / "a.jpg").write_bytes(b"changed")
    safe_extract(archive, tmp_path / "dest")  # stamped: left as it is
    assert (dest / "top" / "a.jpg").read_bytes() == b"changed"
    assert not (tmp_path / "pwned").exists()


def test_truncated_archive_leaves_no_tree(tmp_path: Path) -> None:
    whole = make_tar(
        tmp_path / "a.tar.gz", [("top/big.bin", bytes(range(256)) * 4000)]
    ).read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(whole[: len(whole) // 2])
    result = run_module(
        "pyutils.fetch.extract", str(tmp_path / "cut.tar.gz"), str(tmp_path / "dest")
    )
    assert result.returncode == 2
    assert "damaged archive" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "dest").exists()
    assert not [p for p in tmp_path.iterdir() if "vlprep-tmp" in p.name]


def test_not_an_archive_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "page.zip").write_text("<html>quota</html>")
    result = run_module("pyutils.fetch.extract", str(tmp_path / "page.zip"), str(tmp_path / "dest"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "not a zip or tar archive" in result.stderr


def test_copy_member_from_tar_and_zip(tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "a.tar.gz", GOOD)
    zipped = make_zip(tmp_path / "a.zip", dict(GOOD))
    for archive in (tar, zipped):
        copy_member(archive, "top/a.jpg", tmp_path / "out")
        assert (tmp_path / "out").read_bytes() == b"a"
    with pytest.raises(UnsafeArchive):
        copy_member(tar, "../x", tmp_path / "out")


# ---- links, however they are chained, and what else cannot be extracted as meant ---------------


def chained_symlink_tar(path: Path, up: int, target: str) -> Path:
    """The CVE-2025-4517 shape: `a -> d*247`, `d*247/b -> d*247`, ... (16 levels), then
    `a/b/.../p/l*254 -> ../../..` (back to the top, really), then `escape -> that chain` plus
    `up` times `/..` and `target`, and `escape/file`. Every link points inside on paper; the
    real path is longer than PATH_MAX, so os.path.realpath, and Python 3.11's "data" filter, stop
    resolving and judge it lexically. `up` = 2 lands beside the folder the extraction runs in."""
    comp, steps, deep = "d" * 247, "abcdefghijklmnop", ""
    with tarfile.open(path, "w") as archive:
        for step in steps:
            folder = tarfile.TarInfo(f"{deep}{comp}")
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(folder)
            archive.addfile(link(f"{deep}{step}", comp))
            deep += f"{comp}/"
        chain = "/".join(steps) + "/" + "l" * 254
        archive.addfile(link(chain, "../" * len(steps)))
        archive.addfile(link("escape", chain + "/.." * up + "/" + target))
        payload = tarfile.TarInfo("escape/file")
        payload.size = 6
        archive.addfile(payload, io.BytesIO(b"pwned\n"))
    return path


@pytest.mark.parametrize("name", ["chain.tar", "chain.zip"], ids=["tar", "tar-named-zip"])
def test_chained_symlinks_are_refused_in_one_line(tmp_path: Path, name: str) -> None:
    archive = chained_symlink_tar(tmp_path / name, 2, "outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "work").mkdir()
    result = run_module("pyutils.fetch.extract", str(archive), str(tmp_path / "work" / "dest"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{archive}: member 'a' is a symbolic link" in result.stderr
    assert list((tmp_path / "outside").iterdir()) == []
    assert list((tmp_path / "work").iterdir()) == []


def zip_symlink(path: Path, name: str, target: str, *more: tuple[str, bytes]) -> Path:
    """A zip "symlink": an entry whose Unix mode (high 16 bits of external_attr) is S_IFLNK and
    whose data is the target; unzip recreates it as a link."""
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
        for member, data in more:
            archive.writestr(member, data)
    return path


def test_zip_symlink_then_a_file_under_it_is_one_line(tmp_path: Path) -> None:
    archive = zip_symlink(tmp_path / "a.zip", "link", str(tmp_path / "outside"), ("link/f", b"x"))
    result = run_module("pyutils.fetch.extract", str(archive), str(tmp_path / "dest"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert f"member 'link' is a symbolic link (-> '{tmp_path / 'outside'}')" in result.stderr
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        copy_member(archive, "link/f", tmp_path / "out")


def test_tar_with_a_file_then_a_folder_of_the_same_name_is_one_line(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("top/a")
    folder.type = tarfile.DIRTYPE
    archive = make_tar(tmp_path / "a.tar.gz", [("top/a", b"file"), folder, ("top/a/b", b"x")])
    result = run_module("pyutils.fetch.extract", str(archive), str(tmp_path / "dest"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert f"{archive}: member 'top/a' is both a file and a folder" in result.stderr
    assert not (tmp_path / "dest").exists()


# ---- sizes: decompression bombs, free space, a disk that fills up --------------------------------


def zeros_zip(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("top/zeros.bin", bytes(size))
    return path


def test_a_decompression_bomb_is_refused_naming_the_archive(tmp_path: Path) -> None:
    bomb = zeros_zip(tmp_path / "bomb.zip", 4 << 20)  # 4 MiB of zeros in a few KiB: over 100x
    with pytest.raises(UnsafeArchive) as refused:
        safe_extract(bomb, tmp_path / "dest", excess=1 << 20)
    message = str(refused.value)
    assert message.startswith(f"{bomb}: declares 4,194,304 bytes of contents in ")
    assert "decompression bomb" in message and "\n" not in message
    assert not (tmp_path / "dest").exists()
    # Under the cap, the same archive is just an archive.
    assert (safe_extract(bomb, tmp_path / "dest") / "top" / "zeros.bin").stat().st_size == 4 << 20


def test_not_enough_free_space_is_said_before_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_zip(tmp_path / "a.zip", {"top/a.bin": bytes(5000)})
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(free=1000))
    with pytest.raises(UserError, match=r"needs 5,000 bytes to extract, .* has 1,000 free"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_disk_full_while_extracting_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    archive = (
        make_tar(tmp_path / "a.tar.gz", GOOD)
        if kind == "tar"
        else make_zip(tmp_path / "a.zip", dict(GOOD))
    )

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # What tarfile and zipfile copy member data with.
    monkeypatch.setattr(tarfile, "copyfileobj", full)
    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(
        UserError, match=r"extracting into .*: disk full \(No space left on device\)"
    ):
        safe_extract(archive, tmp_path / "dest")
    assert list(tmp_path.iterdir()) == [archive]
