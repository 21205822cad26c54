"""Submitting approved declarations and following the marketplace's review.

The idempotency key comes from the intent — task and declaration version — never from a
retry counter, so whatever is retried, the marketplace enrols once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlmodel import Session, select

from adapters.platforms.base import ReviewStatus, SubmissionItem, Submitter
from bot import lifecycle
from bot.actors import Actor
from bot.declarations import current
from storage.db import Database
from storage.models import Campaign, DeclarationLine, SubmissionAttempt, Task
from storage.types import utcnow

log = logging.getLogger(__name__)
SubmitterFactory = Callable[[str], Submitter | None]


def idempotency_key(task_id: int, declaration_version: int) -> str:
    return f"pp-task{task_id}-decl{declaration_version}"


class SubmissionService:
    def __init__(self, db: Database, submitter_for: SubmitterFactory) -> None:
        self.db = db
        self.submitter_for = submitter_for

    def submit_pending(self) -> int:
        """Send every task in ``submitting``; each outcome in its own transaction."""
        with self.db.session() as session:
            ids = list(session.exec(select(Task.id).where(Task.state == "submitting")))
        for task_id in ids:
            self.submit_one(task_id)
        return len(ids)

    def submit_one(self, task_id: int) -> None:
        system = Actor.system("submitter")
        with self.db.session() as session:
            task = session.get(Task, task_id)
            if task is None or task.state != "submitting":
                return
            campaign = session.get(Campaign, task.campaign_id)
            declaration, lines = current(session, task_id)
            assert campaign is not None and declaration is not None
            key = idempotency_key(task_id, declaration.version)
            platform, external_id = campaign.platform, campaign.external_id
            items = [SubmissionItem(line.sku, line.list_price, line.promo_price,
                                    line.promo_stock) for line in lines]
            attempts = len(list(session.exec(select(SubmissionAttempt.id).where(
                SubmissionAttempt.task_id == task_id))))
        submitter = self.submitter_for(platform)
        if submitter is None:
            self._record_failure(task_id, declaration.version, key, attempts,
                                 f"no submitter configured for {platform}")
            return
        try:
            receipt = submitter.submit(external_id, items, key)
        except Exception as exc:  # noqa: BLE001 - recorded, shown on the card, retried
            log.warning("submission failed", extra={"task_id": task_id, "key": key,
                                                    "error": repr(exc)[:300]})
            self._record_failure(task_id, declaration.version, key, attempts, repr(exc))
            return
        with self.db.session() as session:
            session.add(SubmissionAttempt(
                task_id=task_id, declaration_version=declaration.version, idempotency_key=key,
                channel="api", status="sent", reference=receipt.reference,
                attempt_no=attempts + 1, response=receipt.raw))
            task = session.get(Task, task_id)
            assert task is not None
            task.last_error = None
            session.add(task)
            lifecycle.apply(session, task_id, "mark_submitted", system,
                            detail={"reference": receipt.reference, "key": key})
            lifecycle.apply(session, task_id, "review_started", system)

    def _record_failure(self, task_id: int, version: int, key: str, attempts: int,
                        error: str) -> None:
        with self.db.session() as session:
            session.add(SubmissionAttempt(
                task_id=task_id, declaration_version=version, idempotency_key=key,
                status="failed", error=error[:2000], attempt_no=attempts + 1))
            task = session.get(Task, task_id)
            assert task is not None
            task.last_error = error[:500]
            session.add(task)
            lifecycle.apply(session, task_id, "submission_failed", Actor.system("submitter"),
                            detail={"error": error[:500], "key": key})

    def poll_reviews(self) -> int:
        """Ask the marketplace about every task in review; apply finished reviews."""
        with self.db.session() as session:
            rows = list(session.exec(
                select(Task.id, Campaign.platform, SubmissionAttempt.reference)
                .join(Campaign, Campaign.id == Task.campaign_id)
                .join(SubmissionAttempt, SubmissionAttempt.task_id == Task.id)
                .where(Task.state.in_(("submitted", "in_review")),
                       SubmissionAttempt.status == "sent")
            ))
        done = 0
        for task_id, platform, reference in rows:
            submitter = self.submitter_for(platform)
            if submitter is None or reference is None:
                continue
            try:
                status = submitter.status(reference)
            except Exception as exc:  # noqa: BLE001 - polled again next round
                log.warning("review poll failed", extra={"task_id": task_id,
                                                         "error": repr(exc)[:300]})
                continue
            if status.status != "reviewing":
                with self.db.session() as session:
                    apply_review(session, task_id, reference, status)
                done += 1
        return done


def apply_review(session: Session, task_id: int, reference: str, status: ReviewStatus) -> None:
    task = session.get(Task, task_id)
    if task is None or task.state not in ("submitted", "in_review"):
        return
    declaration, lines = current(session, task_id)
    by_sku: dict[str, DeclarationLine] = {line.sku: line for line in lines}
    for item in status.items:
        line = by_sku.get(item.sku)
        if line is not None:
            line.result, line.reason_code, line.reason_text = (
                item.result, item.reason_code, item.reason_text)
            session.add(line)
    attempt = session.exec(select(SubmissionAttempt).where(
        SubmissionAttempt.task_id == task_id, SubmissionAttempt.reference == reference)).first()
    if attempt:
        attempt.status, attempt.response, attempt.updated_at = (
            status.status, status.raw, utcnow())
        session.add(attempt)
    session.flush()
    action = "platform_reject" if status.status == "rejected" else "accept"
    rejected = [i for i in status.items if i.result == "rejected"]
    lifecycle.apply(session, task_id, action, Actor.system("review"), detail={
        "status": status.status,
        "rejected": [{"sku": i.sku, "code": i.reason_code, "text": i.reason_text}
                     for i in rejected]})
