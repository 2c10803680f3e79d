"""A local HTTP file server for download tests: Range requests, scripted failures, a request log.

    with LocalServer({"/a.mp4": Route(body=b"...")}) as server:
        server.url("/a.mp4")   # http://127.0.0.1:<port>/a.mp4
        server.requests        # [Request(path="/a.mp4", range=None, status=200), ...]

A path with no route is a 404. A route can answer with an error status, cut the connection after
some bytes for its first `cuts` requests, or stall after some bytes until `release()` (so a test can
kill a client in the middle of a transfer).
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    cuts: int = 0  # the first `cuts` full-body answers stop halfway and drop the connection
    stall_after: int | None = None  # send this many bytes, then wait for LocalServer.release()


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    status: int


class LocalServer:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def paths_requested(self) -> list[str]:
        return [request.path for request in self.requests]

    def release(self) -> None:
        self._released.set()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
            pass  # the request log is `server.requests`, not stderr

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            route = server.routes.get(path)
            wanted = self.headers.get("Range")
            if route is None or route.status != 200:
                status = route.status if route else 404
                server._record(Request(path, wanted, status))
                self.send_error(status)
                return
            body, start = route.body, 0
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
            if match:
                start = int(match.group(1))
                if start >= len(body):
                    server._record(Request(path, wanted, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = int(match.group(2)) + 1 if match.group(2) else len(body)
                body = body[start:end]
            status = 206 if match else 200
            server._record(Request(path, wanted, status))
            self.send_response(status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body)))
            if match:
                last = start + len(body) - 1
                self.send_header("Content-Range", f"bytes {start}-{last}/{len(route.body)}")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            # The client may go away mid-body (a test killed it): nothing left to answer then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send_body(route, body, partial=bool(match))

        def _send_body(self, route: Route, body: bytes, partial: bool) -> None:
            if route.cuts > 0 and not partial:
                route.cuts -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if route.stall_after is not None:
                self.wfile.write(body[: route.stall_after])
                self.wfile.flush()
                server._released.wait(timeout=30)
                body = body[route.stall_after :]
            self.wfile.write(body)

    return Handler
