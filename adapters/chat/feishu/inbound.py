"""What Feishu tells us: group messages that @-mention the bot and card button clicks.

Both receive paths (the HTTP endpoint and the long connection) answer through
``endpoint.dispatch``, which works with one ``FeishuInbound``. Each event is stored in the
inbox before Feishu gets its answer (``bot.core.inbox``): a message keyed by its message id
(Feishu re-delivers at 15 s, 5 min, 1 h, 6 h), a click by its event id, so a re-delivered or
double click changes state once, and an event acknowledged by a process that then died is
finished by the next one. Replies to messages go through the outbox (retried, rate limited,
never doubled); a click is answered inside Feishu's 3 s with a toast and the card as it is
now — or, when the work takes longer, "working on it", and the result arrives as a card
update or private message.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from lark_oapi.api.im.v1.model.p2_im_message_receive_v1 import P2ImMessageReceiveV1
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from adapters.chat.feishu.adapter import FeishuAdapter, FeishuUser
from adapters.chat.feishu.pace import Pace
from adapters.chat.feishu.render import COMMENT_FIELD, VALUE_KEY
from adapters.chat.feishu.shown import CHAT, current_card
from bot.core import outbox
from bot.core.i18n import Term, t
from bot.core.inbox import InboxWorker
from bot.core.users import by_chat, link
from cards.model import Card
from commands.router import Inbound, Reply, router
from storage.db import Database
from storage.models import ChatIdentity, ChatMessage, InboxEvent, OutboxMessage, Task, User

log = logging.getLogger(__name__)
MISS_TTL = 60.0  # seconds an unknown open_id is not looked up again
TASK_KINDS = {"task", "notice", "result"}  # what the "task" builder makes
_MENTION_KEY = re.compile(r"@_user_\d+|@_all")


def summary(card: Card) -> str:
    """A card in words, for answers that cannot be a live card."""
    lines = [card.title, card.subtitle, *[f"{f.label}: {f.value}" for f in card.fields]]
    if card.table:
        lines.append(" | ".join(card.table_header))
        lines += [" | ".join(line.cells) for line in card.table[:20]]
    return "\n".join(line for line in lines if line)


def refused(kind: str, raw: Any, why: str) -> None:
    """One log line for an event not in Feishu's shape (never its token or content)."""
    header = raw.get("header") if isinstance(raw, dict) else None
    header = header if isinstance(header, dict) else {}
    log.warning("feishu event refused: not in Feishu's shape", extra={
        "kind": kind, "reason": why[:200], "event_id": str(header.get("event_id") or "")[:80],
        "event_type": str(header.get("event_type") or "")[:80]})


def message_text(message: Any) -> str:
    """The words of a ``text`` or ``post`` message; other kinds say nothing to us."""
    try:
        content = json.loads(message.content or "{}")
    except ValueError:
        return ""
    if message.message_type == "text":
        return str(content.get("text", ""))
    if message.message_type == "post":
        body = content.get("content") or next(
            (v.get("content") for v in content.values() if isinstance(v, dict)), [])
        runs = []
        for paragraph in body or []:
            for run in paragraph or []:
                if run.get("tag") in ("text", "a"):
                    runs.append(str(run.get("text", "")))
                elif run.get("tag") == "at":  # received posts carry the key: "@_user_1"
                    who = str(run.get("user_id", ""))
                    runs.append(who if who.startswith("@") else f"@{who}")
        return " ".join(runs)
    return ""


