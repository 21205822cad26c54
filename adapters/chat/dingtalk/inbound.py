"""What DingTalk sends us — @-mentions and card button clicks — through the one router.

Per the inbound pipeline: a durable claim on the delivery id first (a redelivered frame is
acknowledged and ignored), then the stream frame is acknowledged, then the work runs on a
worker thread (router → domain transaction). Answers leave through the outbox, so they are
retried and rate limited like everything else; card changes arrive the same way.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, select

import commands  # noqa: F401  (registers the text commands)
from bot.core import outbox
from bot.core.i18n import t
from bot.core.idempotency import Duplicate, once
from bot.core.settings import get_settings
from commands.router import Inbound, Reply, router
from storage.db import Database
from storage.models import ChatIdentity, ChatMessage, OutboxMessage

from .settings import DingTalkSettings

log = logging.getLogger(__name__)
CHAT = "dingtalk"


class Inbox:
    def __init__(self, db: Database, settings: DingTalkSettings,
                 kick: Callable[[], None]) -> None:
        self.db = db
        self.settings = settings
        self.kick = kick

    # -- step 2: the durable claim -------------------------------------------------------

    def claim(self, kind: str, delivery_id: str) -> bool:
        """True the first time this delivery is seen; False for a redelivery."""
        if not delivery_id:
            return True
        try:
            once(self.db, f"dingtalk:{kind}:{delivery_id}", lambda _session: None)
            return True
        except Duplicate:
            log.info("dingtalk redelivery ignored", extra={"kind": kind,
                                                           "delivery": delivery_id})
            return False

    # -- step 4: the work ----------------------------------------------------------------

    def handle_message(self, data: dict[str, Any], delivery_id: str) -> None:
        """A chatbot message (group @-mention or 1:1 chat) → a text command."""
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
