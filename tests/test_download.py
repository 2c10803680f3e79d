"""The download path against a real HTTP server on 127.0.0.1 (resume, verification, fallbacks),
`make caltech101` end to end, and the Drive/Kaggle paths as far as they can run offline."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import orjson
import pytest

from pyutils.catalog.datasets import DATASETS
from pyutils.catalog.prepare import prepare
from pyutils.core.errors import UserError
from pyutils.devtools.local_server import LocalServer
from pyutils.devtools.sample import build_caltech_archive
from pyutils.fetch.download import (
    FETCH_SCRIPT,
    LOCK_NAME,
    DownloadError,
    Entry,
    fetch,
    read_lock,
    read_registry,
    record_proven,
    register,
    verify,
)
from tests.conftest import REPO

CLASSES = {"Faces": 3, "accordion": 2, "odd 'name' $(touch pwned)": 1}


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCH_WAITRETRY", "0")
    monkeypatch.setenv("FETCH_TRIES", "3")
    monkeypatch.setenv("FETCH_TIMEOUT", "10")


@pytest.fixture
def caltech(tmp_path: Path) -> dict[str, bytes]:
    """A small Caltech101-shaped archive and a CoOp-format split over it."""
    images = tmp_path / "src" / "images"
    rows = []
    for label, (name, count) in enumerate(CLASSES.items()):
        for index in range(count):
            image = images / name / f"image_{index + 1:04d}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(os.urandom(20_000))  # big enough for a cut in the middle to matter
            rows.append([f"{name}/{image.name}", label, name.lower()])
    archive = build_caltech_archive(images, tmp_path / "src" / "101_ObjectCategories.tar.gz")
    split = {"train": rows[:3], "val": rows[3:4], "test": rows[4:]}
    return {"101_ObjectCategories.tar.gz": archive.read_bytes(), "split.json": orjson.dumps(split)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone.tar.gz"


def caltech_overrides(server: LocalServer, files: dict[str, bytes], **extra: str) -> dict[str, str]:
    return {
        "CALTECH101_URL": server.url("101_ObjectCategories.tar.gz"),
        "CALTECH101_SHA256": sha(files["101_ObjectCategories.tar.gz"]),
        "CALTECH101_SPLIT_URL": server.url("split.json"),
        "CALTECH101_SPLIT_SHA256": "none",
        **extra,
    }


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_make_caltech101_end_to_end(tmp_path: Path, caltech: dict[str, bytes]) -> None:
    data = tmp_path / "data"
    with LocalServer(dict(caltech)) as server:
        urls = caltech_overrides(server, caltech)
        args = [f"{key}={value}" for key, value in urls.items()]
        first = make("caltech101", f"DATA={data}", *args)
        assert first.returncode == 0, first.stderr
        root = data / "caltech-101"
        assert (root / "split_zhou_Caltech101.json").read_bytes() == caltech["split.json"]
        for name, count in CLASSES.items():
            assert len(list((root / "101_ObjectCategories" / name).glob("*.jpg"))) == count
        seen = len(server.requests)
        second = make("caltech101", f"DATA={data}", *args)
        assert second.returncode == 0
        assert "Nothing to be done" in second.stdout
        assert len(server.requests) == seen
    checked = make("check", f"DATA={data}", "DATASETS=caltech101")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "caltech101" in checked.stdout and "complete" in checked.stdout
    assert not (REPO / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_cut_transfer_resumes_with_range(tmp_path: Path, caltech: dict[str, bytes]) -> None:
    name = "101_ObjectCategories.tar.gz"
    with LocalServer(dict(caltech), cut={name}) as server:
        path = fetch(name, tmp_path, var="CALTECH101", overrides=caltech_overrides(server, caltech))
        assert server.ranges_seen(name), server.requests
    assert path.read_bytes() == caltech[name]


def other_archive() -> bytes:
    """A valid tar.gz other than the fixture's: what a server may serve after a change."""
    buffer, payload = io.BytesIO(), os.urandom(50_000)
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("other.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def kill_mid_transfer(server: LocalServer, name: str, data: Path, env: dict[str, str]) -> Path:
    """Run `download fetch` until the server has sent its stalled bytes, then kill it (and its
    wget); return the `.part` it left."""
    part = data / "downloads" / f"{name}.part"
    run = subprocess.Popen(
        [sys.executable, "-m", "pyutils.fetch.download", "fetch", name, "--data", str(data),
         "--var", "CALTECH101"],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=REPO,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    validators = part.with_name(part.name + ".validators")
    while not (part.exists() and part.stat().st_size == server.stall[name] and validators.exists()):
        assert run.poll() is None, "the transfer ended before it could be killed"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return part


@pytest.mark.parametrize("changed", [False, True], ids=["same-file", "changed-on-server"])
def test_partial_file_from_killed_run_is_resumed_into_the_same_file_only(
    tmp_path: Path, caltech: dict[str, bytes], changed: bool
) -> None:
    name = "101_ObjectCategories.tar.gz"
    third = len(caltech[name]) // 3
    new = other_archive()
    with LocalServer(dict(caltech), stall={name: third}) as server:
        overrides = caltech_overrides(server, caltech, CALTECH101_SHA256="none")
        part = kill_mid_transfer(server, name, tmp_path, overrides)
        server.release()
        if changed:
            server.files[name] = new
        fetch(name, tmp_path / "downloads", var="CALTECH101", overrides=overrides)
        resumed = server.ranges_seen(name)
    final = tmp_path / "downloads" / name
    assert resumed == [f"bytes={third}-"]
    assert final.read_bytes() == (new if changed else caltech[name])
    assert not part.exists() and not part.with_name(part.name + ".validators").exists()


def test_wrong_checksum_keeps_file_aside_and_extracts_nothing(
    tmp_path: Path, caltech: dict[str, bytes]
) -> None:
    data = tmp_path / "data"
    with LocalServer(dict(caltech)) as server:
        urls = caltech_overrides(server, caltech, CALTECH101_SHA256="0" * 64)
        status = prepare(DATASETS["caltech101"], data, urls)
    assert status == 1
    rejected = data / "downloads" / "101_ObjectCategories.tar.gz.rejected"
    assert rejected.read_bytes() == caltech["101_ObjectCategories.tar.gz"]
    assert not (data / "downloads" / "101_ObjectCategories.tar.gz").exists()
    assert not (data / "caltech-101" / "101_ObjectCategories").exists()
    assert not (data / "caltech-101" / ".vlprep-complete").exists()
    failures = (data / "downloads" / "caltech101_failures.jsonl").read_text()
    assert "sha256" in failures and "expected " + "0" * 64 in failures


def test_registry_checksum_applies_to_a_mirror(tmp_path: Path, caltech: dict[str, bytes]) -> None:
    # No CALTECH101_SHA256: the registry's size and sha256 of the real archive reject these.
    with LocalServer(dict(caltech)) as server:
        urls = {"CALTECH101_URL": server.url("101_ObjectCategories.tar.gz")}
        with pytest.raises(DownloadError, match="size .* bytes, expected 131740031"):
            fetch("101_ObjectCategories.tar.gz", tmp_path, var="CALTECH101", overrides=urls)


def test_html_page_is_an_error_naming_it(tmp_path: Path, caltech: dict[str, bytes]) -> None:
    with LocalServer(dict(caltech), html={"101_ObjectCategories.tar.gz"}) as server:
        urls = caltech_overrides(server, caltech)
        with pytest.raises(DownloadError, match="HTML page \\('Google Drive - Quota exceeded'\\)"):
            fetch("101_ObjectCategories.tar.gz", tmp_path, var="CALTECH101", overrides=urls)
    assert not (tmp_path / "101_ObjectCategories.tar.gz").exists()


def test_first_sources_fail_then_the_next_one_works(
    tmp_path: Path, caltech: dict[str, bytes]
) -> None:
    name = "101_ObjectCategories.tar.gz"
    with LocalServer(dict(caltech)) as server:
        sources = f"{server.url('missing.tar.gz')} {closed_port_url()} {server.url(name)}"
        urls = caltech_overrides(server, caltech, CALTECH101_URL=sources)
        fetch(name, tmp_path, var="CALTECH101", overrides=urls)
        assert [request.path for request in server.requests] == ["/missing.tar.gz", f"/{name}"]
    assert (tmp_path / name).read_bytes() == caltech[name]


def test_all_sources_failing_names_each_reason(tmp_path: Path) -> None:
    with LocalServer({}) as server:
        urls = {"CALTECH101_URL": f"{server.url('a.tar.gz')} {closed_port_url()}"}
        with pytest.raises(DownloadError) as failed:
            fetch("101_ObjectCategories.tar.gz", tmp_path, var="CALTECH101", overrides=urls)
    message = str(failed.value)
    assert "404" in message and "Connection refused" in message
    assert f"put the file there yourself: {tmp_path / '101_ObjectCategories.tar.gz'}" in message


def test_archive_already_in_downloads_is_used_as_is(
    tmp_path: Path, caltech: dict[str, bytes]
) -> None:
    name = "101_ObjectCategories.tar.gz"
    (tmp_path / name).write_bytes(caltech[name])
    urls = {"CALTECH101_URL": closed_port_url(), "CALTECH101_SHA256": sha(caltech[name])}
    assert fetch(name, tmp_path, var="CALTECH101", overrides=urls) == tmp_path / name


def test_unknown_checksum_is_locked_on_first_download(tmp_path: Path) -> None:
    registry_file = tmp_path / "downloads.tsv"
    registry_file.write_text("# header\nthing.json\t-\t-\thttp://unused\tnote\n")
    registry = read_registry(registry_file)
    downloads = tmp_path / "downloads"
    with LocalServer({"v1": b'{"a": 1}', "v2": b'{"a": 2}'}) as server:

        def get(version: str) -> Path:
            overrides = {"T_URL": server.url(version)}
            return fetch("thing.json", downloads, var="T", overrides=overrides, registry=registry)

        record_proven(get("v1"))  # the step using it would, once it has read and placed it
        assert read_lock(downloads) == {"thing.json": (8, sha(b'{"a": 1}'))}
        _, bad = verify(downloads, registry)
        assert bad == 0
        (downloads / "thing.json").unlink()
        first = sha(b'{"a": 1}')
        lock = re.escape(str(downloads / LOCK_NAME))
        with pytest.raises(DownloadError, match=f"expected {first} .*{lock}"):
            get("v2")
    assert register(downloads, registry_file) == ["thing.json"]
    assert read_registry(registry_file)["thing.json"].checksum == "sha256:" + sha(b'{"a": 1}')
    assert registry_file.read_text().startswith("# header\n")


def test_verify_finds_a_file_changed_on_disk(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(f"x.bin\t3\t{sha(b'abc')}\n")
    (tmp_path / "x.bin").write_bytes(b"abd")
    registry = {"x.bin": Entry("x.bin", None, None, (), "")}
    _, bad = verify(tmp_path, registry)
    assert bad == 1


def test_no_source_says_what_to_place_where(tmp_path: Path) -> None:
    expected = "put the file there yourself: .*downloads/mini-imagenet.tar"
    with pytest.raises(UserError, match=expected):
        fetch("mini-imagenet.tar", tmp_path / "downloads", var="MINI_IMAGENET")
    result = make(
        "mini-imagenet", f"DATA={tmp_path}", "MINI_IMAGENET_CLASSNAMES_URL=" + closed_port_url()
    )
    assert result.returncode != 0
    assert "yaoyaoliu.web.illinois.edu" in result.stderr
    assert "MINI_IMAGENET_URL" in result.stderr


def test_member_source_takes_a_file_out_of_another_archive(tmp_path: Path) -> None:
    inner = b"inner bytes"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("outer/inner.txt", inner)
    registry = {
        "inner.txt": Entry("inner.txt", None, None, ("member:outer.zip:outer/inner.txt",), ""),
        "outer.zip": Entry("outer.zip", None, None, ("http://unused",), ""),
    }
    (tmp_path / "outer.zip").write_bytes(buffer.getvalue())
    assert fetch("inner.txt", tmp_path, registry=registry).read_bytes() == inner


# ---- Google Drive and Kaggle: offline, through fake tools on PATH -----------------------------


# A fake tool records its arguments; `value_of FLAG "$@"` gives the value after FLAG.
FAKE_PREAMBLE = """#!/usr/bin/env bash
value_of() { local flag=$1; shift; while [[ $# -gt 1 ]]; do
  [[ $1 == "$flag" ]] && { echo "$2"; return; }; shift; done; }
"""


def fake_tool(folder: Path, name: str, body: str) -> Path:
    tool = folder / name
    record = f"printf '%s\\n' \"$@\" > {folder}/{name}.args\n"
    tool.write_text(FAKE_PREAMBLE + record + body + "\n")
    tool.chmod(0o755)
    return folder


def run_fetch(source: str, dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FETCH_SCRIPT), source, str(dest)], capture_output=True, text=True, env=env
    )


def test_gdrive_quota_page_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = "<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>"
    bin_dir = fake_tool(
        tmp_path,
        "gdown",
        f'echo "{page}" > "$(value_of --output "$@")"',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args: [])  # Drive's name resolves
    with pytest.raises(DownloadError, match="HTML page \\('Google Drive - Quota exceeded'\\)"):
        fetch("split_zhou_Caltech101.json", tmp_path / "downloads", var="CALTECH101_SPLIT")
    args = (tmp_path / "gdown.args").read_text().split("\n")
    assert "--continue" in args and "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN" in args
    assert args[args.index("--output") + 1] == str(
        tmp_path / "downloads" / "split_zhou_Caltech101.json.part"
    )


def kaggle_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "XDG_"))}
    return {**env, "HOME": str(tmp_path / "home"), **extra}


