"""The card a Feishu click came from, as the database says it is now.

A click's answer shows the card again (locked after a decision), rebuilt by the builder that
last sent it there; the message it was shown in is found by the task's card key (indexed),
other cards by message id. A task's card (``task:<id>``) is always the "task" builder's, its
parts read in one statement.
"""

from __future__ import annotations

from sqlmodel import select

from adapters.chat.feishu.render import render
from bot.core.delivery import hold_loaded, preload_task
from cards.builders import BUILDERS
from storage.db import Database
from storage.models import ChatMessage, OutboxMessage

CHAT = "feishu"  # the chat name in PromoPilot's tables


def current_card(db: Database, lang: str, chat_id: str, message_id: str | None,
                 task_id: int | None = None) -> dict | None:
    """The clicked card rendered for Feishu, or None (not ours, or gone)."""
    if not message_id:
        return None
    with db.read() as session:
        hold_loaded(session)  # the builder's parts share what it loaded
        shown = session.exec(select(ChatMessage).where(
            ChatMessage.chat == CHAT, ChatMessage.channel_id == chat_id,
            ChatMessage.card_key == f"task:{task_id}",
            ChatMessage.message_ref == message_id)).first() if task_id else None
        if shown is not None:  # a task's card: always the "task" builder's
            preload_task(session, int(task_id or 0))
            card = BUILDERS["task"](session, {"task_id": task_id}, lang)
            return render(card, lang) if card is not None else None
        shown = session.exec(select(ChatMessage).where(
            ChatMessage.chat == CHAT, ChatMessage.message_ref == message_id)).first()
        if shown is None or not shown.card_key:
            return None
        last = session.exec(select(OutboxMessage).where(
            OutboxMessage.chat == CHAT, OutboxMessage.channel_id == shown.channel_id,
            OutboxMessage.card_key == shown.card_key, OutboxMessage.kind == "card")
            .order_by(OutboxMessage.id.desc())).first()
        if last is not None:
            builder, params = last.payload.get("builder"), last.payload.get("params", {})
        elif shown.card_key.startswith("task:") and shown.task_id:
            builder, params = "task", {"task_id": shown.task_id}
        else:
            return None
        build = BUILDERS.get(builder or "")
        card = build(session, params, lang) if build else None
    return render(card, lang) if card is not None else None
