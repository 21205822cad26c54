"""``POST /feishu/events``, and how every Feishu event is answered inside 3 s.

The endpoint verifies first (``security.open_request``) and answers the URL-verification
challenge; then ``dispatch`` — which the long connection calls too (``longconn``) — stores
the event in the inbox (one INSERT on a thread) and only then waits for the work on the
event loop (``InboxWorker.answer``: an asyncio future the inbox worker resolves), so a
waiting click holds no thread and never keeps the next one from being stored. How long a
click waits and by when its answer leaves is ``pace.Pace``. An event that could not be
stored in time (or at all) is refused (HTTP 503), so Feishu delivers it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from lark_oapi.api.im.v1.model.p2_im_message_receive_v1 import P2ImMessageReceiveV1
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTrigger

from adapters.chat.feishu.inbound import CHAT, FeishuInbound, refused
from adapters.chat.feishu.pace import Pace
from adapters.chat.feishu.security import Rejected, open_request
from adapters.chat.feishu.settings import FeishuSettings
from adapters.chat.feishu.shape import card_problem, message_problem
from bot.core.i18n import t

log = logging.getLogger(__name__)
STORE_BUDGET = 2.9  # an event not stored by then is refused, for Feishu to send it again
SENT_WITHIN = 10.0  # seconds: an older create_time is a redelivery's (or a clock's skew)
MESSAGE, CARD_ACTION = "im.message.receive_v1", "card.action.trigger"


def sent_at(payload: dict, started: float) -> float:
    """When Feishu sent the event, on the monotonic clock: its header's ``create_time`` (ms)
    when plausible (not in the future, at most ``SENT_WITHIN`` ago — a redelivery keeps the
    first one's), else when the endpoint started. Time spent in our accept queue at a peak
    counts toward Feishu's 3 s too; the store still has its own budget from ``started``."""
    header = payload.get("header") if isinstance(payload.get("header"), dict) else {}
    created = str(header.get("create_time") or "")
    if not created.isdigit():
        return started
    ago = time.time() - int(created) / 1000
    if not 0 < ago <= SENT_WITHIN:
        return started
    return min(started, time.monotonic() - ago)


class NotStored(Exception):
    """The inbox did not take the event in time (or the database is away): answer 503."""


def _typed(kind: type, payload: dict[str, Any], problem: Callable[[dict], str | None],
           name: str) -> Any:
    """The SDK's typed event, or None when the payload is not in Feishu's shape (refused
    with a log line; lark-oapi raises on an object or list of the wrong kind)."""
    why = problem(payload)
    if why is None:
        try:
            return kind(payload)
        except Exception as exc:  # noqa: BLE001 - the SDK's unmarshalling: a shape problem
            why = f"lark-oapi cannot read it ({type(exc).__name__}: {str(exc)[:120]})"
    refused(name, payload, why)
    return None


async def _store(inbound: FeishuInbound, key: str, kind: str, payload: dict,
                 started: float) -> int | None:
    """The inbox row's id (None: a redelivery). Raises ``NotStored`` past the budget; a row
    stored after that is still worked on (Feishu's retry finds it as a redelivery)."""
    job = asyncio.ensure_future(asyncio.to_thread(inbound.inbox.accept, key, CHAT, kind,
                                                  payload))
    left = STORE_BUDGET - (time.monotonic() - started)
    done, _ = await asyncio.wait({job}, timeout=max(left, 0.1))
    if not done:
        def late(future: asyncio.Future) -> None:
            if not future.cancelled() and future.exception() is None and future.result():
                inbound.inbox.submit(future.result())

        job.add_done_callback(late)
        raise NotStored(f"not stored within {STORE_BUDGET}s")
    try:
        return job.result()
    except Exception as exc:  # the database refused or is away
        raise NotStored(repr(exc)[:200]) from exc


async def _result(inbound: FeishuInbound, event_id: int, started: float) -> dict | None:
    """Wait for the work on the loop when it can be done in time (``Pace``); else "later"."""
    inbox, pace = inbound.inbox, inbound.pace
    left = pace.wait_for(inbox.queued(), inbox.workers, time.monotonic() - started)
    if left is None:
        inbox.submit(event_id)  # behind a long queue (a peak): it cannot be shown in time
        return None
    waiting = time.monotonic()
    answer = await inbox.answer(event_id, left)
    pace.result.add(time.monotonic() - waiting)
    return answer


async def _reply(inbound: FeishuInbound, result: dict, started: float) -> dict:
    """The answer with the card as it is now, or with the toast alone if reading the card
    would pass the deadline (the card's update follows from the outbox)."""
    begun = time.monotonic()
    job = asyncio.ensure_future(asyncio.to_thread(inbound.click_reply, result))
    try:
        return await asyncio.wait_for(asyncio.shield(job),
                                      Pace.reply_within(begun - started))
    except TimeoutError:
        return inbound.click_reply(result, card=False)
    finally:
        inbound.pace.reply.add(time.monotonic() - begun)


async def click(inbound: FeishuInbound, payload: dict, started: float) -> dict:
    """A verified ``card.action.trigger``: stored, then answered with the toast and card."""
    data = _typed(P2CardActionTrigger, payload, card_problem, "card")
    if data is None:  # Feishu's non-retry answer, and the clicker hears why
        return {"toast": {"type": "error", "content": t("inbound.unreadable_click",
                                                        inbound.lang)}}
    key = inbound.click_key(data)
    if key is None:
        return {"toast": {"type": "error", "content": t("feishu.not_a_button", inbound.lang)}}
    event_id = await _store(inbound, key, "card", payload, started)
    sent = sent_at(payload, started)  # Feishu's 3 s run from there
    if event_id is None:
        result = await asyncio.to_thread(inbound.redelivered, key)
    else:
        result = await _result(inbound, event_id, sent)
    if result is None:
        return inbound.click_reply(None)
    return await _reply(inbound, result, sent)


async def message(inbound: FeishuInbound, payload: dict, started: float) -> dict:
    """A verified ``im.message.receive_v1``: stored; the reply goes out through the outbox."""
    data = _typed(P2ImMessageReceiveV1, payload, message_problem, "message")
    key = inbound.message_key(data) if data is not None else None
    if key is not None:
        event_id = await _store(inbound, key, "message", payload, started)
        if event_id is not None:  # None: re-delivered, the first one is answered
            await _result(inbound, event_id, started)  # usually done before the answer
    return {}


async def dispatch(inbound: FeishuInbound, payload: dict, started: float) -> dict | None:
    """A verified event's answer, by its type (None: nothing to say). The HTTP endpoint and
    the long connection both answer through here. Raises ``NotStored`` (logged) for the
    caller to refuse the event so Feishu sends it again; any other failure comes after the
    event was stored or refused, so it is logged and answered with nothing."""
    event_type = _event_type(payload)
    try:
        if event_type == CARD_ACTION:
            return await click(inbound, payload, started)
        if event_type == MESSAGE:
            return await message(inbound, payload, started)
    except NotStored as exc:
        log.error("feishu event not stored; refused so Feishu sends it again",
                  extra={"reason": str(exc), "event_type": event_type})
        raise
    except Exception:  # noqa: BLE001 - stored (or refused) already; Feishu gets an answer
        log.exception("feishu event handling failed")
        return None
    log.info("feishu event ignored", extra={"event_type": event_type,
                                            "schema": str(payload.get("schema"))[:10]})
    return None


def build_router(inbound: FeishuInbound, settings: FeishuSettings) -> APIRouter:
    router = APIRouter()

    @router.post("/feishu/events", include_in_schema=False)
    async def events(request: Request) -> JSONResponse:
        started = time.monotonic()
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
        try:
            return JSONResponse(await dispatch(inbound, payload, started) or {})
        except NotStored:
            return JSONResponse({"msg": "busy"}, status_code=503)

    return router


def _event_type(payload: dict) -> str:
    header = payload.get("header") if isinstance(payload.get("header"), dict) else {}
    return str(header.get("event_type"))[:80]
