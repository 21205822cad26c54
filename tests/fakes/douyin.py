"""A local 抖店 open platform (``openapi-fxg``) on 127.0.0.1.

It checks every request the way the gateway does — the path is the method with "." → "/",
the query has ``app_key``, ``method``, ``timestamp`` (unix seconds), ``v=2``,
``sign_method`` and ``sign``, the body is ``param_json`` with sorted keys and no spaces, and
the sign is HMAC-SHA256 (or MD5) of ``app_key…method…param_json…timestamp…v…`` wrapped in
the app secret (computed here independently of PromoPilot's code) — and answers
``{"code": 10000, "msg", "sub_code", "sub_msg", "data", "log_id"}``.

The colonel (团长) activities live here (``activities``), the shop's applications per
activity and product, and the colonel's audit (``audit(activity, product, status,
reason)``: 0 待审核, 1 推广中, 2 申请未通过, 4 合作前取消). ``product_rejects``: product id →
the reason ``applyActivities`` gives. Faults per method (``faults[method]``): ``"429"``,
``"rate"`` (60000), ``"busy"`` (20000), ``"500"``, ``"timeout"``, ``"commit-then-timeout"``.
``expire_token()``: 40003 ``isv.access-token-expired``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def reference_sign(q: dict[str, str], body: str, secret: str) -> str:
    """抖店's documented algorithm, written out again for the fake."""
    pattern = (f"app_key{q['app_key']}method{q['method']}param_json{body}"
               f"timestamp{q['timestamp']}v{q['v']}")
    wrapped = (secret + pattern + secret).encode("utf-8")
    if q.get("sign_method") == "md5":
        return hashlib.md5(wrapped).hexdigest()
    return hmac.new(secret.encode("utf-8"), wrapped, hashlib.sha256).hexdigest()


