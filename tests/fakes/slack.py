"""A fake Slack on 127.0.0.1: the Web API methods PromoPilot calls, plus signed inbound
payloads in Slack's documented shapes. The real slack_sdk/slack-bolt talk to it over HTTP.

    fake = FakeSlack().start()        # Web API at fake.api_url (PROMOPILOT_SLACK_API_URL)
    fake.fail_next("chat.postMessage", 429, {"Retry-After": "1"})
    fake.calls("chat.update")         # what Slack received, bodies decoded
    fake.hold("chat.postMessage")     # post it, but keep the answer until fake.release()
    fake.messages("C123")             # the channel's history, as conversations.history has it
    fake.post_limit = Limit(rate=1, burst=4)   # Slack's per-channel posting limit, enforced

Posted messages keep their ``metadata`` and are listed by ``conversations.history`` (newest
first, ``oldest`` honoured, metadata only with ``include_all_metadata``), as Slack does; a
post to a user id lands in that person's DM (``conversations.open`` names it). With
``post_limit`` (per channel, chat.postMessage) or ``update_limit`` (per workspace,
chat.update: Tier 3) set, a request over it is answered 429 with a Retry-After, as Slack does;
both are off unless a test sets them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fakes.keepalive import KeepAliveServer
from tests.fakes.ratelimit import Limit, retry_after_header

BOT_TOKEN = "xoxb-test-1234-promopilot"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_USER = "UPROMOBOT"
APP_TOKEN = "xapp-1-A0FAKE-test"


@dataclass
class Call:
    method: str
    body: dict
    at: float
    headers: dict = field(default_factory=dict)


class FakeSlack:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._faults: dict[str, list[tuple[int, dict, dict]]] = {}
        self._ts = itertools.count(1)
        self.users: dict[str, dict] = {}
        self.history: dict[str, list[dict]] = {}  # channel → messages, oldest first
        self._holds: dict[str, int] = {}
        self._release = threading.Event()
        self.held: list[Call] = []  # requests whose answers are being held
        self.socket: FakeSocketMode | None = None
        self.post_limit: Limit | None = None  # per channel: chat.postMessage
        self.update_limit: Limit | None = None  # per workspace: chat.update (Tier 3)
        self.server = KeepAliveServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeSlack:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.stop()
        self.server.shutdown()
        self.server.server_close()

    def start_socket_mode(self) -> FakeSocketMode:
        """Serve Socket Mode's websocket too; apps.connections.open hands out its URL."""
        self.socket = FakeSocketMode()
        return self.socket

    # -- test controls -------------------------------------------------------------------

    def fail_next(self, method: str, status: int, headers: dict | None = None,
                  body: dict | None = None, times: int = 1) -> None:
        with self._lock:
            for _ in range(times):
                self._faults.setdefault(method, []).append(
                    (status, headers or {}, body or {"ok": False, "error": "ratelimited"}))

    def hold(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls are carried out (a post is posted) but not answered
        until ``release()`` — as when Slack accepted a post and the answer got lost."""
        with self._lock:
            self._release.clear()
            self._holds[method] = self._holds.get(method, 0) + times

    def release(self) -> None:
        self._release.set()

    def messages(self, channel: str) -> list[dict]:
        with self._lock:
            return list(self.history.get(_conversation(channel), []))

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15,
                 where=lambda call: True) -> list[Call]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [c for c in self.calls(method) if where(c)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{method}: wanted {count}, got "
                             f"{len([c for c in self.calls(method) if where(c)])}")

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    # -- the server ------------------------------------------------------------------------

    def _answer(self, method: str, body: dict) -> tuple[int, dict, dict]:
        with self._lock:
            faults = self._faults.get(method)
            if faults:
                return faults.pop(0)
        limited = self._rate_limited(method, body)
        if limited is not None:
            return limited
        if method == "auth.test":
            return 200, {}, {"ok": True, "url": "https://fake.slack.com/", "team": "Fake",
                             "user": "promopilot", "team_id": "T0FAKE", "user_id": BOT_USER,
                             "bot_id": "B0FAKE"}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral") and \
                block_kit_problems(body.get("blocks")):
            return 200, {}, {"ok": False, "error": "invalid_blocks",
                             "errors": block_kit_problems(body.get("blocks"))}
        if method == "chat.postMessage":
            ts = self._now_ts()
            channel = _conversation(str(body.get("channel")))
            message = {"type": "message", "ts": ts, "user": BOT_USER, "bot_id": "B0FAKE",
                       "text": body.get("text"), "blocks": body.get("blocks")}
            if isinstance(body.get("metadata"), dict):
                message["metadata"] = body["metadata"]
            with self._lock:
                self.history.setdefault(channel, []).append(message)
            return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            ts = str(body.get("ts"))
            with self._lock:
                for message in self.history.get(_conversation(str(body.get("channel"))), []):
                    if message["ts"] == ts:
                        message.update(text=body.get("text"), blocks=body.get("blocks"))
            return 200, {}, {"ok": True, "channel": body.get("channel"), "ts": ts,
                             "message": {"text": body.get("text"), "blocks": body.get("blocks")}}
        if method == "conversations.history":
            return 200, {}, self._history(body)
        if method == "conversations.open":
            users = str(body.get("users") or "").split(",")[0]
            return 200, {}, {"ok": True, "channel": {"id": _conversation(users)}}
        if method == "chat.postEphemeral":
            return 200, {}, {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}
        if method == "views.open":
            return 200, {}, {"ok": True, "view": {"id": f"V{next(self._ts)}"}}
        if method == "apps.connections.open":
            if self.socket is None:
                return 200, {}, {"ok": False, "error": "socket_mode_not_enabled"}
            return 200, {}, {"ok": True, "url": self.socket.url}
        if method == "users.info":
            user = self.users.get(str(body.get("user")))
            if user is None:
                return 200, {}, {"ok": False, "error": "user_not_found"}
            return 200, {}, {"ok": True, "user": user}
        if method.startswith("response/"):
            return 200, {}, {"ok": True}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def _rate_limited(self, method: str, body: dict) -> tuple[int, dict, dict] | None:
        limit, key = None, ""
        if method == "chat.postMessage" and self.post_limit is not None:
            limit, key = self.post_limit, _conversation(str(body.get("channel")))
        elif method == "chat.update" and self.update_limit is not None:
            limit, key = self.update_limit, "workspace"
        wait = limit.admit(key) if limit is not None else None
        if wait is None:
            return None
        return 429, {"Retry-After": retry_after_header(wait)}, {"ok": False,
                                                                "error": "ratelimited"}

    def _now_ts(self) -> str:
        """A message ts as Slack makes them: the post's time, unique in the workspace."""
        with self._lock:
            self._last_ts = max(time.time(), getattr(self, "_last_ts", 0.0) + 0.000001)
            return f"{self._last_ts:.6f}"

    def _history(self, body: dict) -> dict:
        channel = str(body.get("channel"))
        with self._lock:
            found = self.history.get(channel)
            messages = [dict(m) for m in found or []]
        if found is None and not channel.startswith(("C", "D", "G")):
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(body.get("oldest") or 0)
        with_metadata = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        newest_first = [m for m in reversed(messages) if float(m["ts"]) > oldest]
        if not with_metadata:
            for m in newest_first:
                m.pop("metadata", None)
        limit = int(body.get("limit") or 100)
        return {"ok": True, "messages": newest_first[:limit],
                "has_more": len(newest_first) > limit, "response_metadata": {"next_cursor": ""}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Slack's servers do

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = decode(raw, self.headers.get("Content-Type", ""))
                path, _, query = self.path.partition("?")
                body.update({k: v[0] for k, v in urllib.parse.parse_qs(query).items()})
                method = path[len("/api/"):] if path.startswith("/api/") else path.lstrip("/")
                token = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
                if path.startswith("/api/") and method != "auth.test" and \
                        self.headers.get("Authorization") != f"Bearer {token}":
                    status, headers, answer = 200, {}, {"ok": False, "error": "invalid_auth"}
                else:
                    status, headers, answer = fake._answer(method, body)
                call = Call(method, body, time.time(), dict(self.headers))
                with fake._lock:
                    fake._calls.append(call)
                    hold = fake._holds.get(method, 0) > 0
                    if hold:
                        fake._holds[method] -= 1
                        fake.held.append(call)
                if hold:  # done, but the answer waits (the caller may be killed meanwhile)
                    fake._release.wait(60)
                data = json.dumps(answer).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

        return Handler


class FakeSocketMode:
    """Slack's Socket Mode websocket: says hello, pushes envelopes, records the acks."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.connections: list[Any] = []
        self.acks: list[dict] = []
        self._lock = threading.Lock()
        self.server = serve(self._session, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/link"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _session(self, ws: Any) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0FAKE"},
                            "debug_info": {"host": "fake", "approximate_connection_time": 3600}}))
        with self._lock:
            self.connections.append(ws)
        for message in ws:
            with self._lock:
                self.acks.append(json.loads(message))

    def wait_connected(self, timeout: float = 15) -> None:
        deadline = time.time() + timeout
        while not self.connections and time.time() < deadline:
            time.sleep(0.05)
        assert self.connections, "the app never opened the Socket Mode websocket"

    def push(self, kind: str, payload: dict, envelope_id: str) -> None:
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": kind != "events_api"}
        with self._lock:
            ws = self.connections[-1]
        ws.send(json.dumps(envelope))

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                found = [a for a in self.acks if a.get("envelope_id") == envelope_id]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no ack for envelope {envelope_id}")

    def stop(self) -> None:
        self.server.shutdown()


def _conversation(channel: str) -> str:
    """A post to a user id goes to that person's DM with the app."""
    return f"D{channel[1:]}" if channel[:1] in ("U", "W") else channel


def block_kit_problems(blocks: list | None) -> list[str]:
    """What Slack would refuse in these blocks (the documented Block Kit limits)."""
    if not blocks:
        return []
    problems = []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    action_ids: list[str] = []
    for n, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "section":
            text = (block.get("text") or {}).get("text", "")
            fields = block.get("fields") or []
            if not text and not fields:
                problems.append(f"[{n}] empty section")
            if len(text) > 3000:
                problems.append(f"[{n}] section text {len(text)} > 3000")
            if len(fields) > 10:
                problems.append(f"[{n}] {len(fields)} fields > 10")
            problems += [f"[{n}] field {len(f['text'])} > 2000" for f in fields
                         if len(f.get("text", "")) > 2000]
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10:
                problems.append(f"[{n}] context with {len(elements)} elements")
            problems += [f"[{n}] context text > 3000" for e in elements
                         if len(e.get("text", "")) > 3000]
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                problems.append(f"[{n}] actions with {len(elements)} elements")
            for e in elements:
                label = (e.get("text") or {}).get("text", "")
                if not label or len(label) > 75:
                    problems.append(f"[{n}] button text {len(label)}")
                if len(e.get("action_id", "")) > 255 or len(e.get("value", "")) > 2000:
                    problems.append(f"[{n}] action_id/value too long")
                if len(e.get("url", "")) > 3000:
                    problems.append(f"[{n}] url too long")
                action_ids.append(e.get("action_id", ""))
        elif kind == "header":
            if len((block.get("text") or {}).get("text", "")) > 150:
                problems.append(f"[{n}] header > 150")
        else:
            problems.append(f"[{n}] unexpected block type {kind!r}")
    if len(action_ids) != len(set(action_ids)):
        problems.append("duplicate action_id")
    return problems


def decode(raw: bytes, content_type: str) -> dict:
    text = raw.decode("utf-8") if raw else ""
    if "json" in content_type:
        return json.loads(text or "{}")
    body: dict = {k: v[0] for k, v in urllib.parse.parse_qs(text).items()}
    for key in ("blocks", "attachments", "view"):
        if isinstance(body.get(key), str):
            with contextlib.suppress(ValueError):
                body[key] = json.loads(body[key])
    return body


# -- signed inbound requests --------------------------------------------------------------

def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or ""}


def form(payload: dict) -> str:
    """Interactivity payloads arrive as ``payload=<json>`` form bodies."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def post(url: str, body: str, *, json_body: bool = False, timestamp: int | None = None,
         secret: str = SIGNING_SECRET, retry_num: int | None = None,
         client: httpx.Client | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json" if json_body
               else "application/x-www-form-urlencoded", **sign(body, timestamp, secret)}
    if retry_num is not None:
        headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
    if client is not None:
        return client.post(url, content=body, headers=headers)
    return httpx.post(url, content=body, headers=headers, timeout=30)


def block_actions(*, user: str, channel: str, message_ts: str, action_id: str, value: str,
                  trigger_id: str, blocks: list | None = None,
                  action_ts: str | None = None) -> dict:
    return {
        "type": "block_actions",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": trigger_id,
        "channel": {"id": channel, "name": "promo"},
        "message": {"type": "message", "ts": message_ts, "user": BOT_USER,
                    "blocks": blocks or []},
        "response_url": f"https://hooks.slack.invalid/actions/T0FAKE/{trigger_id}",
        "actions": [{"type": "button", "block_id": "b1", "action_id": action_id,
                     "text": {"type": "plain_text", "text": "x"}, "value": value,
                     "action_ts": action_ts or f"{time.time():.6f}"}],
    }


def slash_command(*, user: str, channel: str, text: str, response_url: str,
                  trigger_id: str) -> str:
    return urllib.parse.urlencode({
        "token": "legacy-verification-token", "team_id": "T0FAKE", "team_domain": "fake",
        "channel_id": channel, "channel_name": "promo", "user_id": user, "user_name": user.lower(),
        "command": "/promo", "text": text, "api_app_id": "A0FAKE",
        "response_url": response_url, "trigger_id": trigger_id,
    })


def view_submission(*, user: str, view_id: str, private_metadata: str, comment: str,
                    trigger_id: str) -> dict:
    return {
        "type": "view_submission",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "trigger_id": trigger_id,
        "view": {"id": view_id, "team_id": "T0FAKE", "type": "modal", "callback_id": "pp_comment",
                 "private_metadata": private_metadata, "hash": "1700000000.abc",
                 "state": {"values": {"comment": {"text": {"type": "plain_text_input",
                                                           "value": comment}}}}},
    }


def app_mention(*, user: str, channel: str, text: str, event_id: str) -> str:
    ts = f"{time.time():.6f}"
    return json.dumps({
        "token": "legacy-verification-token", "team_id": "T0FAKE", "api_app_id": "A0FAKE",
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0FAKE", "user_id": BOT_USER, "is_bot": True}],
        "event": {"type": "app_mention", "user": user, "text": text, "ts": ts,
                  "channel": channel, "event_ts": ts},
    })
