"""A local Temu-style partner router on 127.0.0.1: JSON POSTs signed like PDD (checked here
with an independent implementation), ``{"success", "errorCode", "errorMsg", "result"}``
answers, and an asynchronous enrolment: ``enroll.submit`` answers a trace code at once (the
same one for the same ``requestId``), ``enroll.result.get`` says ``PROCESSING`` for
``processing_polls`` polls, then per-SKU results with ``failReason``.

Faults per API type (``faults[type]``): ``"429"`` (Retry-After: 2), ``"rate"`` (errorCode
4000004), ``"500"``, ``"commit-then-timeout"`` (the enrolment is made, the answer is late).
``expire_token()``: errorCode 7000002 for the current token (Temu has no refresh call).
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


def reference_sign(body: dict, secret: str) -> str:
    def text(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        return str(v)

    joined = "".join(k + text(body[k]) for k in sorted(body) if k != "sign")
    return hashlib.md5((secret + joined + secret).encode()).hexdigest().upper()


class FakeTemu:
    def __init__(self, *, slow_seconds: float = 1.2) -> None:
        self.app_key = "temu-app"
        self.app_secret = "temu-secret-" + secrets.token_hex(4)
        self.access_token = "temu-at-" + secrets.token_hex(4)
        self.expired: set[str] = set()
        self.slow_seconds = slow_seconds
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[tuple[str, dict]] = []
        self.bad_signatures = 0
        self.activities: list[dict] = []
        self.candidates: dict[str, dict] = {}  # skuId → {canEnroll, reason, maxActivityPrice…}
        self.rejects: dict[str, str] = {}  # skuId → failReason
        self.enrolments: dict[str, dict] = {}  # requestId → {traceCode, skus, polls}
        self.processing_polls = 1
        self._trace = itertools.count(1)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/openapi/router"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeTemu:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def credentials(self) -> dict:
        return {"app_key": self.app_key, "app_secret": self.app_secret,
                "access_token": self.access_token}

    def expire_token(self) -> None:
        self.expired.add(self.access_token)

    def types(self) -> list[str]:
        return [t for t, _ in self.calls]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    body = {}
                status, answer, headers = fake.handle(body if isinstance(body, dict) else {})
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
    def _error(code: int, msg: str) -> tuple[int, dict, dict]:
        return 200, {"success": False, "errorCode": code, "errorMsg": msg,
                     "requestId": secrets.token_hex(6)}, {}

    @staticmethod
    def _ok(result: dict) -> tuple[int, dict, dict]:
        return 200, {"success": True, "errorCode": 1000000, "errorMsg": "", "result": result}, {}

    def handle(self, body: dict) -> tuple[int, dict, dict]:
        api = str(body.get("type") or "")
        with self.lock:
            self.calls.append((api, dict(body)))
        for needed in ("type", "app_key", "access_token", "timestamp", "data_type", "sign"):
            if body.get(needed) in (None, ""):
                return self._error(7000001, f"missing {needed}")
        if reference_sign(body, self.app_secret) != body["sign"]:
            self.bad_signatures += 1
            return self._error(7000006, "sign invalid")
        if body["access_token"] in self.expired:
            return self._error(7000002, "access token expired")
        if body["access_token"] != self.access_token:
            return self._error(7000003, "access token invalid")
        fault = self.faults[api].popleft() if self.faults[api] else None
        if fault == "429":
            return 429, {"success": False, "errorCode": 4000004}, {"Retry-After": "2"}
        if fault == "rate":
            return self._error(4000004, "too many requests")
        if fault == "500":
            return 500, {"success": False}, {}
        answer = self.route(api, body)
        if fault == "commit-then-timeout":
            time.sleep(self.slow_seconds)
        return answer

    def route(self, api: str, body: dict) -> tuple[int, dict, dict]:
        if api == "bg.marketing.activity.list.get":
            return self._ok({"total": len(self.activities), "activityList": self.activities})
        if api == "bg.marketing.activity.candidate.list.get":
            return self._ok({"candidateList": [{"skuId": s, **self.candidates[s]}
                                               for s in body.get("skuIdList") or []
                                               if s in self.candidates]})
        if api == "bg.marketing.activity.enroll.submit":
            request_id = str(body.get("requestId") or "")
            if not request_id:
                return self._error(2000001, "requestId required")
            with self.lock:
                if request_id not in self.enrolments:  # the platform's own idempotency
                    self.enrolments[request_id] = {
                        "traceCode": f"TRACE-{next(self._trace):05d}",
                        "skus": body.get("skuList") or [], "polls": 0}
            return self._ok({"traceCode": self.enrolments[request_id]["traceCode"]})
        if api == "bg.marketing.activity.enroll.result.get":
            found = next((e for e in self.enrolments.values()
                          if e["traceCode"] == body.get("traceCode")), None)
            if found is None:
                return self._error(2000002, "traceCode not found")
            found["polls"] += 1
            if found["polls"] <= self.processing_polls:
                return self._ok({"status": "PROCESSING"})
            results = [{"skuId": s["skuId"], "success": s["skuId"] not in self.rejects,
                        "failCode": "PRICE_HIGH" if s["skuId"] in self.rejects else None,
                        "failReason": self.rejects.get(s["skuId"])} for s in found["skus"]]
            ok = {r["success"] for r in results}
            status = "SUCCESS" if ok == {True} else ("FAIL" if ok == {False} else "PART_SUCCESS")
            return self._ok({"status": status, "skuResultList": results})
        if api == "bg.marketing.activity.enroll.cancel":
            return self._ok({"cancelled": True})
        return self._error(2000000, f"unknown type {api}")
