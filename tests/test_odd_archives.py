"""Archives Python's zipfile alone cannot take: encrypted zips (refused in one line saying what
to do), Deflate64 zips (decoded), and zips or tars holding one name twice (refused), directly
and through `make mini-imagenet` (pyutils.catalog.prepare) from a local server."""

from __future__ import annotations

import io
import os
import random
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import inflate64
import pytest

from pyutils.catalog.datasets import DATASETS
from pyutils.catalog.prepare import prepare
from pyutils.core.errors import UserError
from pyutils.devtools.local_server import LocalServer
from pyutils.fetch.extract import DEFLATE64, UnsafeArchive, copy_member, safe_extract
from tests.conftest import run_module

# Long repeats (Deflate64's 64 KiB window and its length code 285 differ from Deflate's) and
# incompressible bytes, so that decoding it as plain Deflate would give other bytes.
CONTENT = b"vlprep " * 40_000 + random.Random(7).randbytes(50_000)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCH_WAITRETRY", "0")


def raw_zip(members: list[tuple[str, bytes]], method: int, flags: int = 0, pack=None) -> bytes:
    """A zip written byte by byte (APPNOTE 4.3): each member's data is `pack(data)` stored with
    compression `method` and general purpose `flags`."""
    body, central = b"", b""
    for name, data in members:
        packed = pack(data) if pack else data
        crc, encoded = zlib.crc32(data), name.encode()
        fields = (20, flags, method, 0, 0x21, crc, len(packed), len(data), len(encoded))
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, len(body)
        )
        central += encoded
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + encoded + packed
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(body), 0)
    return body + central + end


def deflate64(data: bytes) -> bytes:
    deflater = inflate64.Deflater()
    return deflater.deflate(data) + deflater.flush()


def zipcrypto(password: bytes, crc: int):
    """Traditional PKWARE encryption (APPNOTE 6.1), the kind `zip -P` writes."""

    def pack(data: bytes) -> bytes:
        keys = [0x12345678, 0x23456789, 0x34567890]

        def crc_byte(value: int, byte: int) -> int:
            return ~zlib.crc32(bytes([byte]), ~value & 0xFFFFFFFF) & 0xFFFFFFFF

        def update(byte: int) -> None:
            keys[0] = crc_byte(keys[0], byte)
            keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
            keys[2] = crc_byte(keys[2], keys[1] >> 24)

        for byte in password:
            update(byte)
        out = bytearray()
        for byte in os.urandom(11) + bytes([crc >> 24]) + data:
            temp = keys[2] | 2
            out.append(byte ^ ((temp * (temp ^ 1)) >> 8) & 0xFF)
            update(byte)
        return bytes(out)

    return pack


def test_a_deflate64_zip_is_extracted_byte_for_byte(tmp_path: Path) -> None:
    archive = tmp_path / "big.zip"
    archive.write_bytes(
        raw_zip([("top/a.bin", CONTENT), ("top/b.txt", b"b")], DEFLATE64, pack=deflate64)
    )
    with zipfile.ZipFile(archive) as zipped, pytest.raises(NotImplementedError):
        zipped.read("top/a.bin")  # what Python alone says of it
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "top" / "a.bin").read_bytes() == CONTENT
    assert (dest / "top" / "b.txt").read_bytes() == b"b"
    copy_member(archive, "top/a.bin", tmp_path / "one.bin")  # an archive inside an archive
    assert (tmp_path / "one.bin").read_bytes() == CONTENT


def test_a_damaged_deflate64_member_is_a_damaged_archive(tmp_path: Path) -> None:
    good = raw_zip([("top/a.bin", CONTENT)], DEFLATE64, pack=deflate64)
    middle = len(good) // 3
    (tmp_path / "bad.zip").write_bytes(good[:middle] + bytes(500) + good[middle + 500 :])
    result = run_module("pyutils.fetch.extract", str(tmp_path / "bad.zip"), str(tmp_path / "d"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "damaged archive" in result.stderr and not (tmp_path / "d").exists()


def test_an_encrypted_zip_is_one_line_naming_it_and_what_to_do(tmp_path: Path) -> None:
    crc = zlib.crc32(b"secret data")
    archive = tmp_path / "locked.zip"
    archive.write_bytes(raw_zip([("top/a.txt", b"secret data")], 0, 0x1, zipcrypto(b"pw", crc)))
    with zipfile.ZipFile(archive) as zipped:  # a real encrypted zip: the password opens it
        assert zipped.read("top/a.txt", pwd=b"pw") == b"secret data"
    result = run_module("pyutils.fetch.extract", str(archive), str(tmp_path / "dest"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert str(archive) in line and "encrypted" in line and "without one" in line
    assert not (tmp_path / "dest").exists()


def duplicate_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as archive:
        for data in (b"first", b"second"):  # what `tar -r` appending a changed file writes
            info = tarfile.TarInfo("top/a.jpg")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def duplicate_zip(path: Path) -> Path:
    path.write_bytes(raw_zip([("top/a.jpg", b"first"), ("top/a.jpg", b"second")], 0))
    return path


@pytest.mark.parametrize("make", [duplicate_tar, duplicate_zip], ids=["tar", "zip"])
def test_a_name_twice_is_refused_before_anything_is_written(tmp_path: Path, make) -> None:
    archive = make(tmp_path / "twice.archive")
    with pytest.raises(UnsafeArchive, match="'top/a.jpg' is in the archive twice"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def mini_imagenet(method: int, flags: int = 0, pack=None) -> bytes:
    images = [(f"mini/{split}/n01/image.jpg", CONTENT) for split in ("train", "val", "test")]
    return raw_zip(images, method, flags, pack)


def test_make_mini_imagenet_takes_a_deflate64_zip_and_says_an_encrypted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crc = zlib.crc32(CONTENT)
    files = {
        "d64.zip": mini_imagenet(DEFLATE64, pack=deflate64),
        "locked.zip": mini_imagenet(0, 0x1, zipcrypto(b"pw", crc)),
        "classnames.txt": b"n01 tench\n",
    }
    with LocalServer(files) as server:
        for name, status in (("locked.zip", 2), ("d64.zip", 1)):  # 1: placed, too few classes
            data = tmp_path / name
            urls = {
                "MINI_IMAGENET_URL": server.url(name),
                "MINI_IMAGENET_CLASSNAMES_URL": server.url("classnames.txt"),
            }
            assert prepare(DATASETS["mini-imagenet"], data, urls) == status
    err = capsys.readouterr().err
    assert "is encrypted (the zip has a password)" in err and "Traceback" not in err
    placed = tmp_path / "d64.zip" / "mini-imagenet" / "train" / "n01" / "image.jpg"
    assert placed.read_bytes() == CONTENT
    assert not (tmp_path / "locked.zip" / "mini-imagenet" / "train").exists()


def test_the_encrypted_refusal_is_a_user_error(tmp_path: Path) -> None:
    archive = tmp_path / "locked.zip"
    archive.write_bytes(raw_zip([("a", b"x")], 0, 0x1, zipcrypto(b"pw", zlib.crc32(b"x"))))
    with pytest.raises(UserError, match="encrypted"):
        copy_member(archive, "a", tmp_path / "out")
