"""A local HTTP-JSON source for the decisions tests: campaign results and competitors'
prices. ``GET <path>`` answers ``{"<key>": items}`` (or the bare list with ``bare=True``).
Scripted trouble, answered first and in order: an HTTP status (429 carries
``Retry-After: 0``) or ``"garbage"`` (a body that is not JSON). Requests are logged with
their headers, so a test can see the Bearer token went out."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FeedServer:
    def __init__(self, items: list[Any] | None = None, key: str = "items",
                 bare: bool = False) -> None:
        self.items: list[Any] = list(items or [])
        self.key, self.bare = key, bare
        self.trouble: list[Any] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, dict(self.headers.items())))
                if server.trouble:
                    trouble = server.trouble.pop(0)
                    if trouble == "garbage":
                        self._send(200, b"<html>gateway hiccup</html>", "text/html")
                    else:
                        self._send(int(trouble), b'{"error": "busy"}',
                                   {"Retry-After": "0"} if trouble == 429 else {})
                    return
                body = server.items if server.bare else {server.key: server.items}
                self._send(200, json.dumps(body, ensure_ascii=False).encode())

            def _send(self, status: int, body: bytes, kind: str = "application/json",
                      headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/feed"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
