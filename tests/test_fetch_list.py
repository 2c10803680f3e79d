"""`python -m pyutils.fetch.fetch_list` against a local HTTP server started by each test."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from pyutils.core.atomic import is_temporary
from pyutils.devtools.local_server import LocalServer
from tests.conftest import REPO, run_module

ODD_NAME = "video 'odd' $(touch pwned).mp4"


def _bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _write_list(path: Path, lines: list[str]) -> Path:
    path.write_text("# DiDeMo originals\n\n" + "\n".join(lines) + "\n")
    return path


def _fetch(url_list: Path, dest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ("--jobs", "3", "--retries", "2", "--backoff", "0", "--timeout", "10", *extra)
    return run_module("pyutils.fetch.fetch_list", str(url_list), str(dest), *args, cwd=dest.parent)


def _status(dest: Path) -> dict[str, dict]:
    lines = (dest / "fetch_status.jsonl").read_bytes().splitlines()
    return {record["name"]: record for record in map(orjson.loads, lines)}


def test_dead_links_among_good_ones_then_rerun_fetches_only_what_is_missing(
    tmp_path: Path,
) -> None:
    files = {
        "v/a.mov": _bytes(300_000, 1),
        "v/b.avi": _bytes(5_000, 2),
        "v/cut.m4v": _bytes(200_000, 3),  # the first answer stops halfway: resumed with Range
        "v/odd": _bytes(4_000, 4),
    }
    served = {
        **files,
        "v/login.mp4": b"<!DOCTYPE html><title>Sign in</title>",  # HTML, not labelled so
    }
    dest = tmp_path / "originals"
    quota = {"v/quota.avi"}  # an HTML page labelled text/html
    with LocalServer(served, cut={"v/cut.m4v"}, html=quota, status={"v/broken.mp4": 500}) as server:
        url_list = _write_list(
            tmp_path / "urls.txt",
            [
                server.url("/v/a.mov"),
                server.url("/v/b.avi"),
                server.url("/v/cut.m4v"),
                f"{server.url('/v/odd')}\t{ODD_NAME}",
                server.url("/v/gone.3gp"),
                server.url("/v/broken.mp4"),
                server.url("/v/login.mp4"),
                server.url("/v/quota.avi"),
            ],
        )
        result = _fetch(url_list, dest)
        assert result.returncode == 1, result.stderr
        for path in ("v/a.mov", "v/b.avi", "v/cut.m4v"):
            assert (dest / path.rsplit("/", 1)[1]).read_bytes() == files[path]
        assert (dest / ODD_NAME).read_bytes() == files["v/odd"]
        assert not (tmp_path / "pwned").exists()
        assert "fetch: 4 ok, 4 failed" in result.stdout
        assert "FAILED gone.3gp (http://127.0.0.1" in result.stdout
        assert "HTTP 404 Not Found" in result.stdout
        assert "HTTP 500 Internal Server Error" in result.stdout
        assert "sent an HTML page ('Sign in'), not the file" in result.stdout
        assert "HTML page (Content-Type text/html)" in result.stdout
        assert not (dest / "login.mp4").exists() and not (dest / "gone.3gp").exists()
        assert not [p for p in dest.iterdir() if is_temporary(p)]
        status = _status(dest)
        assert status["cut.m4v"]["attempts"] == 2
        assert status["broken.mp4"]["attempts"] == 3  # a 5xx is retried
        assert status["gone.3gp"]["attempts"] == 1  # a 404 is not
        failed = {name for name, record in status.items() if record["status"] == "failed"}
        assert failed == {"gone.3gp", "broken.mp4", "login.mp4", "quota.avi"}
        assert {record["status"] for record in status.values()} == {"downloaded", "failed"}
        cut_requests = [r for r in server.requests if r.path == "/v/cut.m4v"]
        assert [r.range for r in cut_requests] == [None, f"bytes={len(files['v/cut.m4v']) // 2}-"]

        # The dead link comes back: the rerun asks only for what is still missing.
        server.files["v/gone.3gp"] = _bytes(1_000, 5)
        server.requests.clear()
        again = _fetch(url_list, dest)
        assert again.returncode == 1  # broken.mp4 and login.mp4 are still dead
        assert sorted({request.path for request in server.requests}) == [
            "/v/broken.mp4",
            "/v/gone.3gp",
            "/v/login.mp4",
            "/v/quota.avi",
        ]
        assert (dest / "gone.3gp").read_bytes() == server.files["v/gone.3gp"]
        assert _status(dest)["a.mov"]["status"] == "present"


def test_killed_download_resumes_where_it_stopped(tmp_path: Path) -> None:
    body = _bytes(400_000, 7)
    dest = tmp_path / "originals"
    partial = dest / ".big.mov.vlprep-tmp-partial"
    with LocalServer({"big.mov": body}, stall={"big.mov": 150_000}) as server:
        url_list = _write_list(tmp_path / "urls.txt", [server.url("/big.mov")])
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "pyutils.fetch.fetch_list", str(url_list), str(dest)]
        process = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
        while process.poll() is None and not (partial.exists() and partial.stat().st_size):
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (dest / "big.mov").exists()
        kept = partial.stat().st_size
        assert 0 < kept <= 150_000

        server.stall.clear()
        result = _fetch(url_list, dest)
        assert result.returncode == 0, result.stderr
        assert (dest / "big.mov").read_bytes() == body
        assert server.requests[-1].range == f"bytes={kept}-"
        assert not partial.exists()


def test_complete_partial_is_finished_without_a_body(tmp_path: Path) -> None:
    body = _bytes(10_000, 8)
    dest = tmp_path / "originals"
    dest.mkdir()
    (dest / ".whole.avi.vlprep-tmp-partial").write_bytes(body)  # killed right before the rename
    with LocalServer({"whole.avi": body}) as server:
        result = _fetch(_write_list(tmp_path / "urls.txt", [server.url("/whole.avi")]), dest)
        assert result.returncode == 0, result.stderr
        assert [r.status for r in server.requests] == [416]
    assert (dest / "whole.avi").read_bytes() == body


def test_bad_list_lines_are_usage_errors(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    cases = {
        "ftp://example.org/a.mp4": "urls.txt:3: not an http(s) URL",
        "http://example.org/dir/": "urls.txt:3: no usable file name",
        "http://example.org/a.mp4\nhttp://mirror.org/a.mp4": "urls.txt:4: 'a.mp4' is also the "
        "file name on line 3",
    }
    for content, message in cases.items():
        url_list = _write_list(tmp_path / "urls.txt", [content])
        result = _fetch(url_list, dest)
        assert result.returncode == 2
        assert message in result.stderr and "Traceback" not in result.stderr
    missing = _fetch(tmp_path / "nothing.txt", dest)
    assert missing.returncode == 2 and "URL list not found" in missing.stderr


def test_error_pages_in_any_dress_are_failures_listed_in_fetch_failures(tmp_path: Path) -> None:
    served = {
        "good.mp4": _bytes(3_000, 9),
        "denied.mp4": b'{"error": {"code": 403, "message": "Rate limit exceeded"}}',
        "page.avi": b"\xef\xbb\xbf<!-- cached -->\n<html><title>Quota</title>" + b" " * 2_000,
    }
    dest = tmp_path / "originals"
    with LocalServer(served) as server:
        url_list = _write_list(tmp_path / "urls.txt", [server.url(f"/{n}") for n in served])
        result = _fetch(url_list, dest)
    assert result.returncode == 1, result.stderr
    assert "fetch: 1 ok, 2 failed" in result.stdout
    assert (dest / "good.mp4").read_bytes() == served["good.mp4"]
    assert not (dest / "denied.mp4").exists() and not (dest / "page.avi").exists()
    lines = (dest / "fetch_failures.jsonl").read_bytes().splitlines()
    errors = {Path(f["item"].split(" ")[0]).name: f["error"] for f in map(orjson.loads, lines)}
    assert errors == {
        "denied.mp4": "the server sent a JSON error, not the file: Rate limit exceeded",
        "page.avi": "the server sent an HTML page ('Quota'), not the file "
        "(a quota, login or error page)",
    }
    assert [record["status"] for record in _status(dest).values()] == [
        "downloaded",
        "failed",
        "failed",
    ]


class _LyingServer:
    """A server that redirects to ftp://, redirects in a loop, or sends a file without a
    Content-Length and closes early: what LocalServer's honest answers never do."""

    def __enter__(self) -> str:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # no length: the body ends when the connection does

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path == "/to-ftp.mp4":
                    self.send_response(302)
                    self.send_header("Location", "ftp://127.0.0.1/secret.mp4")
                    self.end_headers()
                elif self.path == "/loop.mp4":
                    self.send_response(302)
                    self.send_header("Location", "/loop.mp4")
                    self.end_headers()
                else:  # half a "video", no Content-Length, then the connection closes
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_redirects_to_other_schemes_loops_and_unknown_lengths(tmp_path: Path) -> None:
    dest = tmp_path / "originals"
    with _LyingServer() as base:
        names = ("to-ftp.mp4", "loop.mp4", "nolength.mp4")
        url_list = _write_list(tmp_path / "urls.txt", [f"{base}/{name}" for name in names])
        result = _fetch(url_list, dest)
    assert result.returncode == 1
    status = _status(dest)
    assert (
        "redirect to 'ftp://127.0.0.1/secret.mp4': only http(s) is followed"
        in (status["to-ftp.mp4"]["error"])
    )
    assert status["loop.mp4"]["error"].startswith("redirect loop (HTTP 302")
    assert status["nolength.mp4"]["status"] == "downloaded"
    assert status["nolength.mp4"]["verified"] is False
    assert "1 file came without a length from the server" in result.stdout
    assert "first: nolength.mp4" in result.stdout


