"""Tables of the watchers feature (#7): per-source health and the notice text we read.

Health lives in the database, not in one process, so ``promopilot sources``, ``/healthz``
on any replica, and the next leader after a failover all see the same picture, and the
conditional-request validators (ETag / Last-Modified) survive a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def _time() -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SourceState(SQLModel, table=True):
    """One notice source's health, backoff and HTTP validators."""

    __tablename__ = "source_states"
    name: str = Field(primary_key=True, max_length=128)
    platform: str = Field(default="", max_length=32)
    kind: str = Field(default="", max_length=32)
    ok: bool = True
    consecutive_failures: int = 0
    last_attempt: datetime | None = _time()
    last_success: datetime | None = _time()
    next_attempt_at: datetime | None = _time()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    validators: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    alerting: bool = False  # an outage card went to ops and recovery is not yet announced
    incidents: int = 0  # how many outages were announced (numbers the cards' keys)
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))


class NoticeBody(SQLModel, table=True):
    """The notice text as last read, and whether its deadline was sure (for change cards)."""

    __tablename__ = "notice_bodies"
    campaign_id: int = Field(primary_key=True, foreign_key="campaigns.id")
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    dates_from: str = Field(default="feed", max_length=16)  # feed / text / none
    unclear: bool = False
    # Reminder tiers are keyed by this revision: a changed deadline gets its own reminders,
    # and tiers that fell due before we knew the deadline (``deadline_since``) are not sent.
    deadline_rev: int = 0
    deadline_since: datetime | None = _time()
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
