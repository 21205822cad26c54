"""A local Taobao open-platform router (TOP ``router/rest``) on 127.0.0.1.

It checks every request the way TOP does — the system parameters, the GMT+8 timestamp,
``format=json``, ``v=2.0`` and the ``sign`` per ``sign_method`` (``md5``: MD5 of the secret +
the sorted name+value pairs + the secret; ``hmac``: HMAC-MD5 of the pairs keyed with the
secret; ``hmac-sha256``), computed here independently of PromoPilot's code — and answers in
TOP's shapes: ``{"<method>_response": {…}}`` with lists wrapped in their struct name, or
``{"error_response": {"code", "msg", "sub_code", "sub_msg", "request_id"}}``.

The shop's item activities live here (``activities``, at most ``quota``), with their item
details; ``item_rejects``: item id → TOP's reason at ``detail.add``. Faults per method
(``faults[method]``): ``"429"`` (Retry-After: 1), ``"rate"`` (code 7), ``"isp"`` (code 15,
isp.*), ``"500"``, ``"timeout"``, ``"commit-then-timeout"``. ``expire_token()``: code 27.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def reference_sign(params: dict[str, str], secret: str, method: str) -> str:
    """TOP's documented algorithm, written out again for the fake."""
    joined = "".join(name + params[name] for name in sorted(params) if name != "sign")
    if method == "md5":
        return hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest().upper()
    algo = hashlib.md5 if method == "hmac" else hashlib.sha256
    return hmac.new(secret.encode("utf-8"), joined.encode("utf-8"), algo).hexdigest().upper()


