"""A durable claim on each piece of work, so a redelivered click or event changes nothing.

The claim row is written in the same transaction as the work; a duplicate delivery hits the
primary key, the work is rolled back, and the caller hears ``Duplicate`` with what the first
claim recorded (``record``: e.g. which task and action an event id was used for). Inbound
deliveries themselves are stored first in the inbox (``bot.core.inbox``), keyed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.db import Database, connection, insert_if_new
from storage.models import ProcessedEvent
from storage.types import utcnow

T = TypeVar("T")
KEEP = timedelta(hours=24)  # Feishu re-delivers up to ~6 h later; keep well beyond


class Duplicate(Exception):
    """This delivery was handled before; ``record`` is what its first claim stored."""

    def __init__(self, event_key: str, record: dict | None = None) -> None:
        super().__init__(event_key)
        self.event_key = event_key
        self.record = record or {}


def once(db: Database, event_key: str | None, work: Callable[[Session], T], *,
         record: dict | None = None) -> T:
    """Run ``work`` in one transaction unless ``event_key`` was already handled."""
    if not event_key:
        with db.session() as session:
            return work(session)
    key = event_key[:256]
    try:
        with db.session() as session:
            claimed = connection(session).execute(insert_if_new(
                    ProcessedEvent.__table__, "event_key", "event_key", db.dialect), {
                "event_key": key, "result": record or {}, "created_at": utcnow()}).first()
            if claimed is None:  # the key was there (or its first claim just committed)
                raise _AlreadyClaimed
            return work(session)
    except _AlreadyClaimed:
        first = _claim(db, event_key)
        raise Duplicate(event_key, first.result if first else None) from None
    except IntegrityError as exc:  # a constraint of the work itself, or a racing claim
        first = _claim(db, event_key)
        if first is not None:
            raise Duplicate(event_key, first.result) from exc
        raise


class _AlreadyClaimed(Exception):
    pass


def _claim(db: Database, event_key: str) -> ProcessedEvent | None:
    with db.session() as session:
        return session.get(ProcessedEvent, event_key[:256])


def seen(db: Database, event_key: str) -> bool:
    return _claim(db, event_key) is not None


def prune(db: Database) -> int:
    with db.session() as session:
        result = session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.created_at < utcnow() - KEEP)
        )
        return result.rowcount or 0
