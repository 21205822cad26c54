"""A local fake of Feishu's long-connection gateway (the websocket events arrive on).

The open platform hands a client its socket address at ``POST /callback/ws/endpoint``
(``FakeFeishu.gateway`` points that at this fake). Frames are Feishu's ``pbbp2.Frame``
protobuf (the SDK ships its generated class, used here to encode and decode): the gateway
pushes an event as a DATA frame (headers ``type=event``, ``message_id``, ``sum``, ``seq``,
``trace_id``; the event JSON as payload) and the client answers with the same frame, its
payload now ``{"code": 200, "data": base64(answer JSON)}``. The client's pings (CONTROL
frames) are answered with pongs. ``push`` sends an event, ``answer`` waits for its reply.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from typing import Any

from aiohttp import WSMsgType, web
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from tests.fakes.loopserver import LoopServer

SERVICE_ID = 7


def _event_frame(payload: bytes, message_id: str) -> bytes:
    frame = Frame(SeqID=0, LogID=0, service=SERVICE_ID, method=1, payload=payload)
    for key, value in {"type": "event", "message_id": message_id, "sum": "1", "seq": "0",
                       "trace_id": secrets.token_hex(8)}.items():
        header = frame.headers.add()
        header.key, header.value = key, value
    return frame.SerializeToString()


def _pong(ping: Frame) -> bytes:
    frame = Frame(SeqID=ping.SeqID, LogID=ping.LogID, service=ping.service, method=0)
    header = frame.headers.add()
    header.key, header.value = "type", "pong"
    return frame.SerializeToString()


class FakeFeishuGateway(LoopServer):
    name = "fake Feishu gateway"

    def __init__(self) -> None:
        super().__init__()
        self.pushed_at: dict[str, float] = {}
        self.answers: dict[str, dict] = {}  # message id → {"code", "data", "seconds"}
        self.pings = 0
        self._lock = threading.Condition()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?device_id=fake-device&service_id={SERVICE_ID}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self._socket)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        try:
            async for message in socket:
                if message.type == WSMsgType.BINARY:
                    await self._received(socket, message.data)
        finally:
            self._sockets.remove(socket)
        return socket

    async def _received(self, socket: web.WebSocketResponse, data: bytes) -> None:
        frame = Frame()
        frame.ParseFromString(data)
        headers = {header.key: header.value for header in frame.headers}
        if frame.method == 0 and headers.get("type") == "ping":
            self.pings += 1
            await socket.send_bytes(_pong(frame))
            return
        message_id = headers.get("message_id", "")
        response = json.loads(frame.payload)
        body = response.get("data")
        with self._lock:
            self.answers[message_id] = {
                "code": response.get("code"),
                "data": json.loads(base64.b64decode(body)) if body else None,
                "seconds": time.monotonic() - self.pushed_at.get(message_id, time.monotonic()),
                "biz_rt": headers.get("biz_rt")}
            self._lock.notify_all()

    # -- test controls ----------------------------------------------------------------

    def wait_connected(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self._sockets:
            if time.monotonic() > deadline:
                raise AssertionError("no long-connection client connected to the gateway")
            time.sleep(0.02)

    def push(self, event: dict[str, Any] | bytes, message_id: str | None = None) -> str:
        """Send one event (a dict as JSON, or raw bytes) to the connected client."""
        assert self.loop is not None and self._sockets, "no long-connection client connected"
        message_id = message_id or f"msg_{secrets.token_hex(8)}"
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        with self._lock:
            self.pushed_at[message_id] = time.monotonic()
        asyncio.run_coroutine_threadsafe(
            self._sockets[-1].send_bytes(_event_frame(payload, message_id)), self.loop).result(5)
        return message_id

    def answer(self, message_id: str, timeout: float = 10) -> dict:
        """The client's answer to one pushed event (waits for it)."""
        with self._lock:
            if not self._lock.wait_for(lambda: message_id in self.answers, timeout):
                raise AssertionError(f"no answer to {message_id} within {timeout}s")
            return self.answers[message_id]