class FakeDouyin:
    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        self.app_key = "7012345678901234567"
        self.app_secret = "dy-secret-" + secrets.token_hex(4)
        self.access_token = "dy-at-" + secrets.token_hex(4)
        self.refresh_token = "dy-rt-" + secrets.token_hex(4)
        self.expired: set[str] = set()
        self.refreshes = 0
        self.slow_seconds = slow_seconds
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[tuple[str, dict, dict]] = []  # (method, query, params)
        self.bad_signatures = 0
        self.activities: list[dict] = []
        self.details: dict[str, dict] = {}  # activity id → shopActivityDetail's answer
        self.applications: dict[str, dict[str, dict]] = defaultdict(dict)
        self.product_rejects: dict[str, str] = {}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeDouyin:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def credentials(self) -> dict:
        return {"app_key": self.app_key, "app_secret": self.app_secret,
                "access_token": self.access_token, "refresh_token": self.refresh_token,
                "phone_number": "13800000000"}

    def expire_token(self) -> None:
        self.expired.add(self.access_token)

    def methods(self) -> list[str]:
        return [m for m, _, _ in self.calls]

    def audit(self, activity_id: str, product_id: str, status: int, reason: str = "") -> None:
        """The colonel audits the shop's product."""
        row = self.applications[str(activity_id)][str(product_id)]
        row["status"], row["reason"] = status, reason

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                url = urlsplit(self.path)
                status, answer, headers = fake.handle(url.path, dict(parse_qsl(url.query)), body)
                data = json.dumps(answer, ensure_ascii=False).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)

        return Handler

    @staticmethod
    def _error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> tuple:
        return 200, {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg,
                     "data": None, "log_id": secrets.token_hex(8)}, {}

    @staticmethod
    def _ok(data: dict) -> tuple:
        return 200, {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "",
                     "data": data, "log_id": secrets.token_hex(8)}, {}

    def handle(self, path: str, q: dict[str, str], body: str) -> tuple:
        method = q.get("method", "")
        try:
            params = json.loads(body or "{}")
        except ValueError:
            params = None
        with self.lock:
            self.calls.append((method, dict(q), params if isinstance(params, dict) else {}))
        for needed in ("app_key", "method", "timestamp", "v", "sign"):
            if not q.get(needed):
                return self._error(40001, "缺少必选参数", "isv.signature-missing", f"缺少{needed}")
        if path != "/" + method.replace(".", "/"):
            return self._error(70000, "接口服务已下线", "isp.api-service-off", "API不存在")
        if q["app_key"] != self.app_key:
            return self._error(40003, "非法的参数", "isv.app-id-invalid", "app_key不存在")
        if not q["timestamp"].isdigit() or abs(time.time() - int(q["timestamp"])) > 600 \
                or q["v"] != "2":
            return self._error(40003, "非法的参数", "isv.timestamp-invalid", "时间戳不合法")
        if not isinstance(params, dict) or body != json.dumps(
                params, ensure_ascii=False, sort_keys=True, separators=(",", ":")):
            return self._error(40003, "非法的参数", "isv.parameter-format-invalid",
                               "业务参数json解析失败")
        if reference_sign(q, body, self.app_secret) != q["sign"]:
            self.bad_signatures += 1
            return self._error(40003, "非法的参数", "isv.signature-invalid", "签名校验失败")
        if method == "token.refresh":
            return self._refresh(params)
        token = q.get("access_token", "")
        if token in self.expired:
            return self._error(40003, "非法的参数", "isv.access-token-expired", "access_token已过期")
        if token != self.access_token:
            return self._error(40003, "非法的参数", "isv.access-token-no-existed",
                               "access_token不存在")
        fault = self.faults[method].popleft() if self.faults[method] else None
        if fault == "429":
            return 429, {"code": 60000, "msg": "触发限流,请稍后重试"}, {"Retry-After": "1"}
        if fault == "rate":
            return self._error(60000, "触发限流,请稍后重试", "isp.flow-limit", "超过限流限制")
        if fault == "busy":
            return self._error(20000, "服务不可用", "isp.service-error:256", "服务打瞌睡了,请稍后再试")
        if fault == "500":
            return 500, {"error": "internal"}, {}
        if fault == "timeout":
            time.sleep(self.slow_seconds)
            return self._error(20001, "内部服务超时")
        answer = self.route(method, params)
        if fault == "commit-then-timeout":
            time.sleep(self.slow_seconds)
        return answer

    def _refresh(self, p: dict) -> tuple:
        if p.get("grant_type") != "refresh_token" or p.get("refresh_token") != self.refresh_token:
            return self._error(50001, "平台处理失败", "dop.token-generate-failed:token-invalid",
                               "生成token失败,token不存在")
        with self.lock:
            self.refreshes += 1
            self.access_token = "dy-at-" + secrets.token_hex(4)
            self.refresh_token = "dy-rt-" + secrets.token_hex(4)
        return self._ok({"access_token": self.access_token, "refresh_token": self.refresh_token,
                         "expires_in": 604800, "shop_id": 4463798, "shop_name": "旗舰店"})

    def route(self, method: str, p: dict) -> tuple:
        if method == "buyin.ShopActivityList":
            start = int(p.get("cursor") or 0)
            size = int(p.get("page_size") or 20)
            page = self.activities[start:start + size]
            more = start + size < len(self.activities)
            return self._ok({"data": page, "next_cursor": str(start + size) if more else ""})
        activity_id = str(p.get("activity_id") or "")
        if method == "buyin.shopActivityDetail":
            if activity_id not in self.details:
                return self._error(50002, "业务处理失败", "isv.business-failed:500", "活动不存在")
            return self._ok(self.details[activity_id])
        if method == "buyin.applyActivities":
            if not p.get("phone_number") or not p.get("products"):
                return self._error(40004, "非法的参数", "isv.parameter-invalid:257", "参数校验失败")
            results = []
            for product in p["products"]:
                product_id = str(product.get("product_id"))
                mine = self.applications[activity_id]
                if product_id in self.product_rejects:
                    results.append({"product_id": int(product_id), "is_success": False,
                                    "error_code": 8193, "error_msg": self.product_rejects[product_id]})
                elif product_id in mine:
                    results.append({"product_id": int(product_id), "is_success": False,
                                    "error_code": 8194, "error_msg": "该商品已提报该活动"})
                else:
                    mine[product_id] = {"product_id": int(product_id), "status": 0, "reason": "",
                                        "activity_price": product.get("activity_price"),
                                        "promotion_stock": product.get("promotion_stock")}
                    results.append({"product_id": int(product_id), "is_success": True,
                                    "error_code": 0, "error_msg": "success"})
            return self._ok({"total": len(results), "result": results})
        if method == "buyin.shopActivityProductList":
            rows = list(self.applications.get(activity_id, {}).values())
            page, size = int(p.get("page") or 1), int(p.get("page_size") or 20)
            return self._ok({"data": rows[(page - 1) * size:page * size], "total": len(rows)})
        return self._error(70000, "接口服务已下线", "isp.api-service-off", "API不存在或API已下线")
