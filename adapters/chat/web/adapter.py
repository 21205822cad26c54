"""The built-in web console as a chat platform: messages live in ``chat_messages``.

The outbox stores each card's JSON on its ``ChatMessage`` row, so posting and updating here
only hand out a reference and wake the open consoles.
"""

from __future__ import annotations

import secrets

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

    async def post_card(self, channel_id: str, card: Card) -> str:
        self.hub.publish(channel_id)
        return f"web-{secrets.token_hex(6)}"

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        self.hub.publish(channel_id)

    async def post_text(self, channel_id: str, text: str) -> str:
        with self.db.session() as session:
            msg = ChatMessage(chat="web", channel_id=channel_id, text=text)
            session.add(msg)
            session.flush()
            ref = f"web-{msg.id}"
        self.hub.publish(channel_id)
        return ref

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None) -> None:
        with self.db.session() as session:
            user = by_chat(session, "web", external_user_id)
            session.add(ChatMessage(chat="web", channel_id=channel_id or "@direct", text=text,
                                    visible_to=user.id if user else None))
        self.hub.publish(channel_id or "@direct")
