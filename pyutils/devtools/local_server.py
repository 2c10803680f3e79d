"""A small HTTP file server on 127.0.0.1, run as a thread: the tests' and the demo's "internet".

Python's http.server has no Range support, and the download path must be tested against a server
that resumes, cuts or stalls transfers, answers 404, 5xx or an HTML page instead of a file, and
shows what it was asked. Bound to 127.0.0.1 only; stopped when its `with` block ends.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>"
    b"<body>Too many users have viewed or downloaded this file recently.</body></html>"
)

TRICKLE_BYTES = 1024


class Request(NamedTuple):
    path: str
    range: str | None  # the Range header
    status: int


@dataclass
class LocalServer:
    """Serves `files` (path -> bytes; paths without the leading slash, changeable while running),
    each with an ETag of its content. `cut` paths stop half-way through their first full
    transfer, after which `changed` paths serve their new content (the file changed on the
    server); `whole` paths ignore Range and always answer 200; `stall` paths send that many
    bytes, then wait for `release()` (so a test can kill a client mid-transfer); `trickle` paths
    send one TRICKLE_BYTES piece every that many seconds until `release()` (a slow server, for
    interrupting transfers in flight); `gzip` paths answer with their content gzip-encoded
    whatever the client asked for (Content-Encoding: gzip: a server that ignores
    Accept-Encoding: identity); `html` paths answer 200 with an HTML page; `status` paths answer
    that error status; `redirect` paths answer 302 to another path; others answer 404."""

    files: dict[str, bytes]
    cut: set[str] = field(default_factory=set)
    changed: dict[str, bytes] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)
    redirect: dict[str, str] = field(default_factory=dict)
    html: set[str] = field(default_factory=set)
    status: dict[str, int] = field(default_factory=dict)
    stall: dict[str, int] = field(default_factory=dict)
    trickle: dict[str, float] = field(default_factory=dict)
    gzip: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> LocalServer:
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path.lstrip('/')}"

    def release(self) -> None:
        """Let stalled transfers finish."""
        self._released.set()

    def ranges_seen(self, path: str) -> list[str]:
        return [r.range for r in self.requests if r.path == "/" + path.lstrip("/") and r.range]


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0]
            wanted = self.headers.get("Range")
            key = path.lstrip("/")
            if key in server.html:
                return self._send(path, wanted, 200, HTML_PAGE, "text/html; charset=utf-8")
            if key in server.redirect:
                location = {"Location": "/" + server.redirect[key]}
                return self._send(path, wanted, 302, b"", headers=location)
            if key in server.status or key not in server.files:
                body = b"<html><body>Not Found</body></html>"
                return self._send(path, wanted, server.status.get(key, 404), body, "text/html")
            data = server.files[key]
            if key in server.gzip:
                encoded = {"Content-Encoding": "gzip"}
                return self._send(path, wanted, 200, gzip.compress(data, mtime=0), headers=encoded)
            etag = {"ETag": f'"{hashlib.sha256(data).hexdigest()[:16]}"'}
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
            if match is None or key in server.whole:
                cut_at = len(data) // 2 if key in server.cut else None
                if key in server.cut:
                    server.cut.discard(key)  # the next attempt gets the rest
                    server.files[key] = server.changed.pop(key, data)
                return self._send(path, wanted, 200, data, cut_at=cut_at, headers=etag, stall=key)
            start = int(match.group(1))
            if start >= len(data):
                extra = {"Content-Range": f"bytes */{len(data)}"}
                return self._send(path, wanted, 416, b"", headers=extra)
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            extra = {
                "Content-Range": f"bytes {start}-{min(end, len(data)) - 1}/{len(data)}",
                **etag,
            }
            return self._send(path, wanted, 206, data[start:end], headers=extra, stall=key)

        def _send(
            self,
            path: str,
            wanted: str | None,
            status: int,
            body: bytes,
            content_type: str = "application/octet-stream",
            cut_at: int | None = None,
            headers: dict[str, str] | None = None,
            stall: str = "",
        ) -> None:
            server.requests.append(Request(path, wanted, status))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            # The client may go away mid-body (a test killed it): nothing left to answer then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if cut_at is not None:
                    self.wfile.write(body[:cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if stall in server.trickle:
                    while body and not server._released.wait(server.trickle[stall]):
                        self.wfile.write(body[:TRICKLE_BYTES])
                        self.wfile.flush()
                        body = body[TRICKLE_BYTES:]
                if stall in server.stall:
                    sent = server.stall[stall]
                    self.wfile.write(body[:sent])
                    self.wfile.flush()
                    server._released.wait(timeout=30)
                    body = body[sent:]
                self.wfile.write(body)

    return Handler
