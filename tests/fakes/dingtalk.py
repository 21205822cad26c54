"""A local DingTalk on 127.0.0.1 speaking the documented wire formats, for contract tests.

- Stream gateway: ``POST /v1.0/gateway/connections/open`` (clientId/clientSecret →
  endpoint + one-time ticket) and the websocket at that endpoint, which pushes CALLBACK
  frames (chatbot messages, card callbacks) and records the client's ACK frames.
- Open API: ``/v1.0/oauth2/accessToken``, ``/v1.0/card/instances/createAndDeliver``,
  ``PUT /v1.0/card/instances``, ``/v1.0/robot/groupMessages/send``,
  ``/v1.0/robot/oToMessages/batchSend`` (all checking ``x-acs-dingtalk-access-token``).
- Custom robot webhook ``/robot/send``: access_token, HMAC signature and timestamp window
  checked; more than ``webhook_limit`` messages per window → errcode 130101.
- ``group_limit`` (off unless set): messages to one group (createAndDeliver and
  groupMessages/send) over it are refused with HTTP 429 and code ``send.too.fast``, no
  Retry-After (DingTalk names none).

A card instance is named by its ``outTrackId``: a second createAndDeliver with one that
exists creates nothing and is refused; ``PUT /v1.0/card/instances`` of an unknown one
answers ``card.notExist``. ``hold(path)`` carries out the next call to ``path`` but keeps
its answer until ``release()`` (the answer lost on the way).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.loopserver import LoopServer
from tests.fakes.ratelimit import Limit

CARD_TOPIC = "/v1.0/card/instances/callback"
MESSAGE_TOPIC = "/v1.0/im/bot/messages/get"


def _frame(topic: str, data: dict, message_id: str) -> str:
    """A stream CALLBACK frame as DingTalk's gateway sends it."""
    return json.dumps({
        "specVersion": "1.0", "type": "CALLBACK",
        "headers": {"appId": "fake-app", "connectionId": "conn-1",
                    "contentType": "application/json", "messageId": message_id,
                    "time": str(int(time.time() * 1000)), "topic": topic},
        "data": json.dumps(data, ensure_ascii=False),
    }, ensure_ascii=False)


def click_data(out_track_id: str, user_id: str, value: str, *, comment: str | None = None,
               space_id: str = "cidGROUP") -> dict:
    """A card callback's data: the button's value (and a comment) on card ``out_track_id``."""
    params: dict[str, Any] = {"value": value}
    if comment:
        params["comment"] = comment
    return {
        "extension": "{}", "corpId": "dingcorp", "type": "actionCallback",
        "userId": user_id, "spaceType": "IM_GROUP", "spaceId": space_id,
        "outTrackId": out_track_id, "userIdType": 1,
        "content": json.dumps({"cardPrivateData": {"actionIds": ["button"],
                                                   "params": params}}),
    }


