"""``POST /feishu/events``: events and card callbacks over HTTP, answered inside 3 s.

Verify first (``security.open_request``), answer the URL-verification challenge, then
store the event in the inbox and do the work, in a worker thread (the router is synchronous
and hits the database). If the work outlasts Feishu's budget we answer anyway — once the
event is stored ("working on it" for a click; the outbox updates the card afterwards). An
event that could not even be stored in time is answered 503, so Feishu delivers it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from lark_oapi.api.im.v1 import P2ImMessageReceiveV1
from lark_oapi.core.json import JSON
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTrigger

from adapters.chat.feishu.inbound import FeishuInbound, refused
from adapters.chat.feishu.security import Rejected, open_request
from adapters.chat.feishu.settings import FeishuSettings
from adapters.chat.feishu.shape import card_problem, message_problem
from bot.core.i18n import t

log = logging.getLogger(__name__)
ACK_BUDGET = 2.5  # seconds; Feishu gives 3
STORE_BUDGET = 2.9  # an event not stored by then is refused, for Feishu to send it again
MESSAGE, CARD_ACTION = "im.message.receive_v1", "card.action.trigger"


def dispatch(inbound: FeishuInbound, payload: dict[str, Any],
             stored: threading.Event | None = None) -> dict[str, Any]:
    """Route one verified v2 payload to its handler; the answer body for Feishu."""
    stored = stored or threading.Event()
    header = payload.get("header") if isinstance(payload.get("header"), dict) else {}
    event_type = header.get("event_type")
    if event_type == MESSAGE:
        message = _typed(P2ImMessageReceiveV1, payload, message_problem, "message", stored)
        if message is not None:
            inbound.on_message(message, stored)
        return {}
    if event_type == CARD_ACTION:
        click = _typed(P2CardActionTrigger, payload, card_problem, "card", stored)
        if click is None:  # Feishu's non-retry answer, and the clicker hears why
            return {"toast": {"type": "error", "content": t("inbound.unreadable_click",
                                                            inbound.lang)}}
        return json.loads(JSON.marshal(inbound.on_card_action(click, stored)))
    stored.set()
    log.info("feishu event ignored", extra={"event_type": str(event_type)[:80],
                                            "schema": str(payload.get("schema"))[:10]})
    return {}


def _typed(kind: type, payload: dict[str, Any], problem: Callable[[dict], str | None],
           name: str, stored: threading.Event) -> Any:
    """The SDK's typed event, or None when the payload is not in Feishu's shape (refused
    with a log line; lark-oapi raises on an object or list of the wrong kind)."""
    why = problem(payload)
    if why is None:
        try:
            return kind(payload)
        except Exception as exc:  # noqa: BLE001 - the SDK's unmarshalling: a shape problem
            why = f"lark-oapi cannot read it ({type(exc).__name__}: {str(exc)[:120]})"
    stored.set()
    refused(name, payload, why)
    return None


def build_router(inbound: FeishuInbound, settings: FeishuSettings,
                 workers: int = 16) -> APIRouter:
    router = APIRouter()
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feishu-in")

    @router.post("/feishu/events", include_in_schema=False)
    async def events(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            payload = open_request(raw, request.headers, settings)
        except Rejected as exc:
            log.warning("feishu request rejected",
                        extra={"reason": exc.reason,
                               "client": request.client.host if request.client else ""})
            return JSONResponse({"msg": "rejected"}, status_code=exc.status)
        if payload.get("type") == "url_verification":
            return JSONResponse({"challenge": str(payload.get("challenge", ""))})
        stored = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(executor, dispatch, inbound,
                                                            payload, stored)
        done, _ = await asyncio.wait({future}, timeout=ACK_BUDGET)
        if not done:
            if not await asyncio.to_thread(stored.wait, STORE_BUDGET - ACK_BUDGET):
                log.error("feishu event not stored in time; refused so Feishu sends it again",
                          extra={"budget": STORE_BUDGET})
                return JSONResponse({"msg": "busy"}, status_code=503)
            log.warning("feishu work outlasted the ack budget; acknowledged",
                        extra={"budget": ACK_BUDGET})
            kind = ((payload.get("header") or {}) if isinstance(payload.get("header"), dict)
                    else {}).get("event_type")
            return JSONResponse({"toast": {"type": "info", "content": t(
                "inbox.working", inbound.lang)}} if kind == CARD_ACTION else {})
        try:
            return JSONResponse(future.result())
        except Exception:  # noqa: BLE001 - logged; Feishu gets an answer regardless
            log.exception("feishu event handling failed")
            return JSONResponse({})

    return router
