"""A local JD open-platform router (JOS ``routerjson``) and OAuth endpoint on 127.0.0.1.

It checks every request the way the gateway does — the system parameters are there, the
timestamp is ``yyyy-MM-dd HH:mm:ss``, ``v`` is 2.0, ``360buy_param_json`` is JSON and the
``sign`` is the MD5 of the sorted name+value pairs wrapped in the app secret (computed here
independently of PromoPilot's code) — and answers in JOS's shapes: ``{"<method>_responce":
{"code": "0", …}}`` or ``{"error_response": {"code", "zh_desc", "en_desc"}}``.

The shop's promotions live here: created, SKUs added (``sku_rejects``: JD SKU id → the
reason JD gives), committed — then waiting for the shop's checker (promo_status 3, 人工审)
until the test plays the checker with ``check(promo_id, passed)``.

Faults per method (``faults[method]``, a queue): ``"429"`` (Retry-After: 1), ``"rate"``
(code 61), ``"500"``, ``"timeout"`` (late, changes nothing), ``"commit-then-timeout"`` (the
change IS made, the answer comes too late). ``expire_token()``: code 19 for the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def reference_sign(params: dict[str, str], secret: str) -> str:
    """JOS's documented algorithm, written out again for the fake."""
    text = secret
    for name in sorted(params):
        if name != "sign":
            text += name + params[name]
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest().upper()


