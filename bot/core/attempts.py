"""The outbox's durable record of a send in progress, written before the platform is called.

A card's post is recorded on the ``ChatMessage`` that will show it (``post_key``, its
idempotency key, and ``post_started_at``) and cleared when the message reference is stored;
a text's or private message's on its outbox row (``attempt_started_at``; its key is
``delivery_key``). A process that finds such a record left behind knows the earlier
attempt's outcome is unknown, posts with the same key, and passes ``unsure_since`` so the
adapter can check first (``bot.core.ports.ChatAdapter``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import update

from storage.db import Database
from storage.models import ChatMessage, OutboxMessage
from storage.types import utcnow


def delivery_key(row: OutboxMessage) -> str:
    """A text's idempotency key: stable for the row across retries and restarts, and unique
    even if the database is rebuilt (the row's creation time is in it)."""
    stamp = row.created_at.isoformat() if row.created_at else ""
    return hashlib.sha256(f"{row.id}|{row.key}|{stamp}".encode()).hexdigest()[:32]


def begin_post(db: Database, message_id: int, gone: bool) -> tuple[str, datetime | None]:
    """The key to post this card with, and when an unfinished earlier post with it began.

    ``gone``: the message shown so far was deleted; from here a crash re-posts."""
    with db.session() as session:
        message = session.get(ChatMessage, message_id)
        if message is None:
            return secrets.token_hex(12), None
        if gone:
            message.message_ref = ""
        if message.post_key:
            key, since = message.post_key, message.post_started_at
        else:
            key, since = secrets.token_hex(12), None
            message.post_key, message.post_started_at = key, utcnow()
        session.add(message)
        return key, since


def forget_post(db: Database, message_id: int, key: str) -> None:
    """The platform certainly showed nothing: the next attempt starts with a new key."""
    with db.session() as session:
        session.execute(update(ChatMessage).where(
            ChatMessage.id == message_id, ChatMessage.post_key == key)
            .values(post_key="", post_started_at=None)
            .execution_options(synchronize_session=False))


def begin_text(db: Database, row: OutboxMessage) -> datetime | None:
    """Mark a text's attempt started; returns when an earlier attempt started, if one did."""
    if row.attempt_started_at is None:
        with db.session() as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id)
                            .values(attempt_started_at=utcnow())
                            .execution_options(synchronize_session=False))
    return row.attempt_started_at