def test_list_entries_named_like_the_report_are_refused(tmp_path: Path) -> None:
    url_list = _write_list(tmp_path / "urls.txt", ["http://127.0.0.1:9/x\tfetch_status.jsonl"])
    result = _fetch(url_list, tmp_path / "dest")
    assert result.returncode == 2
    assert "urls.txt:3: 'fetch_status.jsonl' is the name of fetch's own report" in result.stderr


def test_a_gzip_encoded_answer_is_refused_not_saved_as_the_file(tmp_path: Path) -> None:
    body = _bytes(50_000, 9)
    dest = tmp_path / "originals"
    with LocalServer({"v/a.mp4": body, "v/b.mp4": body}, gzip={"v/a.mp4"}) as server:
        url_list = _write_list(
            tmp_path / "urls.txt", [server.url("/v/a.mp4"), server.url("/v/b.mp4")]
        )
        result = _fetch(url_list, dest)
    assert result.returncode == 1, result.stderr
    assert not (dest / "a.mp4").exists() and (dest / "b.mp4").read_bytes() == body
    assert "Content-Encoding: gzip" in _status(dest)["a.mp4"]["error"]
    assert [p for p in dest.iterdir() if is_temporary(p)] == []


def test_a_stalled_transfer_is_given_up_after_the_stated_limit(tmp_path: Path) -> None:
    dest = tmp_path / "originals"
    with LocalServer({"v/a.mp4": _bytes(50_000, 10)}, stall={"v/a.mp4": 1000}) as server:
        url_list = _write_list(tmp_path / "urls.txt", [server.url("/v/a.mp4")])
        start = time.monotonic()
        result = run_module(
            "pyutils.fetch.fetch_list",
            str(url_list),
            str(dest),
            "--retries",
            "0",
            "--timeout",
            "0.5",
        )
        took = time.monotonic() - start
    assert result.returncode == 1 and took < 10
    assert "given up after 0.5 s without a byte (FETCH_TIMEOUT)" in result.stderr
    assert _status(dest)["a.mp4"]["error"] == (
        "stalled: no byte for 0.5 s (the stall limit, FETCH_TIMEOUT=)"
    )


