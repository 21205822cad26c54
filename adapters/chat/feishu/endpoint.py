"""``POST /feishu/events``: events and card callbacks over HTTP, answered inside 3 s.

Verify first (``security.open_request``), answer the URL-verification challenge, then store
the event in the inbox (one INSERT on a request thread) and only then wait for the work — on
the event loop (``InboxWorker.answer``: an asyncio future the inbox worker resolves), so a
waiting click holds no thread and never keeps the next one from being stored. A click waits
for its result up to ``ANSWER_WITHIN`` (the toast shows it) — when the result can come in that
time: the events queued ahead of it over the workers times the recent work per event, or what
the last results really took to come (``Pace``: thread hops and a busy process included), if
longer. Behind a longer queue (a peak) the answer is "working on it" at once and the card
update follows from the outbox, instead of every click spinning for 2 s. Whatever happens, the
answer leaves by ``DEADLINE`` (Feishu shows the clicker an error after 3 s): a result whose
card cannot be read by then is answered with its toast alone. An event that could not be
stored in time (or at all) is answered 503, so Feishu delivers it again.
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

from adapters.chat.feishu.inbound import ANSWER_WITHIN, CHAT, FeishuInbound, refused
from adapters.chat.feishu.security import Rejected, open_request
from adapters.chat.feishu.settings import FeishuSettings
from adapters.chat.feishu.shape import card_problem, message_problem
from bot.core.i18n import t

log = logging.getLogger(__name__)
DEADLINE = 2.5  # seconds after arrival by which every click's answer leaves
STORE_BUDGET = 2.9  # an event not stored by then is refused, for Feishu to send it again
MESSAGE, CARD_ACTION = "im.message.receive_v1", "card.action.trigger"


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


class Pace:
    """How long the recent answers really took (moving averages): a result's wait from its
    store, and the card read of the answer. The queue's length alone missed where a busy
    process spends the time (thread hops, the GIL), and the answers at a peak came after
    Feishu's 3 s."""

    def __init__(self) -> None:
        self.result = 0.0
        self.reply = 0.05

    def waited(self, seconds: float) -> None:
        self.result += 0.2 * (seconds - self.result)

    def replied(self, seconds: float) -> None:
        self.reply += 0.2 * (seconds - self.reply)

    def skipped(self) -> None:
        """Not waited for, so not measured: the estimate eases off and a later click waits
        again once the backlog has gone."""
        self.result *= 0.9


async def _result(inbound: FeishuInbound, event_id: int, started: float,
                  pace: Pace) -> dict | None:
    """Wait for the work on the loop when it can be done inside the budget; else "later"."""
    inbox = inbound.inbox
    elapsed = time.monotonic() - started
    left = max(0.2, ANSWER_WITHIN - elapsed)
    expected = max((inbox.queued() / inbox.workers + 1) * inbound.work_seconds, pace.result)
    if expected > left or expected + pace.reply > DEADLINE - elapsed:
        inbox.submit(event_id)  # behind a long queue (a peak): it cannot be shown in time
        pace.skipped()
        return None
    waiting = time.monotonic()
    answer = await inbox.answer(event_id, left)
    pace.waited(time.monotonic() - waiting)
    return answer


async def _reply(inbound: FeishuInbound, result: dict, started: float, pace: Pace) -> dict:
    """The answer with the card as it is now, or with the toast alone if reading the card
    would pass ``DEADLINE`` (the card's update follows from the outbox)."""
    begun = time.monotonic()
    job = asyncio.ensure_future(asyncio.to_thread(inbound.click_reply, result))
    try:
        return await asyncio.wait_for(asyncio.shield(job),
                                      max(DEADLINE - (begun - started), 0.05))
    except TimeoutError:
        return inbound.click_reply(result, card=False)
    finally:
        pace.replied(time.monotonic() - begun)


async def click(inbound: FeishuInbound, payload: dict, started: float, pace: Pace) -> dict:
    """A verified ``card.action.trigger``: stored, then answered with the toast and card."""
    data = _typed(P2CardActionTrigger, payload, card_problem, "card")
    if data is None:  # Feishu's non-retry answer, and the clicker hears why
        return {"toast": {"type": "error", "content": t("inbound.unreadable_click",
                                                        inbound.lang)}}
    key = inbound.click_key(data)
    if key is None:
        return {"toast": {"type": "error", "content": t("feishu.not_a_button", inbound.lang)}}
    event_id = await _store(inbound, key, "card", payload, started)
    if event_id is None:
        result = await asyncio.to_thread(inbound.redelivered, key)
    else:
        result = await _result(inbound, event_id, started, pace)
    if result is None:
        return inbound.click_reply(None)
    return await _reply(inbound, result, started, pace)


async def message(inbound: FeishuInbound, payload: dict, started: float, pace: Pace) -> dict:
    """A verified ``im.message.receive_v1``: stored; the reply goes out through the outbox."""
    data = _typed(P2ImMessageReceiveV1, payload, message_problem, "message")
    key = inbound.message_key(data) if data is not None else None
    if key is not None:
        event_id = await _store(inbound, key, "message", payload, started)
        if event_id is not None:  # None: re-delivered, the first one is answered
            await _result(inbound, event_id, started, pace)  # usually done before the answer
    return {}


def build_router(inbound: FeishuInbound, settings: FeishuSettings) -> APIRouter:
    router = APIRouter()
    pace = Pace()

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
        header = payload.get("header") if isinstance(payload.get("header"), dict) else {}
        event_type = header.get("event_type")
        try:
            if event_type == CARD_ACTION:
                return JSONResponse(await click(inbound, payload, started, pace))
            if event_type == MESSAGE:
                return JSONResponse(await message(inbound, payload, started, pace))
        except NotStored as exc:
            log.error("feishu event not stored; refused so Feishu sends it again",
                      extra={"reason": str(exc), "event_type": str(event_type)[:80]})
            return JSONResponse({"msg": "busy"}, status_code=503)
        except Exception:  # noqa: BLE001 - stored (or refused) already; Feishu gets an answer
            log.exception("feishu event handling failed")
            return JSONResponse({})
        log.info("feishu event ignored", extra={"event_type": str(event_type)[:80],
                                                "schema": str(payload.get("schema"))[:10]})
        return JSONResponse({})

    return router
