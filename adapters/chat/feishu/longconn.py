"""The long-connection (websocket) receive mode: no public URL needed.

lark-oapi's ``ws.Client`` runs on a module-level event loop captured at import, so it gets
its own thread with a fresh loop installed as that module's ``loop``, and is constructed
there too. The SDK calls its event handler synchronously on that loop and writes back what
it returns, so one click waiting for its result (up to 2 s) held every event behind it on
the one connection. Here each event frame is answered by ``endpoint.dispatch`` instead, as
the HTTP endpoint answers it: stored on a thread, the result awaited on the loop, the answer
out by the same deadline (``pace``). An event that could not be stored is answered with an
error code, so Feishu delivers it again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lark_oapi.core.enum import LogLevel
from lark_oapi.core.json import JSON
from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

from adapters.chat.feishu.endpoint import NotStored, dispatch
from adapters.chat.feishu.inbound import FeishuInbound, refused
from adapters.chat.feishu.settings import FeishuSettings

log = logging.getLogger(__name__)
THREADS = 16  # the loop's threads for the inbox stores and card reads (the default is 6)
STOP_WITHIN = 5.0  # seconds stop() keeps stopping the SDK's loop


def _client_type() -> type:
    """lark-oapi's ws client, its data frames answered by ``answer`` (set on the instance).
    Imported here: the SDK's module takes the current event loop when first imported."""
    import lark_oapi.ws.client as ws_client
    from lark_oapi.ws import const
    from lark_oapi.ws.enum import MessageType

    class Client(ws_client.Client):
        answer: Any = None  # async (payload bytes, started) -> lark_oapi.ws.model.Response

        async def _handle_data_frame(self, frame: Any) -> None:
            started = time.monotonic()
            headers = {header.key: header.value for header in frame.headers}
            if headers.get(const.HEADER_TYPE) != MessageType.EVENT.value:
                return  # old-style card callbacks: the SDK answers nothing here either
            payload = frame.payload
            parts = int(headers.get(const.HEADER_SUM) or 1)
            if parts > 1:  # a large event comes in parts
                payload = self._combine(headers.get(const.HEADER_MESSAGE_ID, ""), parts,
                                        int(headers.get(const.HEADER_SEQ) or 0), payload)
                if payload is None:
                    return
            response = await self.answer(payload, started)
            took = frame.headers.add()
            took.key, took.value = const.HEADER_BIZ_RT, str(int((time.monotonic() - started) * 1000))
            frame.payload = JSON.marshal(response).encode()
            await self._write_message(frame.SerializeToString())

    return Client


class LongConnection:
    def __init__(self, settings: FeishuSettings, inbound: FeishuInbound) -> None:
        self.settings = settings
        self.inbound = inbound
        self.client: Any = None  # the Client of ``_client_type``, built in its thread
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    async def answer(self, raw: bytes, started: float) -> Any:
        """The SDK's ``Response`` to one event frame: 200 with the answer's JSON (base64, as
        the SDK sends it), or 500 when the event was not stored (Feishu sends it again)."""
        from lark_oapi.ws.model import Response

        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            refused("event", {}, "not a JSON object")
            return Response(code=http.HTTPStatus.OK)
        try:
            result = await dispatch(self.inbound, payload, started)
        except NotStored:  # logged there
            return Response(code=http.HTTPStatus.INTERNAL_SERVER_ERROR)
        response = Response(code=http.HTTPStatus.OK)
        if result:
            response.data = base64.b64encode(JSON.marshal(result).encode())
        return response

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(ThreadPoolExecutor(THREADS, "feishu-ws"))
        asyncio.set_event_loop(self.loop)
        client_type = _client_type()
        import lark_oapi.ws.client as ws_client

        ws_client.loop = self.loop  # the SDK schedules everything on this module global
        try:
            # Built here: its constructor schedules a cache task on the current loop. The
            # long connection is authenticated by app id/secret: no token or key checks.
            self.client = client_type(
                self.settings.app_id, self.settings.app_secret.get_secret_value(),
                event_handler=EventDispatcherHandler.builder("", "").build(),
                domain=self.settings.base_url, log_level=LogLevel.WARNING)
            self.client.answer = self.answer
            self.client.start()
        except RuntimeError as exc:  # the loop was stopped by ``stop()``
            log.info("feishu long connection stopped", extra={"reason": str(exc)[:200]})
        except Exception as exc:  # noqa: BLE001 - e.g. wrong app credentials
            log.error("feishu long connection ended", extra={"error": repr(exc)[:300]})
        finally:
            self._close()

    def _close(self) -> None:
        """Cancel the SDK's tasks (ping, receive, cache cron), close the socket and loop."""
        self._closing = True
        loop = self.loop
        assert loop is not None
        try:
            pending = asyncio.all_tasks(loop)
            for pending_task in pending:
                pending_task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            if self.client is not None:
                loop.run_until_complete(self.client._disconnect())  # no public close()
        except Exception as exc:  # noqa: BLE001 - shutting down anyway
            log.warning("feishu long connection close", extra={"error": repr(exc)[:200]})
        finally:
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="feishu-ws", daemon=True)
        self.thread.start()
        log.info("feishu long connection starting")

    async def stop(self) -> None:
        """Stop the SDK's loop, again until it is closing: the SDK runs its loop several
        times in a row (connect, disconnect, reconnect), and one stop that landed between
        two of them ended the first while the reconnecting went on for ever."""
        deadline = time.monotonic() + STOP_WITHIN
        while (self.loop is not None and not self.loop.is_closed() and not self._closing
               and time.monotonic() < deadline):
            with contextlib.suppress(RuntimeError):  # closed in between: already stopped
                self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.sleep(0.05)
