"""The long-connection (websocket) receive mode: no public URL needed.

lark-oapi's ``ws.Client`` runs on a module-level event loop captured at import, so it gets
its own thread with a fresh loop installed as that module's ``loop``. Events reach the same
``FeishuInbound`` handlers as the HTTP endpoint; the SDK answers card callbacks with what
the handler returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import lark_oapi as lark
from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

from adapters.chat.feishu.inbound import FeishuInbound
from adapters.chat.feishu.settings import FeishuSettings

log = logging.getLogger(__name__)


def build_event_handler(inbound: FeishuInbound) -> EventDispatcherHandler:
    # The long connection is authenticated by app id/secret, so no token/key checks here.
    return (EventDispatcherHandler.builder("", "")
            .register_p2_im_message_receive_v1(inbound.on_message)
            .register_p2_card_action_trigger(inbound.on_card_action)
            .build())


class LongConnection:
    def __init__(self, settings: FeishuSettings, inbound: FeishuInbound) -> None:
        self.handler = build_event_handler(inbound)
        self.client = lark.ws.Client(
            settings.app_id, settings.app_secret.get_secret_value(),
            event_handler=self.handler, domain=settings.base_url,
            log_level=lark.LogLevel.WARNING)
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        import lark_oapi.ws.client as ws_client

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        ws_client.loop = self.loop  # the SDK schedules everything on this module global
        try:
            self.client.start()
        except RuntimeError as exc:  # the loop was stopped by ``stop()``
            log.info("feishu long connection stopped", extra={"reason": str(exc)[:200]})
        except Exception as exc:  # noqa: BLE001 - e.g. wrong app credentials
            log.error("feishu long connection ended", extra={"error": repr(exc)[:300]})

    async def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="feishu-ws", daemon=True)
        self.thread.start()
        log.info("feishu long connection starting")

    async def stop(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
