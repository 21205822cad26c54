"""The long-connection (websocket) receive mode: no public URL needed.

lark-oapi's ``ws.Client`` runs on a module-level event loop captured at import, so it gets
its own thread with a fresh loop installed as that module's ``loop``, and is constructed
there too. Events reach the same
``FeishuInbound`` handlers as the HTTP endpoint; the SDK answers card callbacks with what
the handler returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from lark_oapi.core.enum import LogLevel
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
        self.settings = settings
        self.handler = build_event_handler(inbound)
        self.client: Any = None  # lark_oapi.ws.client.Client, built in its thread
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        import lark_oapi.ws.client as ws_client  # imported here: it takes the current loop

        ws_client.loop = self.loop  # the SDK schedules everything on this module global
        try:
            # Built here: its constructor schedules a cache task on the current loop.
            self.client = ws_client.Client(
                self.settings.app_id, self.settings.app_secret.get_secret_value(),
                event_handler=self.handler, domain=self.settings.base_url,
                log_level=LogLevel.WARNING)
            self.client.start()
        except RuntimeError as exc:  # the loop was stopped by ``stop()``
            log.info("feishu long connection stopped", extra={"reason": str(exc)[:200]})
        except Exception as exc:  # noqa: BLE001 - e.g. wrong app credentials
            log.error("feishu long connection ended", extra={"error": repr(exc)[:300]})
        finally:
            self._close()

    def _close(self) -> None:
        """Cancel the SDK's tasks (ping, receive, cache cron), close the socket and loop."""
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
            loop.close()

    async def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="feishu-ws", daemon=True)
        self.thread.start()
        log.info("feishu long connection starting")

    async def stop(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in between: already stopped
                self.loop.call_soon_threadsafe(self.loop.stop)