def test_names_of_231_to_251_bytes_get_temporaries_that_fit(tmp_path: Path) -> None:
    names = [f"{'é' * 100}{'v' * (length - 204)}.mp4" for length in (231, 251)]
    assert [len(name.encode()) for name in names] == [231, 251]
    files = {f"v/{n}": _bytes(30_000, n) for n, _ in enumerate(names)}
    dest = tmp_path / "originals"
    with LocalServer(files, stall=dict.fromkeys(files, 10_000)) as server:
        url_list = _write_list(
            tmp_path / "urls.txt",
            [f"{server.url(path)}\t{name}" for path, name in zip(files, names, strict=True)],
        )
        with subprocess.Popen(
            [sys.executable, "-m", "pyutils.fetch.fetch_list", str(url_list), str(dest)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stderr=subprocess.DEVNULL,
        ) as process:
            started = lambda: [p for p in dest.glob(".*") if p.stat().st_size]  # noqa: E731
            while len(started()) < 2:
                assert process.poll() is None
                time.sleep(0.01)
            process.kill()
        partials = [p for p in dest.iterdir() if is_temporary(p)]
        assert all(len(p.name.encode()) <= 255 for p in partials) and len(partials) == 2
        server.stall.clear()
        result = _fetch(url_list, dest)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir() if p.suffix == ".mp4") == sorted(names)
    assert all(r.range for r in server.requests[-2:])  # each resumed its own partial
