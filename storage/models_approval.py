"""Tables of the approvals-and-submissions feature (#8).

An approval *round* groups the steps asked for one request (a re-request after "changes"
opens a new round, so an old card can never decide the new one). A submission *run* holds
where a declaration version is in its channel chain (API → RPA → Excel/assisted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


def _time(index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=index))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _json(default: Any = list) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class ApprovalRound(SQLModel, table=True):
    __tablename__ = "approval_rounds"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    declaration_version: int = 1
    opened_version: int = 1  # task version right after the request; older cards are stale
    requested_by: int | None = Field(default=None, foreign_key="users.id")
    state: str = Field(default="open", max_length=24)  # open/approved/rejected/changes_requested
    step_ids: list = _json()
    facts: dict = _json(dict)  # what the policy saw (discount, budget, margin, new brands …)
    auto: list = _json()  # automatic decisions: [{"what", "reason", "at"}]
    created_at: datetime = _created()
    closed_at: datetime | None = _time()


class ApprovalEscalation(SQLModel, table=True):
    """One escalation of an overdue step to the approvers' managers (one row per level)."""

    __tablename__ = "approval_escalations"
    __table_args__ = (UniqueConstraint("step_id", "level", name="uq_escalation_step_level"),)
    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="approval_steps.id", index=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    level: int = 1
    escalated_to: list = _json()  # user ids who may now decide the step
    created_at: datetime = _created()


class SubmissionRun(SQLModel, table=True):
    """Where one declaration version is in its submission channel chain."""

    __tablename__ = "submission_runs"
    __table_args__ = (UniqueConstraint("task_id", "declaration_version", name="uq_submission_run"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    declaration_version: int = 1
    idempotency_key: str = Field(max_length=128)
    channels: list = _json()
    channel_index: int = 0
    status: str = Field(default="active", max_length=16)  # active/waiting/sent/failed/done
    assignee: int | None = Field(default=None, foreign_key="users.id")  # who does a hand-off
    tried: list = _json()  # [{"channel", "error", "at"}]
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    handoff: dict = _json(dict)  # what the person needs: file, deep link, checklist, job id
    created_at: datetime = _created()
    updated_at: datetime = _created()
