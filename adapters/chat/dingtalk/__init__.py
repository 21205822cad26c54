"""DingTalk (钉钉) for PromoPilot: Stream-mode robot + interactive cards, or a webhook robot.

``install`` does nothing unless ``DINGTALK_CLIENT_ID``/``DINGTALK_CLIENT_SECRET`` or
``DINGTALK_WEBHOOK_URL`` are set. See docs/dingtalk.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlmodel import select

from bot.core.inbox import inbox_of
from storage.db import Database
from storage.models import ChatBinding

from .adapter import DingTalkChatAdapter
from .openapi import OpenApi
from .settings import WEBHOOK_CHANNEL, DingTalkSettings
from .webhook import SlotLimiter, WebhookRobot

log = logging.getLogger(__name__)
__all__ = ["DingTalkChatAdapter", "DingTalkSettings", "build_adapter", "install"]


def build_adapter(settings: DingTalkSettings, db: Database) -> DingTalkChatAdapter:
    api = OpenApi(settings) if settings.has_app else None
    webhook = None
    if settings.has_webhook and settings.webhook_url is not None:
        webhook = WebhookRobot(settings.webhook_url, settings.webhook_secret,
                               SlotLimiter(settings.webhook_per_window,
                                           settings.webhook_window_seconds))
    return DingTalkChatAdapter(settings, db, api, webhook)


def bind_webhook_group(db: Database, platforms: str) -> int:
    """The webhook robot's group hears the configured marketplaces' notices (idempotent)."""
    added = 0
    with db.session() as session:
        for platform in [p.strip() for p in platforms.split(",") if p.strip()]:
            exists = session.exec(select(ChatBinding.id).where(
                ChatBinding.chat == "dingtalk", ChatBinding.channel_id == WEBHOOK_CHANNEL,
                ChatBinding.platform == platform, ChatBinding.purpose == "notices")).first()
            if not exists:
                session.add(ChatBinding(chat="dingtalk", channel_id=WEBHOOK_CHANNEL,
                                        channel_name="DingTalk webhook robot",
                                        platform=platform, purpose="notices"))
                added += 1
    return added


def install(container: Any, api: Any, settings: DingTalkSettings | None = None) -> None:
    settings = settings or DingTalkSettings()
    if not settings.has_app and not settings.has_webhook:
        return
    container.adapters["dingtalk"] = build_adapter(settings, container.db)
    hooks_start = container.extras.setdefault("on_start", [])
    hooks_stop = container.extras.setdefault("on_stop", [])
    if settings.has_webhook:
        async def bind() -> None:
            await asyncio.to_thread(bind_webhook_group, container.db, settings.webhook_platforms)

        hooks_start.append(bind)
    if settings.has_app and settings.stream_enabled:
        from .inbound import Inbox
        from .stream import StreamRunner

        def kick() -> None:
            container.extras.get("kick", lambda: None)()

        runner = StreamRunner(settings, Inbox(container.db, settings, kick,
                                              inbox_of(container)))
        container.extras["dingtalk_stream"] = runner

        async def start() -> None:
            await asyncio.to_thread(runner.start)

        async def stop() -> None:
            await asyncio.to_thread(runner.stop)

        hooks_start.append(start)
        hooks_stop.append(stop)
    log.info("dingtalk installed", extra={"stream": settings.has_app and settings.stream_enabled,
                                          "cards": bool(settings.card_template_id),
                                          "webhook": settings.has_webhook})