class FakeTop:
    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        self.app_key = "12345678"
        self.app_secret = "top-secret-" + secrets.token_hex(4)
        self.access_token = "6100" + secrets.token_hex(8)
        self.refresh_token = "6101" + secrets.token_hex(8)
        self.expired: set[str] = set()
        self.refreshes = 0
        self.slow_seconds = slow_seconds
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[tuple[str, dict]] = []
        self.bad_signatures = 0
        self.quota = 30
        self.activities: dict[str, dict] = {}  # activity id → {name, details: {item: {…}}}
        self.item_rejects: dict[str, str] = {}  # item id → TOP's sub_msg at detail.add
        self._ids = itertools.count(3300001)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/router/rest"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeTop:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def credentials(self) -> dict:
        return {"app_key": self.app_key, "app_secret": self.app_secret,
                "access_token": self.access_token, "refresh_token": self.refresh_token}

    def expire_token(self) -> None:
        self.expired.add(self.access_token)

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def fill(self, n: int) -> None:
        """The shop already holds ``n`` activities of its own."""
        for _ in range(n):
            activity_id = str(next(self._ids))
            self.activities[activity_id] = {"name": f"店铺活动{activity_id}", "details": {}}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                status, body, headers = fake.handle(form)
                data = json.dumps(body, ensure_ascii=False).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)

        return Handler

    @staticmethod
    def _error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> tuple:
        body = {"code": code, "msg": msg, "request_id": secrets.token_hex(6)}
        if sub_code:
            body |= {"sub_code": sub_code, "sub_msg": sub_msg}
        return 200, {"error_response": body}, {}

    @staticmethod
    def _ok(method: str, body: dict) -> tuple:
        name = method.removeprefix("taobao.").replace(".", "_") + "_response"
        return 200, {name: {**body, "request_id": secrets.token_hex(6)}}, {}

    def handle(self, p: dict[str, str]) -> tuple:
        method = p.get("method", "")
        with self.lock:
            self.calls.append((method, dict(p)))
        for needed in ("method", "app_key", "timestamp", "format", "v", "sign_method", "sign"):
            if not p.get(needed):
                return self._error(40, "Missing required arguments", f"missing-{needed}")
        if p["app_key"] != self.app_key:
            return self._error(29, "Invalid app Key")
        if not STAMP.match(p["timestamp"]) or p["v"] != "2.0" or p["format"] != "json":
            return self._error(28, "Invalid timestamp or version")
        if p["sign_method"] not in ("md5", "hmac", "hmac-sha256"):
            return self._error(41, "Invalid arguments", "isv.invalid-sign-method")
        if reference_sign(p, self.app_secret, p["sign_method"]) != p["sign"]:
            self.bad_signatures += 1
            return self._error(25, "Invalid signature")
        if method == "taobao.top.auth.token.refresh":
            return self._refresh(p)
        if not p.get("session"):
            return self._error(26, "Missing session")
        if p["session"] in self.expired:
            return self._error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")
        if p["session"] != self.access_token:
            return self._error(53, "Insufficient session permissions")
        fault = self.faults[method].popleft() if self.faults[method] else None
        if fault == "429":
            return 429, {"error_response": {"code": 7, "msg": "App Call Limited"}}, {
                "Retry-After": "1"}
        if fault == "rate":
            return self._error(7, "App Call Limited", "accesscontrol.limited-by-api-access-count",
                               "This ban will last for 1 more seconds")
        if fault == "isp":
            return self._error(15, "Remote service error", "isp.top-remote-connection-timeout",
                               "远程服务调用超时")
        if fault == "500":
            return 500, {"error": "internal"}, {}
        if fault == "timeout":
            time.sleep(self.slow_seconds)
            return self._error(15, "Remote service error", "isp.late")
        answer = self.route(method, p)
        if fault == "commit-then-timeout":
            time.sleep(self.slow_seconds)
        return answer

    def _refresh(self, p: dict[str, str]) -> tuple:
        if p.get("refresh_token") != self.refresh_token:
            return self._error(15, "Remote service error", "isv.refresh-token-invalid",
                               "refresh_token无效")
        with self.lock:
            self.refreshes += 1
            self.access_token = "6100" + secrets.token_hex(8)
            self.refresh_token = "6101" + secrets.token_hex(8)
        token = {"access_token": self.access_token, "refresh_token": self.refresh_token,
                 "expires_in": 86400, "taobao_user_nick": "旗舰店"}
        return self._ok("taobao.top.auth.token.refresh",
                        {"token_result": json.dumps(token, ensure_ascii=False)})

    def route(self, method: str, p: dict[str, str]) -> tuple:
        if method == "taobao.promotionmisc.common.item.activity.list.get":
            rows = [{"activity_id": int(k), "name": v["name"]} for k, v in self.activities.items()]
            size, page = int(p.get("page_size") or 20), int(p.get("page_no") or 1)
            return self._ok(method, {"total_count": len(rows), "is_success": True, "activity_list": {
                "common_item_activity": rows[(page - 1) * size:page * size]}})
        if method == "taobao.promotionmisc.common.item.activity.add":
            if len(self.activities) >= self.quota:
                return self._error(15, "Remote service error", "isv.activity-count-limit",
                                   "活动数量已达上限")
            if len(p.get("name") or "") > 32 or not p.get("start_time"):
                return self._error(15, "Remote service error", "isv.invalid-parameter",
                                   "活动名称不能超过32个字符")
            activity_id = str(next(self._ids))
            with self.lock:
                self.activities[activity_id] = {"name": p["name"], "details": {},
                                                "start": p["start_time"], "end": p["end_time"]}
            return self._ok(method, {"activity_id": int(activity_id), "is_success": True})
        activity = self.activities.get(p.get("activity_id") or "")
        if activity is None:
            return self._error(15, "Remote service error", "isv.activity-not-exist", "活动不存在")
        if method == "taobao.promotionmisc.common.item.activity.delete":
            del self.activities[p["activity_id"]]
            return self._ok(method, {"is_success": True})
        if method == "taobao.promotionmisc.common.item.detail.add":
            item_id = p.get("item_id") or ""
            if item_id in self.item_rejects:
                return self._error(15, "Remote service error", "isv.discount-lower-than-min",
                                   self.item_rejects[item_id])
            if item_id in activity["details"]:
                return self._error(15, "Remote service error", "isv.detail-exist", "该商品已存在优惠")
            detail_id = next(self._ids)
            activity["details"][item_id] = {"detail_id": detail_id, "item_id": int(item_id),
                                            "promotion_type": int(p["promotion_type"]),
                                            "promotion_value": int(p["promotion_value"])}
            return self._ok(method, {"detail_id": detail_id, "is_success": True})
        if method == "taobao.promotionmisc.common.item.detail.list.get":
            rows = list(activity["details"].values())
            return self._ok(method, {"total_count": len(rows), "is_success": True,
                                     "detail_list": {"common_item_detail": rows}})
        return self._error(22, "Invalid method")
