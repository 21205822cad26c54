"""The dingtalk-stream client in its own thread: no public URL, the SDK authenticates the
connection (client id/secret → ticket → websocket) and we answer frames within 1.5 s.

The SDK reads ``DINGTALK_OPENAPI_ENDPOINT`` once at import time and builds the gateway URL
from it, so ``connect_to`` points both at the configured base before any connection opens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .inbound import Inbox
from .settings import DingTalkSettings

log = logging.getLogger(__name__)
os.environ.setdefault("DINGTALK_OPENAPI_ENDPOINT", os.environ.get(
    "PROMOPILOT_DINGTALK_API_URL", "https://api.dingtalk.com"))

import dingtalk_stream  # noqa: E402  (after the endpoint variable is settled)
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage  # noqa: E402

MESSAGE_TOPIC = dingtalk_stream.ChatbotMessage.TOPIC
CARD_TOPIC = dingtalk_stream.Card_Callback_Router_Topic


def connect_to(base_url: str) -> None:
    """Point the SDK's gateway handshake at ``base_url`` (a class attribute it reads per call)."""
    dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API = (
        base_url.rstrip("/") + "/v1.0/gateway/connections/open")


class _Handler(CallbackHandler):
    """Store the frame in the inbox, acknowledge, and start the work on the inbox worker."""

    def __init__(self, inbox: Inbox, pool: ThreadPoolExecutor, kind: str) -> None:
        super().__init__()
        self.logger = logging.getLogger("adapters.chat.dingtalk.sdk")
        self.inbox = inbox
        self.pool = pool
        self.kind = kind

    async def process(self, message: CallbackMessage):  # type: ignore[override]
        data = message.data if isinstance(message.data, dict) else {}
        delivery = str((data.get("msgId") if self.kind == "msg" else None)
                       or message.headers.message_id or "")
        try:
            event_id = await asyncio.get_running_loop().run_in_executor(
                self.pool, self.inbox.claim, self.kind, delivery, data)
        except Exception:  # noqa: BLE001 - let DingTalk redeliver rather than lose it
            log.exception("could not record a dingtalk delivery", extra={"delivery": delivery})
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "retry"
        if event_id is not None:  # None: a redelivery, handled the first time
            self.inbox.start(event_id)
        return AckMessage.STATUS_OK, ({} if self.kind == "card" else "OK")


class StreamRunner:
    """Runs ``DingTalkStreamClient.start()`` on a private event loop in a daemon thread."""

    def __init__(self, settings: DingTalkSettings, inbox: Inbox, workers: int = 8) -> None:
        self.settings = settings
        self.inbox = inbox
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dingtalk")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = False

    def build_client(self) -> dingtalk_stream.DingTalkStreamClient:
        connect_to(self.settings.base)
        secret = self.settings.client_secret.get_secret_value() if self.settings.client_secret \
            else ""
        sdk_log = logging.getLogger("adapters.chat.dingtalk.sdk")
        if sdk_log.level == logging.NOTSET:
            sdk_log.setLevel(logging.WARNING)  # its INFO lines print the connection ticket
        sdk_log.addFilter(self._quiet_when_stopping)
        client = dingtalk_stream.DingTalkStreamClient(
            dingtalk_stream.Credential(self.settings.client_id, secret), logger=sdk_log)
        client.register_callback_handler(MESSAGE_TOPIC, _Handler(self.inbox, self.pool, "msg"))
        client.register_callback_handler(CARD_TOPIC, _Handler(self.inbox, self.pool, "card"))
        return client

    def _quiet_when_stopping(self, record: logging.LogRecord) -> bool:
        """The SDK reports our own cancel as a network error; that is not news."""
        return not self._stopping

    def start(self) -> None:
        client = self.build_client()
        self._thread = threading.Thread(target=self._run, args=(client,), daemon=True,
                                        name="dingtalk-stream")
        self._thread.start()
        self._ready.wait(5)
        log.info("dingtalk stream started", extra={"client_id": self.settings.client_id})

    def _run(self, client: dingtalk_stream.DingTalkStreamClient) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._task = loop.create_task(client.start())
        self._ready.set()
        try:
            loop.run_until_complete(self._task)
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
            pass
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """The SDK retries after a cancel, so cancel until its task is really gone."""
        thread, loop, task = self._thread, self._loop, self._task
        if thread is None or loop is None or task is None:
            return
        self._stopping = True
        for _ in range(int(timeout / 0.1)):
            if not thread.is_alive():
                break
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # loop already closed
                break
            thread.join(0.1)
        self.pool.shutdown(wait=False, cancel_futures=False)
        logging.getLogger("adapters.chat.dingtalk.sdk").removeFilter(self._quiet_when_stopping)
        log.info("dingtalk stream stopped")
