"""`make <dataset>` (pyutils.catalog.prepare) against hostile or unlucky servers on 127.0.0.1:
archives with links, links in what is moved into place, a damaged first download, a changed or
Range-ignoring server, JSON error bodies, redirect loops."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from pyutils.catalog import prepare as prepare_module
from pyutils.catalog.datasets import DATASETS
from pyutils.catalog.prepare import prepare
from pyutils.devtools.local_server import LocalServer
from pyutils.fetch.download import LOCK_NAME, DownloadError, Entry, fetch, read_lock
from tests.test_extract import chained_symlink_tar


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCH_WAITRETRY", "0")
    monkeypatch.setenv("FETCH_TRIES", "3")
    monkeypatch.setenv("FETCH_TIMEOUT", "10")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "archive", "overrides"),
    [
        (
            "caltech101",
            "101_ObjectCategories.tar.gz",
            lambda url, evil: {"CALTECH101_URL": url, "CALTECH101_SHA256": sha(evil)},
        ),
        # MSRVTT.zip has no published checksum: its first download is trusted, and must not be
        # locked in when it turns out to be a tar of links named .zip.
        ("msrvtt", "MSRVTT.zip", lambda url, evil: {"MSRVTT_URL": url}),
    ],
    ids=["caltech101-overridden-url", "msrvtt-no-checksum"],
)
def test_chained_symlinks_are_refused_by_make_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: str, archive: str, overrides
) -> None:
    evil = chained_symlink_tar(tmp_path / "evil.tar", 2, "outside").read_bytes()
    data = tmp_path / "data"
    (data / "outside").mkdir(parents=True)
    with LocalServer({"evil": evil}) as server:
        # The dataset's other parts: a 404 on the same server, never the internet.
        others = {f"{part.var}_URL": server.url("404") for part in DATASETS[dataset].parts}
        status = prepare(DATASETS[dataset], data, {**others, **overrides(server.url("evil"), evil)})
    assert status == 2
    download = data / "downloads" / archive
    assert f"vlprep: error: {download}: member 'a' is a symbolic link" in capsys.readouterr().err
    assert list((data / "outside").iterdir()) == []
    assert archive not in read_lock(data / "downloads")
    assert [p.name for p in (data / DATASETS[dataset].folder).iterdir()] == []


@pytest.mark.parametrize("where", ["the placed folder", "inside it"])
def test_links_in_placed_parts_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Extraction refuses links already; this is the guard on the move itself."""

    def extract_with_a_link(archive: Path, tree: Path, largest: int = 0) -> None:
        videos = tree / "MSRVTT" / "videos"
        (tree / "x").mkdir()
        videos.mkdir(parents=True)
        if where == "the placed folder":
            (videos / "all").symlink_to("../../x")  # resolves elsewhere once moved up
        else:
            (videos / "all").mkdir()
            (videos / "all" / "video0.mp4").symlink_to("../../../x")

    monkeypatch.setattr(prepare_module, "extract_into", extract_with_a_link)
    download = tmp_path / "downloads" / "MSRVTT.zip"
    download.parent.mkdir()
    download.write_bytes(b"stand-in")
    root = tmp_path / "msrvtt"
    root.mkdir()
    with pytest.raises(prepare_module.UnsafeArchive, match="is a symbolic link; not placed as"):
        prepare_module.place_part(DATASETS["msrvtt"].parts[0], download, root)
    assert list(root.iterdir()) == []


# ---- what gets locked --------------------------------------------------------------------------


def mini_imagenet_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for split in ("train", "val", "test"):
            data = os.urandom(30_000)
            info = tarfile.TarInfo(f"mini/{split}/n01/image.jpg")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_damaged_first_download_is_not_locked_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = mini_imagenet_tar()
    files = {"mini.tar": whole[: len(whole) // 2], "classnames.txt": b"n01 tench\n"}
    data = tmp_path / "data"
    downloads = data / "downloads"
    # The server sends half the archive with a matching Content-Length: nothing to notice
    # until it is extracted.
    with LocalServer(files) as server:
        urls = {
            "MINI_IMAGENET_URL": server.url("mini.tar"),
            "MINI_IMAGENET_CLASSNAMES_URL": server.url("classnames.txt"),
        }
        assert prepare(DATASETS["mini-imagenet"], data, urls) == 2
        assert "damaged archive" in capsys.readouterr().err
        assert "mini-imagenet.tar" not in read_lock(downloads)
        (downloads / "mini-imagenet.tar").unlink()  # as the message says
        server.files["mini.tar"] = whole
        assert prepare(DATASETS["mini-imagenet"], data, urls) == 1  # placed; too few classes
    assert read_lock(downloads)["mini-imagenet.tar"] == (len(whole), sha(whole))
    assert (data / "mini-imagenet" / ".vlprep-placed-mini-imagenet.tar").exists()
    assert (data / "mini-imagenet" / "train" / "n01" / "image.jpg").exists()
    assert (downloads / LOCK_NAME).read_text().count("mini-imagenet.tar") == 1


# ---- servers: a changed file, Range ignored, JSON errors, redirect loops -----------------------


def fetch_from(server: LocalServer, path: str, name: str, downloads: Path) -> Path:
    """Fetch registry file `name` (no checksum known) from `path` on `server`."""
    registry = {name: Entry(name, None, None, ("http://unused",), "")}
    return fetch(name, downloads, var="F", overrides={"F_URL": server.url(path)}, registry=registry)


@pytest.mark.parametrize("ignores_range", [False, True], ids=["206-other-file", "200-whole"])
def test_a_transfer_cut_then_changed_on_the_server_starts_again(
    tmp_path: Path, ignores_range: bool
) -> None:
    old, new = os.urandom(200_000), os.urandom(200_000)
    with LocalServer(
        {"f.bin": old},
        cut={"f.bin"},
        changed={"f.bin": new},
        whole={"f.bin"} if ignores_range else set(),
    ) as server:
        got = fetch_from(server, "f.bin", "f.bin", tmp_path)
        statuses = [request.status for request in server.requests]
    # A splice would be old[:half] + new[half:]; the transfer starts again from zero instead.
    assert got.read_bytes() == new
    assert statuses == [200, 200 if ignores_range else 206, 200]


def test_a_json_error_body_is_refused_like_an_html_page(tmp_path: Path) -> None:
    error = b'{"error": {"code": 403, "message": "Rate limit exceeded"}}'
    refused = pytest.raises(DownloadError, match="the server sent a JSON error, not the file")
    with LocalServer({"q.json": error}) as server, refused:
        fetch_from(server, "q.json", "q.json", tmp_path)
    assert not (tmp_path / "q.json").exists()
    assert (tmp_path / "q.json.rejected").read_bytes() == error


def test_a_redirect_loop_is_called_one(tmp_path: Path) -> None:
    refused = pytest.raises(DownloadError, match=r"/a: redirect loop \(20 redirections exceeded")
    with LocalServer({}, redirect={"a": "b", "b": "a"}) as server, refused:
        fetch_from(server, "a", "f.bin", tmp_path)
