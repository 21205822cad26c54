"""A local ERP inventory API in the 聚水潭 style, for the cost sync tests.

``POST /open/inventory/query`` with ``{"page_index": n, "page_size": m, …}`` answers
``{"code": 0, "msg": "执行成功", "data": {"page_index", "page_size", "data_count",
"page_count", "has_next", "datas": [...]}}`` — the rows are whatever the test puts in
``rows`` (good, bad, or not rows at all). Scripted trouble, answered first and in order:
an HTTP status (429 carries ``Retry-After``), ``"garbage"`` (a body that is not JSON) or
``("code", n)`` (a business error). Every request is logged with its headers and body.

``ErpServer(jushuitan=(app_key, app_secret, access_token))`` speaks 聚水潭's open platform
instead: a form-encoded POST whose ``biz`` holds the JSON body, signed as its documentation
says (``sign`` = lower-case hex MD5 of the secret, then every other field as name and value,
sorted by name, empty ones left out), checked here with its own code. A missing field, an
unknown key or token, a timestamp more than ten minutes off or a wrong sign answers a
business error (the code numbers are this fake's, the messages 聚水潭's wording).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

PATH = "/open/inventory/query"


def jst_row(sku: str, cost: Any = "38.50", qty: Any = 800, order_lock: Any = 20,
            purchase_qty: Any = 200, min_qty: Any = 100, **extra: Any) -> dict:
    """One row as 聚水潭's inventory query lists it (cost joined in from its SKU data)."""
    return {"sku_id": sku, "i_id": sku.split("-")[0], "name": f"商品 {sku}", "cost_price": cost,
            "qty": qty, "order_lock": order_lock, "pick_lock": 0, "virtual_qty": 0,
            "purchase_qty": purchase_qty, "return_qty": 0, "in_qty": 0, "defective_qty": 0,
            "min_qty": min_qty, "max_qty": 5000, "modified": "2026-11-30 10:00:00", **extra}


class ErpServer:
    def __init__(self, rows: list[Any] | None = None, retry_after: str = "1",
                 jushuitan: tuple[str, str, str] | None = None) -> None:
        self.jushuitan = jushuitan
        self.rows: list[Any] = list(rows or [])
        self.trouble: list[Any] = []
        self.retry_after = retry_after
        self.requests: list[tuple[str, dict[str, str], dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                if server.jushuitan is not None:
                    form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"),
                                                         keep_blank_values=True).items()}
                    server.requests.append((self.path, dict(self.headers.items()), form))
                    refused, body = server.signed(self.headers.get("Content-Type", ""), form)
                    if refused:
                        self._send(200, json.dumps({"code": refused[0], "msg": refused[1],
                                                    "data": None}).encode())
                        return
                else:
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        body = {}
                    server.requests.append((self.path, dict(self.headers.items()), body))
                if self.path.split("?")[0] != PATH:
                    self._send(404, b'{"code": 404, "msg": "not found"}')
                    return
                if server.trouble:
                    trouble = server.trouble.pop(0)
                    if trouble == "garbage":
                        self._send(200, b"<html>gateway hiccup</html>", "text/html")
                    elif isinstance(trouble, tuple):
                        self._send(200, json.dumps({"code": trouble[1], "msg": "限流,请稍后再试",
                                                    "data": None}).encode())
                    else:
                        headers = {"Retry-After": server.retry_after} if trouble == 429 else {}
                        self._send(int(trouble), b'{"code": 500, "msg": "busy"}', headers=headers)
                    return
                self._send(200, json.dumps(server.page(body), ensure_ascii=False).encode())

            def _send(self, status: int, payload: bytes, content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}{PATH}"

    def signed(self, content_type: str, form: dict[str, str]) -> tuple[tuple | None, dict]:
        """(code, message) when 聚水潭 would refuse the call, else None, and its ``biz``."""
        assert self.jushuitan is not None
        app_key, secret, token = self.jushuitan
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return (10, "请求格式错误:须为表单"), {}
        needed = ("app_key", "access_token", "timestamp", "charset", "version", "biz", "sign")
        if any(not form.get(name) for name in needed):
            return (11, "缺少公共参数"), {}
        if form["app_key"] != app_key or form["access_token"] != token:
            return (100, "app_key或access_token无效"), {}
        if abs(time.time() - int(form["timestamp"])) > 600:
            return (101, "timestamp已过期"), {}
        text = secret + "".join(f"{k}{v}" for k, v in sorted(form.items())
                                if k != "sign" and v != "")
        if form["sign"] != hashlib.md5(text.encode("utf-8")).hexdigest():
            return (102, "签名错误"), {}
        try:
            return None, json.loads(form["biz"])
        except ValueError:
            return (12, "biz不是JSON"), {}

    def page(self, body: dict) -> dict:
        index = int(body.get("page_index") or 1)
        size = int(body.get("page_size") or 50)
        rows = self.rows[(index - 1) * size: index * size]
        pages = max(1, -(-len(self.rows) // size))
        return {"code": 0, "msg": "执行成功", "data": {
            "page_index": index, "page_size": size, "data_count": len(self.rows),
            "page_count": pages, "has_next": index < pages, "datas": rows}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
