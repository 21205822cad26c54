"""Feishu's API calls over kept-alive sessions still honour the environment's proxy settings
(read once per host and thread, not on every call: adapters/chat/feishu/keepalive.py)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.chat.feishu.keepalive import _KeptAlive


@pytest.fixture
def proxy():
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a forward proxy gets the absolute URL
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def in_new_thread(fn):
    """Each thread has its own session (and its own reading of the environment)."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()))
    thread.start()
    thread.join(10)
    return out["value"]


def test_a_proxy_set_in_the_environment_carries_every_call(proxy, monkeypatch):
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    def two_calls():
        return [_KeptAlive.request("GET", f"http://feishu.test/open-apis/n{i}", timeout=5).text
                for i in range(2)]

    assert in_new_thread(two_calls) == ["ok", "ok"]
    assert seen == ["http://feishu.test/open-apis/n0", "http://feishu.test/open-apis/n1"]


def test_no_proxy_still_sends_that_host_directly(proxy, monkeypatch):
    url, seen = proxy
    port = url.rsplit(":", 1)[1]
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    answer = in_new_thread(lambda: _KeptAlive.request(
        "GET", f"http://127.0.0.1:{port}/open-apis/direct", timeout=5).text)
    assert answer == "ok" and seen == ["/open-apis/direct"]
