"""A small HTTP file server on 127.0.0.1, run as a thread: the tests' and the demo's "internet".

Python's http.server has no Range support, and the download path must be tested against a server
that resumes, cuts transfers, answers 404 or an HTML page instead of a file, and shows what it was
asked. Bound to 127.0.0.1 only; stopped when its `with` block ends.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>"
    b"<body>Too many users have viewed or downloaded this file recently.</body></html>"
)


@dataclass
class LocalServer:
    """Serves `files` (path -> bytes). `cut` paths stop half-way through their first full
    transfer; `html` paths answer 200 with an HTML page; unknown paths answer 404."""

    files: dict[str, bytes]
    cut: set[str] = field(default_factory=set)
    html: set[str] = field(default_factory=set)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)

    def __enter__(self) -> LocalServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path.lstrip('/')}"

    def ranges_seen(self, path: str) -> list[str]:
        return [r for p, r in self.requests if p == "/" + path.lstrip("/") and r]


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?")[0]
            server.requests.append((path, self.headers.get("Range")))
            key = path.lstrip("/")
            if key in server.html:
                return self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            if key not in server.files:
                return self._send(404, b"<html><body>Not Found</body></html>", "text/html")
            data = server.files[key]
            start = _range_start(self.headers.get("Range"))
            if start is None:
                if key in server.cut:
                    server.cut.discard(key)  # the next attempt gets the rest
                    return self._send(200, data, cut_at=len(data) // 2)
                return self._send(200, data)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            return self._send(206, data[start:], headers=extra)

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "application/octet-stream",
            cut_at: int | None = None,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body if cut_at is None else body[:cut_at])
            if cut_at is not None:
                self.wfile.flush()
                self.close_connection = True

    return Handler


def _range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else None
