"""A local fake of the Feishu open API (the parts PromoPilot uses), on 127.0.0.1.

Speaks the documented wire format: tenant access token, IM message create (with ``uuid``
de-duplication: a request with a uuid seen within the hour creates nothing and answers the
first message) and patch, contact user lookup, bot info, the long-connection endpoint
discovery (refused unless ``gateway`` is a ``feishu_ws.FakeFeishuGateway``). It can answer rate limits
on demand, and hold the answer to a create it has carried out (``hold`` / ``release``), as
when the answer is lost on the way. With ``app_limit`` (every IM call of the app: HTTP 429,
code 99991400 and the ``x-ogw-ratelimit-*`` headers) or ``chat_limit`` (messages to one chat:
code 230020) set, it enforces Feishu's documented limits; both are off unless set.
Helpers build events and card callbacks in Feishu's shapes, encrypted and signed like Feishu does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from Crypto.Cipher import AES

from tests.fakes.keepalive import KeepAliveServer
from tests.fakes.ratelimit import Limit, retry_after_header

BOT_OPEN_ID = "ou_bot_promopilot"
MAX_CONTENT = 30 * 1024


@dataclass
class Sent:
    message_id: str
    receive_id_type: str
    receive_id: str
    msg_type: str
    content: str
    uuid: str | None = None
    patches: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    @property
    def card(self) -> dict:
        return json.loads(self.patches[-1] if self.patches else self.content)


class FakeFeishu:
    def __init__(self, app_id: str, app_secret: str) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self.token = f"t-{secrets.token_hex(8)}"
        self.messages: dict[str, Sent] = {}
        self.order: list[str] = []
        self.users: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.rate_limited: list[tuple[str, str]] = []  # (method, path) answered with a limit
        self.limit_next = 0
        self.limit_reset = "1"
        self.limit_status = 429
        self.fail_next = 0  # answer the next IM calls with a bare 500 (a flaky gateway)
        self.contact_delay = 0.0  # a slow contact API (seconds)
        self.failures: list[tuple[str, str]] = []
        self.connections: set[tuple[str, int]] = set()  # client (host, port) pairs seen
        self.app_limit: Limit | None = None  # every IM call of the app (Feishu: 50/s)
        self.chat_limit: Limit | None = None  # messages to one chat (Feishu: 5/s)
        self.closed_to: set[str] = set()  # receive ids the bot may not message (230002/230013)
        self.uuid_window = 3600.0  # seconds a uuid de-duplicates (Feishu: one hour)
        self.creates: list[dict] = []  # every create request's body, duplicates included
        self.hold_creates = 0
        self.gateway: Any = None  # a feishu_ws.FakeFeishuGateway: the long connection's
        self.held = 0  # creates carried out whose answer is being held
        self._release = threading.Event()
        self.lock = threading.Lock()
        self.server = KeepAliveServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- control -----------------------------------------------------------------------

    def start(self) -> FakeFeishu:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_user(self, open_id: str, name: str, user_id: str = "", email: str = "") -> None:
        self.users[open_id] = {"open_id": open_id, "user_id": user_id, "name": name,
                               "email": email, "union_id": f"on_{open_id[3:]}"}

    def hold(self, times: int = 1) -> None:
        """Carry out the next ``times`` creates but keep their answers until ``release()``."""
        self._release.clear()
        self.hold_creates += times

    def release(self) -> None:
        self._release.set()

    def rate_limit(self, times: int, reset_seconds: str = "1", status: int = 429) -> None:
        self.limit_next, self.limit_reset, self.limit_status = times, reset_seconds, status

    def in_chat(self, chat_id: str) -> list[Sent]:
        return [self.messages[m] for m in self.order
                if self.messages[m].receive_id == chat_id]

    def to_user(self, receive_id: str) -> list[Sent]:
        return [s for s in (self.messages[m] for m in self.order) if s.receive_id == receive_id]

    # -- HTTP --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Feishu's servers do

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                raw = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("X-Tt-Logid", secrets.token_hex(8))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    return json.loads(raw or b"{}")
                except ValueError:
                    return {}

            def do_GET(self) -> None:
                fake._route(self, "GET")

            def do_POST(self) -> None:
                fake._route(self, "POST")

            def do_PATCH(self) -> None:
                fake._route(self, "PATCH")

        return Handler

    def _route(self, h: Any, method: str) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        body = h._body() if method in ("POST", "PATCH") else {}
        with self.lock:
            self.requests.append((method, path))
            self.connections.add(h.client_address[:2])
        if path == "/open-apis/auth/v3/tenant_access_token/internal":
            if body.get("app_id") == self.app_id and body.get("app_secret") == self.app_secret:
                return h._answer(200, {"code": 0, "msg": "ok", "expire": 7200,
                                       "tenant_access_token": self.token})
            return h._answer(200, {"code": 10014, "msg": "app secret invalid"})
        if path == "/callback/ws/endpoint":
            return self._endpoint(h, body)
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return h._answer(400, {"code": 99991663, "msg": "Invalid access token"})
        if path == "/open-apis/bot/v3/info":
            return h._answer(200, {"code": 0, "msg": "ok", "bot": {
                "open_id": BOT_OPEN_ID, "app_name": "PromoPilot", "activate_status": 2}})
        if path.startswith("/open-apis/contact/v3/users/"):
            time.sleep(self.contact_delay)
            user = self.users.get(path.rsplit("/", 1)[1])
            if user is None or query.get("user_id_type", ["open_id"])[0] != "open_id":
                return h._answer(400, {"code": 41050, "msg": "no user authority error"})
            return h._answer(200, {"code": 0, "msg": "success", "data": {"user": user}})
        if path.startswith("/open-apis/im/v1/messages"):
            with self.lock:
                if self.limit_next > 0:
                    self.limit_next -= 1
                    self.rate_limited.append((method, path))
                    return h._answer(self.limit_status, {
                        "code": 99991400, "msg": "request trigger frequency limit"},
                        {"x-ogw-ratelimit-limit": "5",
                         "x-ogw-ratelimit-reset": self.limit_reset})
                if self.fail_next > 0:
                    self.fail_next -= 1
                    self.failures.append((method, path))
                    h.send_response(500)
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return None
            refused = self._over_limit(h, method, path, body)
            if refused:
                return None
            if method == "POST" and path == "/open-apis/im/v1/messages":
                return self._create(h, query, body)
            if method == "PATCH":
                return self._patch(h, path.rsplit("/", 1)[1], body)
        return h._answer(404, {"code": 404, "msg": f"fake has no {method} {path}"})

    def _endpoint(self, h: Any, body: dict) -> None:
        """Long-connection discovery: the gateway's address for the app's credentials."""
        if self.gateway is None:
            return h._answer(200, {"code": 1000040343, "msg": "fake: no websocket gateway"})
        if body.get("AppID") != self.app_id or body.get("AppSecret") != self.app_secret:
            return h._answer(200, {"code": 514, "msg": "app credentials invalid"})
        return h._answer(200, {"code": 0, "msg": "ok", "data": {
            "URL": self.gateway.url, "ClientConfig": {
                "ReconnectCount": -1, "ReconnectInterval": 1, "ReconnectNonce": 0,
                "PingInterval": 120}}})

    def _over_limit(self, h: Any, method: str, path: str, body: dict) -> bool:
        """Answer a request over the app's or the chat's limit, as Feishu does."""
        wait = self.app_limit.admit("app") if self.app_limit is not None else None
        if wait is not None:
            with self.lock:
                self.rate_limited.append((method, path))
            h._answer(429, {"code": 99991400, "msg": "request trigger frequency limit"},
                      {"x-ogw-ratelimit-limit": str(self.app_limit.burst),
                       "x-ogw-ratelimit-reset": retry_after_header(wait)})
            return True
        chat = str(body.get("receive_id") or "")
        if method == "POST" and self.chat_limit is not None and chat and \
                self.chat_limit.admit(chat) is not None:
            with self.lock:
                self.rate_limited.append((method, path))
            h._answer(400, {"code": 230020, "msg": "This operation triggers the frequency "
                                                   "limit. Please try again later."})
            return True
        return False

    def _create(self, h: Any, query: dict, body: dict) -> None:
        content = body.get("content")
        error = _bad_content(body.get("msg_type"), content)
        if error or not body.get("receive_id"):
            return h._answer(400, {"code": 230001, "msg": error or "receive_id missing"})
        if body["receive_id"] in self.closed_to:
            return h._answer(400, {"code": 230013, "msg": "Bot has NO availability to this user"})
        with self.lock:
            self.creates.append(body)
            uuid = body.get("uuid")
            for sent in self.messages.values():
                if uuid and sent.uuid == uuid and time.time() - sent.created < self.uuid_window:
                    return h._answer(200, {"code": 0, "msg": "success",
                                           "data": {"message_id": sent.message_id}})
            message_id = f"om_{secrets.token_hex(8)}"
            self.messages[message_id] = Sent(
                message_id, query.get("receive_id_type", [""])[0], body["receive_id"],
                body["msg_type"], content, uuid)
            self.order.append(message_id)
            hold = self.hold_creates > 0
            if hold:
                self.hold_creates -= 1
                self.held += 1
        if hold:  # created; the answer waits (the caller may be killed meanwhile)
            self._release.wait(60)
        try:
            return h._answer(200, {"code": 0, "msg": "success", "data": {
                "message_id": message_id, "msg_type": body["msg_type"],
                "create_time": str(int(time.time() * 1000)), "body": {"content": content}}})
        except (BrokenPipeError, ConnectionResetError):
            return None

    def _patch(self, h: Any, message_id: str, body: dict) -> None:
        sent = self.messages.get(message_id)
        if sent is None:
            return h._answer(400, {"code": 230001, "msg": "message not found"})
        error = _bad_content("interactive", body.get("content"))
        if error:
            return h._answer(400, {"code": 230001, "msg": error})
        with self.lock:
            sent.patches.append(body["content"])
        return h._answer(200, {"code": 0, "msg": "success", "data": {}})


def _bad_content(msg_type: Any, content: Any) -> str | None:
    if not isinstance(content, str):
        return "content must be a JSON string"
    if len(content.encode()) > MAX_CONTENT:
        return "content too long"
    try:
        parsed = json.loads(content)
    except ValueError:
        return "content is not valid JSON"
    if msg_type == "interactive" and not ("elements" in parsed or "body" in parsed):
        return "card has no elements"
    if msg_type == "post" and not any(isinstance(v, dict) for v in parsed.values()):
        return "post has no language body"
    return None


# -- what Feishu sends us -----------------------------------------------------------------

def encrypt(key: str, plaintext: str) -> str:
    """Feishu's event encryption: AES-256-CBC, key sha256(encrypt key), IV prepended."""
    data = plaintext.encode()
    pad = 16 - len(data) % 16
    iv = os.urandom(16)
    cipher = AES.new(hashlib.sha256(key.encode()).digest(), AES.MODE_CBC, iv)
    return base64.b64encode(iv + cipher.encrypt(data + bytes([pad]) * pad)).decode()


