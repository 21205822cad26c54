"""What DingTalk sends us — @-mentions and card button clicks — through the one router.

Per the inbound pipeline: the frame is stored in the inbox first, keyed by its delivery id
(``bot.core.inbox``; a redelivered frame is acknowledged and ignored), then acknowledged,
then the work runs from that row on the inbox's worker threads (router → domain
transaction) — after a crash the restarted process or another replica finishes it. Answers
leave through the outbox, so they are retried and rate limited like everything else; card
changes arrive the same way. Work still running after a few seconds sends the person a
short "working on it" first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlmodel import Session, select

import commands  # noqa: F401  (registers the text commands)
from bot.core import outbox
from bot.core.courtesy import OncePerPerson
from bot.core.i18n import t
from bot.core.inbox import InboxWorker
from bot.core.settings import get_settings
from commands.router import Inbound, Reply, router
from storage.db import Database
from storage.models import ChatIdentity, ChatMessage, InboxEvent, OutboxMessage

from .settings import DingTalkSettings
from .shape import card_problem, message_problem

log = logging.getLogger(__name__)
CHAT = "dingtalk"
SLOW = 3.0  # seconds: work still running then → "working on it" (the ack went at once)


class Inbox:
    def __init__(self, db: Database, settings: DingTalkSettings,
                 kick: Callable[[], None], worker: InboxWorker | None = None) -> None:
        self.db = db
        self.settings = settings
        self.kick = kick
        self.worker = worker or InboxWorker(db)
        self.worker.register(CHAT, self.process)
        self.working_told = OncePerPerson()  # "working on it": once a minute per person

    # -- step 2: the durable record ------------------------------------------------------

    def claim(self, kind: str, delivery_id: str, data: dict | None = None) -> int | None:
        """Store the frame (before its ack); its inbox id, or None for a redelivery."""
        delivery = delivery_id or f"anon:{secrets.token_hex(8)}"
        return self.worker.accept(f"dingtalk:{kind}:{delivery}", CHAT, kind, data or {})

    def start(self, event_id: int) -> Future:
        """Process a stored frame now; if it is slow, say so to the person. Called on the
        stream's event loop: the check is a timer on that loop (it was a thread per click,
        hundreds of sleeping threads at a peak)."""
        future = self.worker.submit(event_id)
        loop = asyncio.get_running_loop()
        loop.call_later(SLOW, self._if_slow, loop, future, event_id)
        return future

    def _if_slow(self, loop: asyncio.AbstractEventLoop, future: Future, event_id: int) -> None:
        if not future.done():
            loop.run_in_executor(None, self._working, future, event_id)

    def process(self, event: InboxEvent, inline: Callable[[], bool]) -> dict:
        """Inbox handler: the work of one stored frame."""
        delivery = event.key.split(":", 2)[2]
        if event.kind == "msg":
            self.handle_message(event.payload, delivery)
        else:
            self.handle_card(event.payload, delivery)
        return {}

    def _working(self, future: Future, event_id: int) -> None:
        if future.done():
            return
        try:
            with self.db.session() as session:
                event = session.get(InboxEvent, event_id)
                user = str((event.payload.get("userId") if event.kind == "card" else event
                            .payload.get("senderStaffId")) or "") if event else ""
                if event is None or event.status != "working" or not user:
                    return
                if not self.working_told.first(user):
                    return  # told a moment ago: the bot is busy, they know
                _add(session, OutboxMessage(
                    key=f"{event.key}:working"[:256], chat=CHAT, channel_id="",
                    kind="private", payload={"text": t("inbox.working",
                                                       get_settings().language),
                                             "user": user}))
            self.kick()
        except Exception as exc:  # noqa: BLE001 - only a courtesy note
            log.warning("dingtalk 'working on it' not sent", extra={"error": repr(exc)[:200]})

    # -- step 4: the work ----------------------------------------------------------------

    def handle_message(self, data: dict[str, Any], delivery_id: str) -> None:
        """A chatbot message (group @-mention or 1:1 chat) → a text command."""
        why = message_problem(data)
        if why is not None:  # refused before the router: no action, the sender is told
            addressed = isinstance(data, dict) and data.get("isInAtList") is not False
            self._refuse("message", delivery_id, why, data.get("senderStaffId") if addressed
                         else None, "inbound.unreadable_message")
            return
        try:
            robot = data.get("robotCode")
            if robot and self.settings.robot and robot != self.settings.robot:
                log.warning("message for another robot ignored", extra={"robot": robot})
                return
            group = str(data.get("conversationType", "2")) == "2"
            if group and data.get("isInAtList") is False:
                return
            channel = str(data.get("conversationId") or "")
            user = self._user_ref(data.get("senderStaffId"), data.get("senderId"))
            inbound = Inbound(CHAT, channel, user, event_id=f"dingtalk:{delivery_id}")
            text = _text_of(data)
            if text is None:
                reply = Reply(text=t("dingtalk.text_only", get_settings().language), ok=False)
            else:
                reply = router.handle_text(self.db, inbound, text)
            self._answer(inbound, reply, f"dingtalk-reply:{delivery_id}", one_to_one=not group)
        except Exception:  # noqa: BLE001 - log with context; the person hears back
            self._failed("message", delivery_id, data.get("senderStaffId"))

    def handle_card(self, data: dict[str, Any], delivery_id: str) -> None:
        """An interactive-card button → ``router.handle_click``; the card updates via outbox."""
        why = card_problem(data)
        if why is not None:
            self._refuse("card", delivery_id, why,
                         data.get("userId") if isinstance(data, dict) else None,
                         "inbound.unreadable_click")
            return
        user = str(data.get("userId") or "")
        try:
            out_track_id = str(data.get("outTrackId") or "")
            content = _loads(data.get("content"))
            private = content.get("cardPrivateData") or {}
            params = private.get("params") or {}
            value = str(params.get("value") or params.get("actionValue")
                        or next(iter(private.get("actionIds") or []), ""))
            comment = params.get("comment") or params.get("reason") or None
            channel = self._channel_of(out_track_id) or str(data.get("spaceId") or "")
            inbound = Inbound(CHAT, channel, self._user_ref(user, None),
                              event_id=f"dingtalk:{delivery_id}")
            reply = router.handle_click(self.db, inbound, value, str(comment) if comment else None)
            if reply.result is not None and reply.ok:
                return  # the card itself shows the change (and the duplicate changed nothing)
            self._answer(inbound, reply, f"dingtalk-click:{delivery_id}", one_to_one=True)
        except Exception:  # noqa: BLE001
            self._failed("card", delivery_id, user)

    # -- helpers -------------------------------------------------------------------------

    def _user_ref(self, staff_id: object, sender_id: object) -> str:
        """The staff id, unless only the DingTalk (union-style) sender id is linked."""
        staff = str(staff_id or "")
        other = str(sender_id or "")
        if other and other != staff:
            with self.db.session() as session:
                known = session.exec(select(ChatIdentity.external_id).where(
                    ChatIdentity.chat == CHAT,
                    ChatIdentity.external_id.in_([staff, other]))).all()
            if staff not in known and other in known:
                return other
        return staff or other

    def _channel_of(self, out_track_id: str) -> str | None:
        if not out_track_id:
            return None
        with self.db.session() as session:
            return session.exec(select(ChatMessage.channel_id).where(
                ChatMessage.chat == CHAT,
                ChatMessage.message_ref == f"card:{out_track_id}")).first()

    def _answer(self, inbound: Inbound, reply: Reply, key: str, *, one_to_one: bool) -> None:
        with self.db.session() as session:
            card = reply.card
            if card is not None and card.task_id and not one_to_one:
                _repost_task_card(session, inbound.channel_id, card.task_id, key)
            text = reply.text or (f"{card.title}\n{card.link or ''}".strip() if card else "")
            if text and (reply.private or one_to_one):
                _add(session, OutboxMessage(
                    key=f"{key}:dm", chat=CHAT, channel_id="", kind="private",
                    payload={"text": text, "user": inbound.user_ref,
                             "channel": inbound.channel_id}))
            elif text:
                outbox.enqueue_text(session, CHAT, inbound.channel_id, text, key=f"{key}:text")
        self.kick()

    def _refuse(self, kind: str, delivery_id: str, why: str, user: object, key: str) -> None:
        """A frame not in DingTalk's shape: one log line, and the sender hears it once."""
        log.warning("dingtalk frame refused: not in DingTalk's shape",
                    extra={"kind": kind, "delivery": delivery_id, "reason": why[:200]})
        if not isinstance(user, str) or not user:
            return
        with self.db.session() as session:
            _add(session, OutboxMessage(
                key=f"dingtalk-refused:{delivery_id}"[:256], chat=CHAT, channel_id="",
                kind="private", payload={"text": t(key, get_settings().language),
                                         "user": user}))
        self.kick()

    def _failed(self, kind: str, delivery_id: str, user: object) -> None:
        ref = secrets.token_hex(4)
        log.exception("dingtalk inbound failed", extra={"kind": kind, "delivery": delivery_id,
                                                         "ref": ref})
        if not user:
            return
        try:
            with self.db.session() as session:
                _add(session, OutboxMessage(
                    key=f"dingtalk-error:{delivery_id}", chat=CHAT, channel_id="",
                    kind="private", payload={"text": t("err.internal", get_settings().language,
                                                       ref=ref), "user": str(user)}))
            self.kick()
        except Exception:  # noqa: BLE001
            log.exception("could not tell the person about the failure", extra={"ref": ref})


def _repost_task_card(session: Session, channel: str, task_id: int, key: str) -> None:
    """Show the task's card anew here; the newest card in a channel is the live one."""
    card_key = f"task:{task_id}"
    message = session.exec(select(ChatMessage).where(
        ChatMessage.chat == CHAT, ChatMessage.channel_id == channel,
        ChatMessage.card_key == card_key)).first()
    if message is not None and message.message_ref:
        message.message_ref = ""
        session.add(message)
    outbox.enqueue_card(session, CHAT, channel, card_key, "task", {"task_id": task_id},
                        key=f"{key}:card", task_id=task_id)


def _add(session: Session, row: OutboxMessage) -> None:
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.key == row.key)).first():
        return
    session.add(row)


def _loads(value: object) -> dict:
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(str(value or "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _text_of(data: dict[str, Any]) -> str | None:
    kind = data.get("msgtype")
    if kind == "text":
        return str((data.get("text") or {}).get("content") or "")
    if kind == "richText":
        parts = (data.get("content") or {}).get("richText") or []
        return " ".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)
    return None
