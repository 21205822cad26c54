"""The built-in web console as a chat platform: messages live in ``chat_messages``.

The outbox stores each card's JSON on its ``ChatMessage`` row, so posting and updating here
only hand out a reference and wake the open consoles. A text keeps the outbox key it was
posted with, so a retry after a crash finds it instead of saying it twice.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import select

from adapters.chat.web.live import LiveHub
from bot.core.users import by_chat
from cards.model import Card
from storage.db import Database
from storage.models import ChatMessage


class WebChatAdapter:
    chat = "web"

    def __init__(self, db: Database, hub: LiveHub) -> None:
        self.db = db
        self.hub = hub

    async def post_card(self, channel_id: str, card: Card, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        self.hub.publish(channel_id)
        return f"web-{secrets.token_hex(6)}"

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        self.hub.publish(channel_id)

    async def post_text(self, channel_id: str, text: str, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        with self.db.session() as session:
            msg = _said(session, key) if key else None
            if msg is None:
                msg = ChatMessage(chat="web", channel_id=channel_id, text=text, post_key=key)
                session.add(msg)
                session.flush()
            ref = f"web-{msg.id}"
        self.hub.publish(channel_id)
        return ref

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None, *, key: str = "",
                           unsure_since: datetime | None = None) -> None:
        with self.db.session() as session:
            if not (key and _said(session, key)):
                user = by_chat(session, "web", external_user_id)
                session.add(ChatMessage(chat="web", channel_id=channel_id or "@direct",
                                        text=text, visible_to=user.id if user else None,
                                        post_key=key))
        self.hub.publish(channel_id or "@direct")


def _said(session, key: str) -> ChatMessage | None:  # noqa: ANN001
    return session.exec(select(ChatMessage).where(
        ChatMessage.chat == "web", ChatMessage.card_key.is_(None),
        ChatMessage.post_key == key)).first()
