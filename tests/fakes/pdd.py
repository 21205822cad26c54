"""A local Pinduoduo open-platform router on 127.0.0.1 for contract tests.

It checks every request the way the gateway does — the system parameters are there and the
``sign`` is the MD5 of the sorted name+value pairs wrapped in the client secret (computed
here independently of PromoPilot's code) — and answers in PDD's shapes: ``{"<name>_response":
{…}}`` or ``{"error_response": {"error_code", "error_msg", "sub_msg", "request_id"}}``.

Scripted faults per API type (``faults[type]``, a queue): ``"429"`` (HTTP 429, Retry-After),
``"rate"`` (error 70031), ``"500"``, ``"timeout"`` (answers late, changes nothing),
``"commit-then-timeout"`` (the activity IS created, the answer comes too late).
``expire_token()`` makes the current access token expired (error 10019).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


def reference_sign(params: dict[str, str], secret: str) -> str:
    """PDD's documented algorithm, written out again for the fake (not PromoPilot's code)."""
    pieces = [secret]
    for name in sorted(k for k in params if k != "sign"):
        pieces.append(name)
        pieces.append(params[name])
    pieces.append(secret)
    return hashlib.md5("".join(pieces).encode("utf-8")).hexdigest().upper()


class FakePdd:
    def __init__(self, *, slow_seconds: float = 1.5) -> None:
        self.client_id = "pp-client"
        self.client_secret = "pp-secret-" + secrets.token_hex(4)
        self.access_token = "at-" + secrets.token_hex(4)
        self.refresh_token = "rt-" + secrets.token_hex(4)
        self.expired: set[str] = set()
        self.refreshes = 0
        self.slow_seconds = slow_seconds
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[tuple[str, dict]] = []
        self.bad_signatures = 0
        self.invitations: list[dict] = []
        self.goods: dict[int, dict] = {}  # goods_id → {valid, reason, skus: {sku_id: {…}}}
        self.rejects: dict[int, str] = {}  # goods_id → fail_reason at create
        self.activities: list[dict] = []
        self._ids = itertools.count(880001)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/router"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakePdd:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def credentials(self) -> dict:
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "access_token": self.access_token, "refresh_token": self.refresh_token}

    def expire_token(self) -> None:
        self.expired.add(self.access_token)

    def created(self, goods_id: int) -> list[dict]:
        return [a for a in self.activities if a["goods_id"] == goods_id]

    def types(self) -> list[str]:
        return [t for t, _ in self.calls]

    # -- the router -----------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def reply(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                status, body, headers = fake.handle(params)
                self.reply(status, body, headers)

        return Handler

    def _error(self, code: int, msg: str) -> tuple[int, dict, dict]:
        return 200, {"error_response": {"error_code": code, "error_msg": msg, "sub_msg": "",
                                        "request_id": secrets.token_hex(6)}}, {}

    def handle(self, p: dict[str, str]) -> tuple[int, dict, dict]:
        api = p.get("type", "")
        with self.lock:
            self.calls.append((api, dict(p)))
        for needed in ("type", "client_id", "timestamp", "data_type", "sign"):
            if not p.get(needed):
                return self._error(10000, f"缺少参数 {needed}")
        if p["client_id"] != self.client_id:
            return self._error(10001, "client_id 不存在")
        if reference_sign(p, self.client_secret) != p["sign"]:
            self.bad_signatures += 1
            return self._error(20004, "签名错误")
        if api == "pdd.pop.auth.token.refresh":
            return self._refresh(p)
        token = p.get("access_token", "")
        if token in self.expired:
            return self._error(10019, "access_token已过期")
        if token != self.access_token:
            return self._error(10020, "access_token 无效")
        fault = self.faults[api].popleft() if self.faults[api] else None
        if fault == "429":
            return 429, {"error_response": {"error_code": 70031, "error_msg": "调用过于频繁"}}, {
                "Retry-After": "1"}
        if fault == "rate":
            return self._error(70031, "调用太频繁,请调整调用频率")
        if fault == "500":
            return 500, {"error": "internal"}, {}
        if fault == "timeout":
            time.sleep(self.slow_seconds)
            return self._error(50000, "late")
        answer = self.route(api, p)
        if fault == "commit-then-timeout":
            time.sleep(self.slow_seconds)
        return answer

    def _refresh(self, p: dict[str, str]) -> tuple[int, dict, dict]:
        if p.get("refresh_token") != self.refresh_token:
            return self._error(10020, "refresh_token 无效")
        with self.lock:
            self.refreshes += 1
            self.access_token = "at-" + secrets.token_hex(4)
            self.refresh_token = "rt-" + secrets.token_hex(4)
        return 200, {"pop_auth_token_refresh_response": {
            "access_token": self.access_token, "refresh_token": self.refresh_token,
            "expires_in": 86400, "owner_id": "shop-1"}}, {}

    def route(self, api: str, p: dict[str, str]) -> tuple[int, dict, dict]:
        if api == "pdd.promotion.invitation.list.get":
            return 200, {"invitation_list_get_response": {
                "total": len(self.invitations), "invitation_list": self.invitations}}, {}
        if api == "pdd.promotion.limited.qualified.goods.get":
            wanted = json.loads(p.get("goods_id_list") or "[]")
            goods = []
            for goods_id in wanted:
                g = self.goods.get(int(goods_id))
                if g is None:
                    continue
                goods.append({"goods_id": goods_id, "is_valid": g.get("valid", True),
                              "invalid_reason": g.get("reason", ""),
                              "sku_list": [{"sku_id": sku_id, **s} for sku_id, s in
                                           g.get("skus", {}).items()]})
            return 200, {"limited_qualified_goods_get_response": {"goods_list": goods}}, {}
        if api == "pdd.promotion.limited.activity.create":
            results = []
            for req in json.loads(p.get("request") or "[]"):
                goods_id = int(req["goods_id"])
                if goods_id in self.rejects:
                    results.append({"goods_id": goods_id, "success": False,
                                    "fail_reason": self.rejects[goods_id]})
                    continue
                if any(a["status"] == 1 for a in self.created(goods_id)):
                    results.append({"goods_id": goods_id, "success": False,
                                    "fail_reason": "该商品已存在进行中的限时限量购活动"})
                    continue
                activity = {"activity_id": next(self._ids), "goods_id": goods_id,
                            "activity_name": req["activity_name"], "status": 1,
                            "sku_price_list": req.get("sku_price_list") or []}
                with self.lock:
                    self.activities.append(activity)
                results.append({"goods_id": goods_id, "success": True,
                                "activity_id": activity["activity_id"]})
            return 200, {"limited_activity_create_response": {"result_list": results}}, {}
        if api == "pdd.promotion.limited.discount.list.get":
            wanted = {int(g) for g in json.loads(p.get("goods_id_list") or "[]")}
            found = [a for a in self.activities if a["goods_id"] in wanted]
            return 200, {"limited_discount_list_get_response": {"total": len(found),
                                                                "activity_list": found}}, {}
        if api == "pdd.promotion.limited.activity.cancel":
            for a in self.activities:
                if a["activity_id"] == int(p.get("detail_id") or 0):
                    a["status"] = 4
            return 200, {"limited_activity_cancel_response": {"result": True}}, {}
        return self._error(10002, f"未知接口 {api}")