class FakeJd:
    def __init__(self, *, slow_seconds: float = 1.2) -> None:
        self.app_key = "jd-app"
        self.app_secret = "jd-secret-" + secrets.token_hex(4)
        self.access_token = "jd-at-" + secrets.token_hex(4)
        self.refresh_token = "jd-rt-" + secrets.token_hex(4)
        self.expired: set[str] = set()
        self.refreshes = 0
        self.slow_seconds = slow_seconds
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[tuple[str, dict]] = []
        self.bad_signatures = 0
        self.need_manual_check = True
        self.promos: dict[str, dict] = {}  # promo_id → {name, status, skus: {sku_id: {…}}}
        self.sku_rejects: dict[str, str] = {}  # JD SKU id → JD's reason at sku.add
        self._ids = itertools.count(7700001)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{base}/routerjson"
        self.oauth_url = f"{base}/oauth2/refresh_token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeJd:
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

    def check(self, promo_id: str, passed: bool = True) -> None:
        """The shop's checker decides in JD's back office (促销审核)."""
        self.promos[str(promo_id)]["status"] = 5 if passed else 1

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def reply(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)

            def do_GET(self) -> None:
                query = dict(parse_qsl(urlsplit(self.path).query))
                self.reply(*fake.oauth(query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                self.reply(*fake.handle(form))

        return Handler

    @staticmethod
    def _error(code: str, zh: str, en: str = "error") -> tuple[int, dict, dict]:
        return 200, {"error_response": {"code": code, "zh_desc": zh, "en_desc": en}}, {}

    @staticmethod
    def _ok(method: str, body: dict) -> tuple[int, dict, dict]:
        return 200, {method.replace(".", "_") + "_responce": {"code": "0", **body}}, {}

    def oauth(self, q: dict[str, str]) -> tuple[int, dict, dict]:
        with self.lock:
            self.calls.append(("oauth2/refresh_token", dict(q)))
        if q.get("app_key") != self.app_key or q.get("app_secret") != self.app_secret:
            return 200, {"code": 401, "msg": "app_key或app_secret错误"}, {}
        if q.get("grant_type") != "refresh_token" or q.get("refresh_token") != self.refresh_token:
            return 200, {"code": 402, "msg": "refresh_token无效"}, {}
        with self.lock:
            self.refreshes += 1
            self.access_token = "jd-at-" + secrets.token_hex(4)
            self.refresh_token = "jd-rt-" + secrets.token_hex(4)
        return 200, {"code": 0, "access_token": self.access_token, "expires_in": 86400,
                     "refresh_token": self.refresh_token, "token_type": "bearer"}, {}

    def handle(self, p: dict[str, str]) -> tuple[int, dict, dict]:
        method = p.get("method", "")
        with self.lock:
            self.calls.append((method, dict(p)))
        for needed in ("method", "app_key", "timestamp", "v", "360buy_param_json", "sign"):
            if not p.get(needed):
                return self._error("10", f"缺少参数{needed}", f"missing {needed}")
        if p["app_key"] != self.app_key:
            return self._error("15", "app_key无效", "invalid app_key")
        if not STAMP.match(p["timestamp"]) or p["v"] != "2.0":
            return self._error("12", "timestamp或v格式错误", "bad timestamp or v")
        if reference_sign(p, self.app_secret) != p["sign"]:
            self.bad_signatures += 1
            return self._error("14", "签名无效", "invalid sign")
        if p.get("access_token") in self.expired:
            return self._error("19", "token已过期或者不存在，请重新授权访问", "Invalid access_token")
        if p.get("access_token") != self.access_token:
            return self._error("18", "access_token无效", "invalid access_token")
        try:
            business = json.loads(p["360buy_param_json"])
        except ValueError:
            return self._error("13", "360buy_param_json格式错误", "bad json")
        fault = self.faults[method].popleft() if self.faults[method] else None
        if fault == "429":
            return 429, {"error_response": {"code": "61", "zh_desc": "调用频率超限"}}, {
                "Retry-After": "1"}
        if fault == "rate":
            return self._error("61", "调用频率超限", "call limited")
        if fault == "500":
            return 500, {"error": "internal"}, {}
        if fault == "timeout":
            time.sleep(self.slow_seconds)
            return self._error("1", "服务不可用", "late")
        answer = self.route(method, business)
        if fault == "commit-then-timeout":
            time.sleep(self.slow_seconds)
        return answer

    def route(self, method: str, b: dict) -> tuple[int, dict, dict]:
        if method == "jingdong.seller.promotion.add":
            if not b.get("name") or int(b.get("type") or 0) != 1 or not b.get("begin_time"):
                return self._error("3001", "促销参数不完整", "bad promotion")
            promo_id = str(next(self._ids))
            with self.lock:
                self.promos[promo_id] = {"name": b["name"], "status": 0, "skus": {},
                                         "begin": b["begin_time"], "end": b.get("end_time")}
            return self._ok(method, {"promo_id": int(promo_id)})
        promo = self.promos.get(str(b.get("promo_id") or ""))
        if method == "jingdong.seller.promotion.v2.list":
            found = [{"promo_id": int(k), "promo_name": v["name"], "promo_status": v["status"]}
                     for k, v in self.promos.items() if str(b.get("name") or "") in v["name"]]
            return self._ok(method, {"promotion_list": found})
        if promo is None:
            return self._error("3002", "促销不存在", "no such promotion")
        if method == "jingdong.seller.promotion.sku.add":
            sku_id = str(b.get("sku_ids") or "")
            if sku_id in self.sku_rejects:
                return self._error("3003", self.sku_rejects[sku_id], "sku refused")
            if promo["status"] != 0:
                return self._error("3004", "促销已提交，不能再添加商品", "committed")
            promo["skus"][sku_id] = {"sku_id": int(sku_id), "jd_price": b.get("jd_prices"),
                                     "promo_price": b.get("promo_prices"),
                                     "item_num": b.get("num"), "sku_status": 1}
            return self._ok(method, {"ids": [sku_id]})
        if method == "jingdong.seller.promotion.commit":
            if promo["status"] == 0:
                promo["status"] = 3 if self.need_manual_check else 5
            return self._ok(method, {"success": True})
        if method == "jingdong.seller.promotion.v2.get":
            return self._ok(method, {"jos_promotion": {
                "promo_id": int(b["promo_id"]), "promo_name": promo["name"], "promo_type": 1,
                "promo_status": promo["status"], "need_manual_check": self.need_manual_check,
                "begin_time": promo["begin"], "end_time": promo["end"]}})
        if method == "jingdong.seller.promotion.v2.sku.list":
            return self._ok(method, {"promotion_sku_list": list(promo["skus"].values())})
        if method == "jingdong.seller.promotion.v2.remove":
            promo["status"] = 7
            return self._ok(method, {"remove_result": True})
        return self._error("2", f"未知接口{method}", "unknown method")
