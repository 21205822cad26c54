"""PromoPilot in Slack (slack-bolt, async): cards in bound channels, clicks, /promo, @mentions.

``install`` does nothing unless ``SLACK_BOT_TOKEN`` and ``SLACK_SIGNING_SECRET`` are set, so
the demo runs without credentials. HTTP mode serves events, interactivity and the slash
command on ``POST /slack/events``; with ``SLACK_APP_TOKEN`` Socket Mode is used as well, so
no public URL is needed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from bot.core.inbox import inbox_of

from . import payload
from .client import SlackChatAdapter
from .inbound import SlackInbound, build_bolt
from .settings import SlackSettings

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def install(container: Any, api: Any, settings: SlackSettings | None = None) -> None:
    settings = settings or SlackSettings()
    if not settings.configured:
        log.info("slack not configured (SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET unset)")
        return
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    adapter = SlackChatAdapter(settings)
    container.adapters["slack"] = adapter

    def kick() -> None:
        fn = container.extras.get("kick")
        if fn is not None:
            fn()

    work = SlackInbound(container.db, adapter, kick, inbox_of(container),
                        loop=lambda: container.extras.get("loop"))
    bolt = build_bolt(settings, work)
    container.extras["slack_app"] = bolt
    handler = AsyncSlackRequestHandler(bolt)

    secret = settings.signing_secret.get_secret_value()

    async def slack_events(request: Request) -> Response:
        """Signed and in Slack's shape before bolt reads it (``payload``): a malformed body
        is refused with 400 and no retry, never a 500 and never an action."""
        raw = await request.body()  # cached: bolt reads the same bytes
        if not payload.signed(raw, request.headers, secret):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            why = payload.problem(payload.parse(raw, request.headers.get("content-type")))
        except payload.Malformed as exc:
            why = str(exc)
        if why is not None:
            log.warning("slack payload refused", extra={
                "reason": why, "bytes": len(raw),
                "client": request.client.host if request.client else ""})
            return JSONResponse({"error": "malformed payload"}, status_code=400,
                                headers={"X-Slack-No-Retry": "1"})
        return await handler.handle(request)

    api.add_api_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)
    container.extras.setdefault("on_stop", []).append(adapter.aclose)
    if settings.socket_mode:
        _socket_mode(container, bolt, settings)
    log.info("slack installed", extra={"path": EVENTS_PATH, "socket_mode": settings.socket_mode})


def _socket_mode(container: Any, bolt: Any, settings: SlackSettings) -> None:
    """Connect out to Slack over a websocket on start; close it on stop. The handler owns an
    aiohttp session, so it is built inside the running loop, not at install time."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    state: dict[str, Any] = {}

    async def start() -> None:
        try:
            handler = AsyncSocketModeHandler(bolt, settings.app_token.get_secret_value())
            await handler.connect_async()
            state["handler"] = handler
        except Exception as exc:  # noqa: BLE001 - HTTP mode keeps working without it
            log.error("slack socket mode failed to connect", extra={"error": repr(exc)[:300]})

    async def stop() -> None:
        handler = state.pop("handler", None)
        if handler is None:
            return
        try:
            await handler.close_async()
        except Exception as exc:  # noqa: BLE001
            log.warning("slack socket mode close failed", extra={"error": repr(exc)[:300]})

    container.extras.setdefault("on_start", []).append(start)
    container.extras.setdefault("on_stop", []).append(stop)
