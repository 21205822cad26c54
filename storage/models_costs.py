"""Tables of the cost and stock sync (decisions, part 1): each ERP/WMS source's health.

The synced values themselves live on the product pool (``products.cost``, ``stock``,
``in_transit``, ``safety_stock``, ``stock_source``, ``stock_synced_at``). A source's state is
in the database, not in one process, so ``promopilot costs``, every replica and the next
leader after a failover see the same last sync, error and rejected rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def _time() -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class CostSourceState(SQLModel, table=True):
    """One cost source's last sync: when, what it changed, the last error, rejected rows."""

    __tablename__ = "cost_source_states"
    name: str = Field(primary_key=True, max_length=128)
    kind: str = Field(default="", max_length=32)  # http_json, file_drop
    ok: bool = True
    consecutive_failures: int = 0
    last_attempt: datetime | None = _time()
    last_success: datetime | None = _time()
    next_attempt_at: datetime | None = _time()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    # {"rows", "updated", "unchanged", "unknown", "rejected"} of the last successful sync
    last_counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # ref → {"key", "params", "first", "last", "n"}: rows refused, each announced once
    rejections: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rejection_seq: int = 0
    validators: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    alerting: bool = False  # a failure card went to ops and recovery is not yet announced
    incidents: int = 0  # failures announced so far (numbers the cards' keys)
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
