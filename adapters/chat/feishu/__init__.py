"""Feishu / Lark: PromoPilot in Feishu group chats, on lark-oapi.

``install`` registers the ``feishu`` chat adapter, ``POST /feishu/events`` and — when no
public URL is configured — the long connection. It does nothing unless FEISHU_APP_ID and
FEISHU_APP_SECRET are set. See docs/feishu.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from adapters.chat.feishu.sdk import light
from adapters.chat.feishu.settings import FeishuSettings
from bot.core.inbox import inbox_of

light()  # before any lark_oapi import (the modules below): only what they name is loaded
log = logging.getLogger(__name__)


def install(container: Any, api: Any, settings: FeishuSettings | None = None) -> None:
    settings = settings or FeishuSettings()
    if not settings.configured:
        return
    # Even the parts of lark-oapi we use take a second to import: only when configured.
    from adapters.chat.feishu.adapter import FeishuAdapter
    from adapters.chat.feishu.endpoint import build_router
    from adapters.chat.feishu.inbound import FeishuInbound

    lang = container.settings.language
    adapter = FeishuAdapter(settings, lang)
    container.adapters["feishu"] = adapter

    def kick() -> None:
        container.extras.get("kick", lambda: None)()

    inbound = FeishuInbound(container.db, adapter, lang, kick=kick, inbox=inbox_of(container))
    container.extras["feishu"] = inbound
    adapter.mention_ids = inbound.open_ids
    api.include_router(build_router(inbound, settings))
    if not (settings.verification_token.get_secret_value()
            or settings.encrypt_key.get_secret_value()):
        log.warning("feishu HTTP callbacks refused until FEISHU_VERIFICATION_TOKEN or "
                    "FEISHU_ENCRYPT_KEY is set")
    hooks = container.extras.setdefault("on_start", [])

    async def learn_bot_identity() -> None:
        from lark_oapi.channel.bot_identity import fetch_bot_identity

        try:
            identity = await asyncio.wait_for(asyncio.to_thread(
                lambda: asyncio.run(fetch_bot_identity(adapter.client.config))), 5)
        except Exception as exc:  # noqa: BLE001 - degrade to "any bot mention"
            identity = None
            log.warning("feishu bot identity unknown", extra={"error": repr(exc)[:200]})
        if identity is not None:
            inbound.bot_open_id = identity.open_id
        else:
            log.warning("feishu bot identity unknown; any bot mention counts as ours")

    hooks.append(learn_bot_identity)
    mode = settings.receive_mode(container.settings.public_url)
    if mode == "websocket":
        from adapters.chat.feishu.longconn import LongConnection

        connection = LongConnection(settings, inbound)
        container.extras["feishu_ws"] = connection
        hooks.append(connection.start)
        container.extras.setdefault("on_stop", []).append(connection.stop)
    log.info("feishu installed", extra={"mode": mode, "domain": settings.base_url})
