"""Applying the marketplace's review: per-SKU verdicts onto the declaration lines, then the
lifecycle moves to accepted or platform_rejected (which learning and redraft listen to)."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.ports import ItemResult, ReviewStatus
from bot.declarations.autofill import current
from storage.models import DeclarationLine, SubmissionAttempt, Task
from storage.types import utcnow


def apply_review(session: Session, task_id: int, reference: str, status: ReviewStatus) -> None:
    task = session.get(Task, task_id)
    if task is None or task.state not in ("submitted", "in_review"):
        return
    declaration, lines = current(session, task_id)
    by_sku: dict[str, DeclarationLine] = {line.sku: line for line in lines}
    attempt = session.exec(select(SubmissionAttempt).where(
        SubmissionAttempt.task_id == task_id, SubmissionAttempt.reference == reference)).first()
    ineligible = (attempt.response or {}).get("ineligible", {}) if attempt else {}
    items = list(status.items)
    seen = {i.sku for i in items}
    for sku, reason in ineligible.items():  # the platform said so before enrolment
        if sku not in seen:
            items.append(ItemResult(sku, "rejected", "NOT_ELIGIBLE", reason))
    for item in items:
        line = by_sku.get(item.sku)
        if line is not None:
            line.result, line.reason_code, line.reason_text = (
                item.result, item.reason_code, item.reason_text)
            session.add(line)
    if attempt:
        attempt.status, attempt.updated_at = status.status, utcnow()
        attempt.response = {**(attempt.response or {}), "review": status.raw}
        session.add(attempt)
    session.flush()
    action = "platform_reject" if status.status == "rejected" else "accept"
    rejected = [i for i in items if i.result == "rejected"]
    lifecycle.apply(session, task_id, action, Actor.system("review"), detail={
        "status": status.status,
        "accepted": [i.sku for i in items if i.result == "accepted"],
        "rejected": [{"sku": i.sku, "code": i.reason_code, "text": i.reason_text}
                     for i in rejected]})

