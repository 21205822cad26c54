"""A local announcement server for watcher tests: serves files or bodies per path, with
ETag / Last-Modified (answers 304 to a matching conditional GET), scripted failures
(status codes, delays) and a log of what was asked."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    failures: list[int] = field(default_factory=list)  # statuses to answer first, in order
    etag: bool = True
    headers: dict[str, str] = field(default_factory=dict)


class NoticeServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.failures:
                    status = route.failures.pop(0)
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b"upstream trouble")
                    return
                etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                if route.etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                if route.etag:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", "Wed, 25 Nov 2026 08:00:00 GMT")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(route.body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"

    def serve(self, path: str, body: bytes | str, content_type: str | None = None,
              **kw) -> str:
        data = body.encode() if isinstance(body, str) else body
        route = self.routes.get(path) or Route()
        route.body = data
        if content_type:
            route.content_type = content_type
        for key, value in kw.items():
            setattr(route, key, value)
        self.routes[path] = route
        return self.base + path

    def fixture(self, path: str, name: str, content_type: str) -> str:
        return self.serve(path, (FIXTURES / name).read_bytes(), content_type)

    def asked(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