def signed(body: bytes, key: str, timestamp: int | None = None,
           nonce: str | None = None) -> dict[str, str]:
    timestamp_s = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(8)
    sig = hashlib.sha256((timestamp_s + nonce + key).encode() + body).hexdigest()
    return {"X-Lark-Request-Timestamp": timestamp_s, "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": sig, "Content-Type": "application/json"}


def envelope(event_type: str, event: dict, token: str, event_id: str | None = None,
             app_id: str = "cli_test") -> dict:
    return {"schema": "2.0", "header": {
        "event_id": event_id or secrets.token_hex(16), "token": token,
        "create_time": str(int(time.time() * 1000)), "event_type": event_type,
        "tenant_key": "tenant_test", "app_id": app_id}, "event": event}


def message_event(text: str, *, chat_id: str, open_id: str, token: str,
                  mention_bot: bool = True, others: list[tuple[str, str]] | None = None,
                  message_id: str | None = None, event_id: str | None = None,
                  chat_type: str = "group", user_id: str = "") -> dict:
    """``im.message.receive_v1``: ``@_user_1`` stands for the bot, like Feishu does."""
    mentions = []
    if mention_bot:
        mentions.append({"key": "@_user_1", "id": {"open_id": BOT_OPEN_ID, "user_id": "",
                                                   "union_id": "on_bot"},
                         "name": "PromoPilot", "tenant_key": "tenant_test"})
    for index, (other_id, name) in enumerate(others or [], start=len(mentions) + 1):
        mentions.append({"key": f"@_user_{index}", "id": {"open_id": other_id},
                         "name": name, "tenant_key": "tenant_test"})
    prefix = "@_user_1 " if mention_bot else ""
    return envelope("im.message.receive_v1", {
        "sender": {"sender_id": {"open_id": open_id, "user_id": user_id,
                                 "union_id": f"on_{open_id[3:]}"},
                   "sender_type": "user", "tenant_key": "tenant_test"},
        "message": {"message_id": message_id or f"om_{secrets.token_hex(8)}",
                    "create_time": str(int(time.time() * 1000)), "chat_id": chat_id,
                    "chat_type": chat_type, "message_type": "text",
                    "content": json.dumps({"text": prefix + text}, ensure_ascii=False),
                    "mentions": mentions}}, token, event_id)


def card_action(value: dict, *, open_id: str, chat_id: str, message_id: str, token: str,
                event_id: str | None = None, form_value: dict | None = None) -> dict:
    """``card.action.trigger`` (new-style card callback, delivered as an event)."""
    action: dict[str, Any] = {"value": value, "tag": "button"}
    if form_value is not None:
        action["form_value"] = form_value
    return envelope("card.action.trigger", {
        "operator": {"tenant_key": "tenant_test", "open_id": open_id,
                     "union_id": f"on_{open_id[3:]}"},
        "token": f"c-{secrets.token_hex(12)}", "action": action, "host": "im_message",
        "context": {"open_message_id": message_id, "open_chat_id": chat_id}},
        token, event_id)
