"""The approvals plugin: the SLA sweep that escalates overdue steps (never decides them)."""

from __future__ import annotations

from typing import Any

from bot.approvals import service as approvals
from bot.core.scheduler import threaded


def install(container: Any, api: Any) -> None:
    container.jobs.append(("approval-escalation",
                           threaded(lambda: approvals.escalate_overdue(container.db)), 60.0))
