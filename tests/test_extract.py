"""Safe extraction: hostile members are refused before anything is written, results are atomic."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

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


def test_link_inside_the_target_is_fine(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [*GOOD, link("top/sub/alias.jpg", "../a.jpg")])
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "top" / "sub" / "alias.jpg").read_bytes() == b"a"


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