class FakeDingTalk(LoopServer):
    name = "fake DingTalk"

    def __init__(self, client_id: str = "dingappkey", client_secret: str = "app-secret",
                 webhook_token: str = "hooktoken", webhook_secret: str = "SEChook",
                 webhook_limit: int = 20, webhook_window: float = 60.0) -> None:
        super().__init__()  # its _sockets: every stream client connected
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_token = webhook_token
        self.webhook_secret = webhook_secret
        self.webhook_limit = webhook_limit
        self.webhook_window = webhook_window
        self.cards: dict[str, dict[str, Any]] = {}
        self.group_messages: list[dict] = []
        self.private_messages: list[dict] = []
        self.webhook_messages: list[dict] = []
        self.webhook_refused: list[dict] = []
        self.webhook_times: deque[float] = deque()
        self.acks: dict[str, list[dict]] = {}
        self.pushed_at: dict[str, float] = {}
        self.acked_at: dict[str, float] = {}
        self.connections: list[dict] = []
        self.token_requests = 0
        self.faults: list[dict] = []
        self.creates: list[dict] = []  # every createAndDeliver body, refused ones included
        self.group_limit: Limit | None = None  # messages to one group (key: conversation id)
        self._holds: dict[str, int] = {}
        self.held = 0
        self._released: asyncio.Event | None = None
        self._tokens: set[str] = set()
        self._tickets: set[str] = set()
        self._ws: web.WebSocketResponse | None = None
        self._ack_waiters: dict[str, asyncio.Future] = {}  # drive(): message id → its ACK
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/robot/send?access_token={self.webhook_token}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_post("/v1.0/oauth2/accessToken", self._token)
        app.router.add_post("/v1.0/card/instances/createAndDeliver", self._create_card)
        app.router.add_put("/v1.0/card/instances", self._update_card)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._private_send)
        app.router.add_post("/robot/send", self._webhook)

    def on_loop(self) -> None:
        self._released = asyncio.Event()

    # -- test controls ----------------------------------------------------------------

    def fail(self, path: str, status: int, times: int = 1, headers: dict | None = None,
             body: dict | None = None) -> None:
        """The next ``times`` calls to ``path`` answer ``status``."""
        with self._lock:
            self.faults.append({"path": path, "status": status, "times": times,
                                "headers": headers or {}, "body": body or {}})

    def hold(self, path: str, times: int = 1) -> None:
        with self._lock:
            self._holds[path] = self._holds.get(path, 0) + times
        if self.loop is not None and self._released is not None:
            self.loop.call_soon_threadsafe(self._released.clear)

    def release(self) -> None:
        if self.loop is not None and self._released is not None:
            self.loop.call_soon_threadsafe(self._released.set)

    async def _maybe_hold(self, path: str) -> None:
        with self._lock:
            hold = self._holds.get(path, 0) > 0
            if hold:
                self._holds[path] -= 1
                self.held += 1
        if hold and self._released is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), 60)

    def wait_connected(self, timeout: float = 15) -> None:
        self.wait_until(lambda: self._ws is not None and not self._ws.closed, timeout)

    def wait_until(self, predicate, timeout: float = 15, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_ack(self, message_id: str, timeout: float = 10) -> dict:
        self.wait_until(lambda: message_id in self.acks, timeout, f"ack of {message_id}")
        return self.acks[message_id][0]

    def ack_seconds(self, message_id: str) -> float:
        return self.acked_at[message_id] - self.pushed_at[message_id]

    def push(self, topic: str, data: dict, message_id: str | None = None) -> str:
        message_id = message_id or f"msg-{secrets.token_hex(8)}"
        assert self._ws is not None and self.loop is not None, "no stream client connected"
        self.pushed_at.setdefault(message_id, time.monotonic())
        asyncio.run_coroutine_threadsafe(
            self._ws.send_str(_frame(topic, data, message_id)), self.loop).result(5)
        return message_id

    @property
    def connected(self) -> int:
        """Stream clients connected now."""
        return sum(not ws.closed for ws in self._sockets)

    def drive(self, clicks: list[dict], clients: int, seconds: float, *,
              newest_only: bool = False) -> dict:
        """Closed-loop load for the benchmarks: ``clients`` loops on the fake's own event
        loop, each pushing the next card callback (``click_data``) to the connected stream
        clients in turn and waiting for its ACK. Latencies (push → ACK) in seconds, the ACKs
        that were not ``200`` and the pushes never acknowledged within 10 s. ``newest_only``: push
        to the client that connected last (a floor beside the app's own)."""
        assert self.loop is not None and self._sockets, "no stream client connected"
        return asyncio.run_coroutine_threadsafe(
            self._drive(clicks, clients, seconds, newest_only), self.loop).result(seconds + 60)

    async def _drive(self, clicks: list[dict], clients: int, seconds: float,
                     newest_only: bool) -> dict:
        loop = asyncio.get_running_loop()
        pending, turn = iter(clicks), itertools.count()
        out: dict = {"latencies": [], "refused": 0, "lost": 0, "wrapped": False}
        deadline = loop.time() + seconds

        async def one_client() -> None:
            while loop.time() < deadline:
                data = next(pending, None)
                if data is None:
                    out["wrapped"] = True  # ran out of distinct clicks
                    return
                message_id = f"bench-{secrets.token_hex(8)}"
                answered = self._ack_waiters[message_id] = loop.create_future()
                sockets = [ws for ws in self._sockets if not ws.closed]
                if newest_only:
                    sockets = sockets[-1:]
                started = time.monotonic()
                await sockets[next(turn) % len(sockets)].send_str(
                    _frame(CARD_TOPIC, data, message_id))
                try:
                    ack = await asyncio.wait_for(answered, 10)
                except TimeoutError:
                    out["lost"] += 1
                    continue
                finally:
                    self._ack_waiters.pop(message_id, None)
                out["latencies"].append(time.monotonic() - started)
                out["refused"] += ack.get("code") != 200

        started = loop.time()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        out["seconds"] = loop.time() - started
        return out

    def push_message(self, text: str, staff_id: str, conversation_id: str = "cidGROUP",
                     *, msg_id: str | None = None, conversation_type: str = "2",
                     nick: str = "someone", message_id: str | None = None) -> str:
        msg_id = msg_id or f"msgid-{secrets.token_hex(6)}"
        data = {
            "conversationId": conversation_id, "conversationType": conversation_type,
            "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}], "chatbotCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$bot", "msgId": msg_id, "senderNick": nick,
            "isAdmin": False, "senderStaffId": staff_id, "sessionWebhookExpiredTime":
            int(time.time() * 1000) + 3_600_000, "createAt": int(time.time() * 1000),
            "senderCorpId": "dingcorp", "senderId": f"$:LWCP_v1:${staff_id}",
            "sessionWebhook": f"{self.url}/robot/sendBySession?session=x",
            "robotCode": self.client_id, "msgtype": "text", "text": {"content": text},
            "isInAtList": True, "conversationTitle": "天猫活动群",
        }
        return self.push(MESSAGE_TOPIC, data, message_id)

    def push_click(self, out_track_id: str, user_id: str, value: str, *,
                   comment: str | None = None, message_id: str | None = None,
                   space_id: str = "cidGROUP") -> str:
        return self.push(CARD_TOPIC, click_data(out_track_id, user_id, value, comment=comment,
                                                space_id=space_id), message_id)

    def card_in(self, conversation_id: str) -> list[dict]:
        space = f"dtv1.card//IM_GROUP.{conversation_id}"
        return [c for c in self.cards.values() if c["create"]["openSpaceId"] == space]

    # -- helpers ----------------------------------------------------------------------

    def _fault(self, path: str) -> web.Response | None:
        with self._lock:
            for fault in self.faults:
                if fault["path"] == path and fault["times"] > 0:
                    fault["times"] -= 1
                    return web.json_response(fault["body"] or {"code": "fault"},
                                             status=fault["status"], headers=fault["headers"])
        return None

    def _throttled(self, conversation: str) -> web.Response | None:
        if self.group_limit is None or self.group_limit.admit(conversation) is None:
            return None
        return web.json_response({"code": "send.too.fast", "message":
                                  "send too fast, exceed the group's limit per minute"},
                                 status=429)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("x-acs-dingtalk-access-token") in self._tokens

    async def _api(self, request: web.Request) -> tuple[dict | None, web.Response | None]:
        fault = self._fault(request.path)
        if fault is not None:
            return None, fault
        if not self._authorised(request):
            return None, web.json_response({"code": "InvalidAuthentication",
                                            "message": "token invalid"}, status=401)
        try:
            return await request.json(), None
        except ValueError:
            return None, web.json_response({"code": "param.invalid"}, status=400)

    # -- stream gateway ---------------------------------------------------------------

    async def _open(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            return web.json_response({"code": "InvalidAuthentication"}, status=401)
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        self.connections.append({"subscriptions": body.get("subscriptions"), "ua": body.get("ua")})
        return web.json_response({"endpoint": f"ws://127.0.0.1:{self.port}/gateway",
                                  "ticket": ticket})

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="bad ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self._sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                ack = json.loads(msg.data)
                message_id = (ack.get("headers") or {}).get("messageId", "")
                waiter = self._ack_waiters.get(message_id)
                if waiter is not None:  # drive(): the benchmark's own pushes
                    if not waiter.done():
                        waiter.set_result(ack)
                    continue
                with self._lock:
                    self.acks.setdefault(message_id, []).append(ack)
                    self.acked_at.setdefault(message_id, time.monotonic())
        finally:
            self._sockets.remove(ws)
        return ws

    # -- open API ---------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        fault = self._fault(request.path)
        if fault is not None:
            return fault
        body = await request.json()
        self.token_requests += 1
        if body.get("appKey") != self.client_id or body.get("appSecret") != self.client_secret:
            return web.json_response({"code": "invalidClientIdOrSecret"}, status=400)
        token = f"token-{secrets.token_hex(8)}"
        self._tokens.add(token)
        return web.json_response({"accessToken": token, "expireIn": 7200})

    async def _create_card(self, request: web.Request) -> web.Response:
        body, error = await self._api(request)
        if error is not None:
            return error
        assert body is not None
        missing = [k for k in ("cardTemplateId", "outTrackId", "openSpaceId", "cardData")
                   if not body.get(k)]
        params = (body.get("cardData") or {}).get("cardParamMap") or {}
        if missing or not all(isinstance(v, str) for v in params.values()):
            return web.json_response({"code": "param.invalid", "message": str(missing)},
                                     status=400)
        throttled = self._throttled(body["openSpaceId"].split("IM_GROUP.", 1)[-1])
        if throttled is not None:
            return throttled
        with self._lock:
            self.creates.append(body)
            if body["outTrackId"] in self.cards:
                return web.json_response({"code": "param.outTrackIdExist",
                                          "message": "outTrackId already exists"}, status=400)
            self.cards[body["outTrackId"]] = {"create": body, "params": dict(params),
                                              "updates": []}
        await self._maybe_hold(request.path)
        space = body["openSpaceId"].split(".", 1)[-1]
        return web.json_response({"success": True, "result": {
            "outTrackId": body["outTrackId"],
            "deliverResults": [{"spaceType": "IM_GROUP", "spaceId": space, "success": True}]}})

    async def _update_card(self, request: web.Request) -> web.Response:
        body, error = await self._api(request)
        if error is not None:
            return error
        assert body is not None
        card = self.cards.get(body.get("outTrackId", ""))
        if card is None:
            return web.json_response({"code": "card.notExist"}, status=400)
        params = (body.get("cardData") or {}).get("cardParamMap") or {}
        with self._lock:
            card["updates"].append(body)
            card["params"].update(params)
        return web.json_response({"success": True, "result": True})

    async def _group_send(self, request: web.Request) -> web.Response:
        body, error = await self._api(request)
        if error is not None:
            return error
        assert body is not None
        throttled = self._throttled(str(body.get("openConversationId") or ""))
        if throttled is not None:
            return throttled
        body["param"] = json.loads(body.get("msgParam") or "{}")
        with self._lock:
            self.group_messages.append(body)
        return web.json_response({"processQueryKey": secrets.token_hex(8)})

    async def _private_send(self, request: web.Request) -> web.Response:
        body, error = await self._api(request)
        if error is not None:
            return error
        assert body is not None
        body["param"] = json.loads(body.get("msgParam") or "{}")
        with self._lock:
            self.private_messages.append(body)
        return web.json_response({"processQueryKey": secrets.token_hex(8),
                                  "invalidStaffIdList": [], "flowControlledStaffIdList": []})

    def private_texts(self, staff_id: str) -> list[str]:
        return [m["param"].get("content", "") for m in list(self.private_messages)
                if staff_id in m.get("userIds", [])]

    # -- custom robot webhook ---------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        query = request.query
        if query.get("access_token") != self.webhook_token:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        if self.webhook_secret:
            try:
                stamp = int(query.get("timestamp", "0"))
            except ValueError:
                stamp = 0
            expected = base64.b64encode(hmac.new(
                self.webhook_secret.encode(), f"{stamp}\n{self.webhook_secret}".encode(),
                hashlib.sha256).digest()).decode()
            if abs(time.time() * 1000 - stamp) > 3_600_000 or query.get("sign") != expected:
                self.webhook_refused.append(body)
                return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        now = time.monotonic()
        with self._lock:
            while self.webhook_times and self.webhook_times[0] <= now - self.webhook_window:
                self.webhook_times.popleft()
            if len(self.webhook_times) >= self.webhook_limit:
                self.webhook_refused.append(body)
                return web.json_response({"errcode": 130101, "errmsg":
                                          "send too fast, exceed 20 times per minute"})
            self.webhook_times.append(now)
            self.webhook_messages.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
