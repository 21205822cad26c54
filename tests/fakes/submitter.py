"""A local marketplace enrolment server (the HTTP-JSON wire format) with scripted faults,
and a fake RPA robot that checks the job signature. Both listen on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from adapters.platforms.submitters.rpa import verify


class _Server:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)

            def do_GET(self) -> None:
                server.handle(self, "GET", b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.handle(self, "POST", self.rfile.read(length))

        return Handler


class FakeMarketplace(_Server):
    """Enrolment API: eligible SKUs, enrol with Idempotency-Key, per-item audit status.

    ``faults`` is a queue for the enrol endpoint: ``"500"``, ``"429"``, ``"timeout"`` (sleep
    then answer), ``"commit-then-500"`` / ``"commit-then-timeout"`` (the enrolment IS made,
    the answer is lost), ``"422"`` (business refusal). Empty queue → normal answers.
    """

    def __init__(self, *, slow_seconds: float = 1.5) -> None:
        super().__init__()
        self.faults: deque[str] = deque()
        self.slow_seconds = slow_seconds
        self.enrolments: dict[str, dict] = {}  # idempotency key → enrolment
        self.enrol_calls: list[str | None] = []  # the key of every enrol request seen
        self.ineligible: dict[str, str] = {}
        self.rejects: dict[str, tuple[str, str]] = {}  # sku → (code, reason)
        self.reviews_pending = 0  # answer AUDITING this many times first
        self.lock = threading.Lock()

    def enrolment_count(self) -> int:
        return len(self.enrolments)

    def handle(self, h, method: str, body: bytes) -> None:
        path = urlparse(h.path).path.strip("/").split("/")
        if method == "GET" and path[:1] == ["activities"] and path[-1] == "eligible-skus":
            skus = [{"sku_id": s, "eligible": s not in self.ineligible,
                     "reason": self.ineligible.get(s, "")}
                    for s in self.known_skus()]
            return h._reply(200, {"code": 0, "data": {"skus": skus}})
        if method == "POST" and path[:1] == ["activities"] and path[-1] == "enrolments":
            return self._enrol(h, path[1], json.loads(body or b"{}"))
        if method == "GET" and path[:1] == ["enrolments"]:
            return self._status(h, path[1])
        return h._reply(404, {"code": 404, "msg": "not found"})

    def known_skus(self) -> list[str]:
        return [f"JD-20{i}" for i in range(1, 10)] + [f"MZ-00{i}" for i in range(1, 10)] + \
            [f"SP-10{i}" for i in range(1, 10)]

    def _enrol(self, h, activity: str, payload: dict) -> None:
        key = h.headers.get("Idempotency-Key")
        with self.lock:
            self.enrol_calls.append(key)
            fault = self.faults.popleft() if self.faults else "ok"
        if fault == "500":
            return h._reply(500, {"code": 50000, "msg": "internal error"})
        if fault == "429":
            return h._reply(429, {"code": 42900, "msg": "slow down"}, {"Retry-After": "0"})
        if fault == "422":
            return h._reply(200, {"code": 40022, "msg": "活动已截止报名"})
        if fault == "timeout":
            time.sleep(self.slow_seconds)
            return h._reply(503, {"code": 50300, "msg": "late"})
        if not key:
            return h._reply(400, {"code": 40000, "msg": "Idempotency-Key required"})
        with self.lock:
            enrolment = self.enrolments.get(key)
            if enrolment is None:
                enrolment = {"enrolment_id": f"E{len(self.enrolments) + 1:04d}",
                             "activity": activity, "items": payload.get("items", []),
                             "polls": 0}
                self.enrolments[key] = enrolment
        if fault == "commit-then-500":
            return h._reply(500, {"code": 50000, "msg": "internal error"})
        if fault == "commit-then-timeout":
            time.sleep(self.slow_seconds)
        return h._reply(200, {"code": 0, "data": {"enrolment_id": enrolment["enrolment_id"],
                                                  "status": "AUDITING"}})

    def _status(self, h, enrolment_id: str) -> None:
        enrolment = next((e for e in self.enrolments.values()
                          if e["enrolment_id"] == enrolment_id), None)
        if enrolment is None:
            return h._reply(404, {"code": 404, "msg": "no such enrolment"})
        enrolment["polls"] += 1
        if enrolment["polls"] <= self.reviews_pending:
            return h._reply(200, {"code": 0, "data": {"status": "AUDITING", "items": []}})
        items = []
        for item in enrolment["items"]:
            sku = item["sku_id"]
            code, reason = self.rejects.get(sku, (None, None))
            items.append({"sku_id": sku, "audit_status": "REJECTED" if code else "PASSED",
                          "reject_code": code, "reject_reason": reason})
        verdicts = {i["audit_status"] for i in items}
        status = "PASSED" if verdicts == {"PASSED"} else (
            "REJECTED" if verdicts == {"REJECTED"} else "PART_PASSED")
        return h._reply(200, {"code": 0, "data": {"status": status, "items": items}})


class FakeRobot(_Server):
    """An RPA robot's job endpoint: accepts a job only with a valid signature."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.jobs: list[dict] = []
        self.refused = 0

    def handle(self, h, method: str, body: bytes) -> None:
        if not verify(self.secret, h.headers.get("X-PromoPilot-Timestamp"),
                      h.headers.get("X-PromoPilot-Signature"), body):
            self.refused += 1
            return h._reply(401, {"error": "bad signature"})
        self.jobs.append(json.loads(body))
        return h._reply(202, {"accepted": True})
