"""The RPA robot's signed result (verified by the submitters plugin before it gets here):
submitted, a review outcome, or failed — which falls back to the next channel."""

from __future__ import annotations

import logging

from sqlmodel import select

from bot.core.actors import Actor
from bot.core.errors import Invalid
from bot.core.ports import WAITING, ItemResult, ReviewStatus
from bot.submissions import channels
from bot.submissions.review import apply_review
from bot.submissions.runs import audit, mark_sent, run_for
from bot.submissions.service import SubmissionService
from storage.db import Database
from storage.models import SubmissionAttempt
from storage.models_approval import SubmissionRun

log = logging.getLogger(__name__)


def rpa_callback(db: Database, payload: dict) -> str:
    """A signed result from the RPA robot: submitted, a review outcome, or failed."""
    job_id = str(payload.get("job_id") or "")
    status = str(payload.get("status") or "")
    if not job_id or status not in ("submitted", "accepted", "rejected", "partial", "failed"):
        raise Invalid("rpa.bad_callback")
    with db.session() as session:
        attempt = session.exec(select(SubmissionAttempt).where(
            SubmissionAttempt.reference == job_id[:128],
            SubmissionAttempt.channel == "rpa")).first()
        if attempt is None:
            raise Invalid("rpa.unknown_job", job=job_id[:60])
        task_id, key = attempt.task_id, attempt.idempotency_key
        robot = Actor.system("rpa")
        if attempt.status == "cancelled":
            log.warning("rpa callback for a cancelled job", extra={"task_id": task_id,
                                                                    "job_id": job_id})
            return "ignored"
        if attempt.status == WAITING and status != "failed":
            attempt.status = "sent"
            attempt.response = {**(attempt.response or {}), "platform_reference":
                                str(payload.get("reference") or "")[:128]}
            session.add(attempt)
            audit(session, task_id, "rpa", "submission_attempt", channel="rpa", status="sent",
                   reference=str(payload.get("reference") or job_id)[:128], key=key)
            run = run_for(session, task_id)
            if run is not None:
                run.status = "sent"
                session.add(run)
            mark_sent(session, task_id, robot, job_id, key, "rpa")
        if status in ("accepted", "rejected", "partial"):
            session.flush()
            items = [ItemResult(str(i.get("sku")), str(i.get("result")), i.get("reason_code"),
                                i.get("reason_text")) for i in payload.get("items") or []]
            apply_review(session, task_id, job_id, ReviewStatus(status, items, raw=payload))
        if status != "failed":
            return "ok"
        if attempt.status != WAITING:
            return "ignored"
        run = run_for(session, task_id)
        assert run is not None
        attempt.status, attempt.error = "failed", str(payload.get("error") or "robot failed")
        session.add(attempt)
        run.status = "working"
        session.add(run)
    service = SubmissionService(db, channels.current())  # only to record and move on
    more = service._failed(run.id or 0, task_id, run.declaration_version, key, "rpa",
                           str(payload.get("error") or "robot failed"), record_attempt=False)
    with db.session() as session:
        fresh = session.get(SubmissionRun, run.id)
        assert fresh is not None
        fresh.status = "active" if more else fresh.status
        session.add(fresh)
    if not more:
        service._give_up(run.id or 0, task_id)
    return "fallback" if more else "failed"