class FeishuInbound:
    def __init__(self, db: Database, adapter: FeishuAdapter, lang: str,
                 kick: Callable[[], None] | None = None,
                 inbox: InboxWorker | None = None) -> None:
        self.db = db
        self.adapter = adapter
        self.lang = lang
        self.kick = kick or (lambda: None)
        self.inbox = inbox or InboxWorker(db)
        self.inbox.register(CHAT, self.process)
        self.bot_open_id: str | None = None
        self.pace = Pace()  # recent timings: may a click's answer wait for its result?
        self._misses: dict[str, float] = {}  # open_id → until when "nobody we know"
        self._known: dict[tuple[str, str, str], tuple[str, float]] = {}  # ids → (id, until)

    # -- people ------------------------------------------------------------------------

    def resolve(self, open_id: str, user_id: str = "", union_id: str = "") -> str:
        """The id we know this person by; links their open_id once we find them.

        Admins add people by open_id, user_id (employee id) or e-mail; events carry the
        open_id (and the user_id with the permission), the contact API tells the rest.
        A person found is remembered for ``MISS_TTL`` (the router looks them up anyway and
        refuses whoever is not, or no longer, known: this only picks the id to ask by).
        """
        ids = (open_id, user_id, union_id)
        known = self._known.get(ids)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        with self.db.read() as session:
            for candidate in ids:
                if candidate and by_chat(session, CHAT, candidate):
                    if len(self._known) > 10_000:
                        self._known.clear()
                    self._known[ids] = (candidate, time.monotonic() + MISS_TTL)
                    return candidate
        if not open_id or self._misses.get(open_id, 0.0) > time.monotonic():
            return open_id or user_id
        found: FeishuUser | None = self.adapter.lookup_user(open_id)
        candidates = [c for c in (found.user_id, found.union_id, found.enterprise_email,
                                  found.email) if c] if found else []
        try:
            with self.db.session() as session:
                for candidate in candidates:
                    user = by_chat(session, CHAT, candidate)
                    if user is not None:
                        link(session, user, CHAT, open_id)
                        log.info("feishu identity linked", extra={"user": user.name})
                        return open_id
        except IntegrityError:  # a parallel request linked them a moment ago
            return open_id
        if len(self._misses) > 10_000:
            self._misses.clear()
        self._misses[open_id] = time.monotonic() + MISS_TTL  # don't ask the API every click
        return open_id

    def open_ids(self, names: list[str]) -> list[str]:
        """Feishu open_ids of these PromoPilot users (those who have one)."""
        if not names:
            return []
        with self.db.read() as session:
            rows = session.exec(select(ChatIdentity.external_id).join(
                User, User.id == ChatIdentity.user_id).where(
                ChatIdentity.chat == CHAT, User.name.in_(names),
                ChatIdentity.external_id.startswith("ou_"))).all()
        return list(rows)

    # -- messages ----------------------------------------------------------------------

    def message_key(self, data: P2ImMessageReceiveV1) -> str | None:
        """The inbox key of a message meant for us; None for one we ignore."""
        message, sender = data.event.message, data.event.sender  # type: ignore[union-attr]
        if sender.sender_type not in (None, "user"):
            return None  # other bots (and ourselves) are not people giving commands
        if message.chat_type == "group" and not self._mentions_bot(message):
            return None
        delivery = message.message_id or (data.header.event_id if data.header else None)
        return f"feishu:msg:{delivery}" if delivery else None

    def process(self, event: InboxEvent, inline: Callable[[], bool]) -> dict:
        """Inbox handler: the work of one stored message or click (timed: ``pace.work``
        tells whether a new click's result can come inside the budget)."""
        started = time.monotonic()
        try:
            if event.kind == "card":
                return self._work_card(P2CardActionTrigger(event.payload), event.key, inline)
            self._work_message(P2ImMessageReceiveV1(event.payload))
            return {}
        finally:
            self.pace.work.add(time.monotonic() - started)

    def _work_message(self, data: P2ImMessageReceiveV1) -> None:
        message, sender = data.event.message, data.event.sender  # type: ignore[union-attr]
        text = self._strip_mentions(message, message_text(message))
        delivery = message.message_id or (data.header.event_id if data.header else None)
        ids = sender.sender_id
        open_id = (ids.open_id if ids else None) or ""
        user_ref = self.resolve(open_id, (ids.user_id if ids else None) or "",
                                (ids.union_id if ids else None) or "")
        inbound = Inbound(CHAT, message.chat_id or "", user_ref, event_id=f"feishu:{delivery}")
        reply = router.handle_text(self.db, inbound, text)
        self._reply(reply, message, open_id or user_ref, delivery)

    def _mentions_bot(self, message: Any) -> bool:
        for mention in message.mentions or []:
            mention_id = mention.id.open_id if mention.id else None
            if self.bot_open_id:
                if mention_id == self.bot_open_id:
                    return True
            elif getattr(mention, "mentioned_type", None) in (None, "bot"):
                return True
        return False

    def _strip_mentions(self, message: Any, text: str) -> str:
        """The bot's mention goes; other people's become their open_id (for ``user add``)."""
        keys = {}
        for mention in message.mentions or []:
            mention_id = mention.id.open_id if mention.id else ""
            is_bot = (mention_id == self.bot_open_id if self.bot_open_id
                      else getattr(mention, "mentioned_type", None) in (None, "bot"))
            keys[mention.key] = "" if is_bot else (mention_id or "")
        return _MENTION_KEY.sub(lambda m: keys.get(m.group(0), ""), text).strip()

    def _reply(self, reply: Reply, message: Any, user: str, delivery: str) -> None:
        """Answer through the outbox. A task card asked for (``status``) comes to this chat
        and stays updated here; any other card is summarised into the text answer."""
        chat_id = message.chat_id or ""
        key = f"feishu:reply:{delivery}"
        card, text = reply.card, reply.text
        with self.db.session() as session:
            if card is not None:
                extra = text if text != card.title else ""
                if self._bring_task_card(session, card, chat_id, key):
                    text = extra
                else:
                    text = "\n".join(part for part in (extra, summary(card)) if part)
            if text:
                if reply.private and message.chat_type != "p2p":
                    self._enqueue_private(session, user, chat_id, text, key)
                else:
                    outbox.enqueue_text(session, CHAT, chat_id, text, key=key)
        self.kick()

    @staticmethod
    def _bring_task_card(session: Session, card: Card, chat_id: str, key: str) -> bool:
        if card.kind not in TASK_KINDS or card.task_id is None:
            return False
        card_key = f"task:{card.task_id}"
        if session.exec(select(ChatMessage.id).where(
                ChatMessage.chat == CHAT, ChatMessage.channel_id == chat_id,
                ChatMessage.card_key == card_key)).first() is not None:
            return False  # already shown here: answer in words
        outbox.enqueue_card(session, CHAT, chat_id, card_key, "task", {"task_id": card.task_id},
                            key=f"{key}:card", task_id=card.task_id)
        return True

    @staticmethod
    def _enqueue_private(session: Session, user: str, chat_id: str, text: str,
                         key: str) -> None:
        if session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first():
            return
        session.add(OutboxMessage(key=key, chat=CHAT, channel_id=chat_id, kind="private",
                                  payload={"text": text, "user": user, "channel": chat_id}))

    # -- card buttons ------------------------------------------------------------------

    def click_key(self, data: P2CardActionTrigger) -> str | None:
        """The inbox key of a click on one of our buttons; None for anything else."""
        event = data.event
        action = event.action if event else None
        packed = (action.value or {}).get(VALUE_KEY) if action else None
        if not packed or event is None or event.operator is None:
            return None
        delivery = (data.header.event_id if data.header else None) or event.token
        return f"feishu:card:{delivery}" if delivery else f"feishu:card:anon:{id(data)}"

    def click_reply(self, result: dict | None, *, card: bool = True) -> dict:
        """Feishu's answer to a click in its wire shape: the result's toast and the card as
        it is now, or "working on it" (``None``: the result comes as a card update or a
        message; ``card=False``: the toast alone, no database read). Plain dicts: the SDK's
        marshal deep-copied the whole card to drop empty fields on every answer."""
        if result is None:
            return _toast("info", t("inbox.working", self.lang))
        reply = _toast(result.get("kind", "info"), str(result.get("text", "")))
        if not card:
            return reply
        shown = current_card(self.db, self.lang, str(result.get("chat", "")),
                             result.get("message"), result.get("task_id"))
        if shown is not None:
            reply["card"] = {"type": "raw", "data": shown}
        return reply

    def _work_card(self, data: P2CardActionTrigger, key: str,
                   inline: Callable[[], bool]) -> dict:
        event = data.event
        action, operator, context = event.action, event.operator, event.context  # type: ignore[union-attr]
        packed = (action.value or {}).get(VALUE_KEY)
        form = action.form_value or {}
        comment = str(form.get(COMMENT_FIELD) or action.input_value or "").strip() or None
        user_ref = self.resolve(operator.open_id or "", operator.user_id or "",
                                operator.union_id or "")
        chat_id = (context.open_chat_id if context else None) or ""
        inbound = Inbound(CHAT, chat_id, user_ref, event_id=key)
        reply = router.handle_click(self.db, inbound, str(packed), comment)
        kind = "success" if reply.ok else "error"
        if reply.result is not None and reply.result.duplicate:
            kind = "info"
        result = {"kind": kind, "text": reply.text, "chat": chat_id,
                  "message": context.open_message_id if context else None,
                  "task_id": reply.result.task_id if reply.result else None}
        if not inline() and not reply.ok:  # nobody is waiting for the toast: say it privately
            with self.db.session() as session:
                self._enqueue_private(session, operator.open_id or user_ref, chat_id,
                                      reply.text, f"{key}:answer")
            self.kick()
        return result

    def redelivered(self, key: str) -> dict | None:
        """A click Feishu delivered again: what the first one answered (None: still working)."""
        first = self.inbox.find(key)
        if first is None or first.status != "done":
            return None
        result = dict(first.result or {})
        if result.get("kind") == "success" and result.get("task_id"):
            with self.db.read() as session:
                task = session.get(Task, result["task_id"])
            if task is not None:
                result.update(kind="info", text=t("ok.duplicate", self.lang, task_id=task.id,
                                                  state=Term(f"state.{task.state}")))
        return result


def _toast(kind: str, text: str) -> dict:
    return {"toast": {"type": kind, "content": text[:300]}}