def test_missing_kaggle_credentials_one_line_exit_2(tmp_path: Path) -> None:
    result = run_fetch("kaggle:eeshawn/flickr30k", tmp_path / "x.part", kaggle_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "no Kaggle credentials" in result.stderr and "~/.kaggle/kaggle.json" in result.stderr
    made = make("flickr", f"DATA={tmp_path / 'data'}", env=kaggle_env(tmp_path))
    assert made.returncode == 2
    assert "no Kaggle credentials" in made.stderr
    assert "Traceback" not in made.stderr


def test_kaggle_cli_error_text_is_passed_through(tmp_path: Path) -> None:
    bin_dir = fake_tool(
        tmp_path,
        "kaggle",
        "echo '403 Client Error: Forbidden - accept the rules first' >&2; exit 1",
    )
    env = kaggle_env(
        tmp_path, KAGGLE_USERNAME="u", KAGGLE_KEY="k", PATH=f"{bin_dir}:{os.environ['PATH']}"
    )
    result = run_fetch("kaggle:wangjilong/dataset-json", tmp_path / "x.part", env)
    assert result.returncode == 1
    assert "403 Client Error: Forbidden - accept the rules first" in result.stderr
    args = (tmp_path / "kaggle.args").read_text().split("\n")
    assert args[:2] == ["datasets", "download"] and "wangjilong/dataset-json" in args


def test_kaggle_zip_lands_at_dest(tmp_path: Path) -> None:
    body = 'echo zipbytes > "$(value_of --path "$@")/dataset-json.zip"'
    bin_dir = fake_tool(tmp_path, "kaggle", body)
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text('{"username":"u","key":"k"}')
    env = kaggle_env(tmp_path, PATH=f"{bin_dir}:{os.environ['PATH']}")
    result = run_fetch("kaggle:wangjilong/dataset-json", tmp_path / "x.part", env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.part").read_text() == "zipbytes\n"
    assert not [p for p in tmp_path.iterdir() if "vlprep-tmp" in p.name]


def test_offline_a_drive_source_fails_at_once_and_the_last_line_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No name resolves (a machine without network): gdown is not run (it would retry a failed
    look-up five times), each source is one line, and where to put the file comes last."""

    def offline(host: str, *args: object, **kwargs: object) -> None:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    bin_dir = fake_tool(tmp_path, "gdown", "exit 1")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(socket, "getaddrinfo", offline)
    name = "split_zhou_Caltech101.json"
    with LocalServer({}) as server:
        sources = {"CALTECH101_SPLIT_URL": f"gdrive:abc {server.url('gone.json')}"}
        with pytest.raises(DownloadError) as caught:
            fetch(name, tmp_path / "downloads", var="CALTECH101_SPLIT", overrides=sources)
    assert not (tmp_path / "gdown.args").exists()  # never run
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{name}: no source worked:"
    assert lines[1] == "  gdrive:abc: cannot resolve drive.google.com (no network, or no DNS?)"
    assert lines[2].startswith("  http://127.0.0.1:") and "404" in lines[2]
    assert lines[3].startswith("put the file there yourself: ") and len(lines) == 4
    assert lines[3].endswith("then rerun") and name in lines[3]


def test_a_gzip_encoded_answer_is_a_failed_source_never_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = b"n01440764 tench\n" * 200
    files = {"gz/classnames.txt": text, "classnames.txt": text}
    with LocalServer(files, gzip={"gz/classnames.txt"}) as server:
        sources = (server.url("gz/classnames.txt"), server.url("classnames.txt"))
        registry = {"classnames.txt": Entry("classnames.txt", None, None, sources, "by hand")}
        downloads = tmp_path / "downloads"
        path = fetch("classnames.txt", downloads, registry=registry)
        assert path.read_bytes() == text  # from the second source: the first was refused
        registry = {"classnames.txt": Entry("classnames.txt", None, None, sources[:1], "")}
        (downloads / "classnames.txt").unlink()
        with pytest.raises(DownloadError, match=r"gzip-encoded \(Content-Encoding: gzip\)"):
            fetch("classnames.txt", downloads, registry=registry)
    assert not (downloads / "classnames.txt").exists()
    assert [p.name for p in downloads.iterdir() if p.name.endswith((".part", ".rejected"))] == []
