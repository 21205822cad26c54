"""The seam between PromoPilot and a chat platform.

An adapter posts and updates cards and says things to people. Inbound events become
``commands.router`` calls inside the adapter's own module.
"""

from __future__ import annotations

from typing import Protocol

from cards.model import Card


class ChatAdapter(Protocol):
    chat: str  # "web", "slack", "feishu", "dingtalk"

    async def post_card(self, channel_id: str, card: Card) -> str:
        """Post a card; return the platform's message reference (to update it later)."""

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        """Replace the card shown in an earlier message."""

    async def post_text(self, channel_id: str, text: str) -> str:
        """Say plain text in a channel."""

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None) -> None:
        """Tell one person something only they see (DM or ephemeral)."""


class ChatDeliveryError(Exception):
    """A delivery failed; ``retry_after`` (seconds) when the platform said when to retry."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 permanent: bool = False, message_gone: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        # The message to update no longer exists (deleted, recalled): post a fresh card.
        self.message_gone = message_gone
