"""What people click on the submission card: retry, take over, done (with evidence), and
the review a person reports for hand-offs that have no status API."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core import lifecycle
from bot.core.actions import ActionRequest, handles
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid
from bot.core.i18n import Term, roles
from bot.core.lifecycle import Outcome
from bot.core.ports import HUMAN_CHANNELS, WAITING, ItemResult, ReviewStatus, SubmissionItem
from bot.declarations.autofill import current
from bot.submissions import channels
from bot.submissions.review import apply_review
from bot.submissions.runs import (
    API_CHANNELS,
    audit,
    enqueue_submission_card,
    mark_sent,
    run_for,
    start_handoff,
)
from storage.models import Campaign, SubmissionAttempt, Task
from storage.models_approval import SubmissionRun
from storage.queries import user_name
from storage.types import utcnow


def _outcome(session: Session, task: Task, action: str, before: str) -> Outcome:
    session.flush()
    session.refresh(task)
    return Outcome(task.id or 0, action, before, task.state, task.version)


def _staff(req: ActionRequest, task: Task, run: SubmissionRun | None = None) -> None:
    """Ops, a manager, the claimant, or whoever took the submission over."""
    mine = {task.claimed_by, run.assignee if run else None} - {None}
    if not (req.actor.has_any({"ops", "manager"}) or req.actor.user_id in mine):
        raise Forbidden("err.forbidden_role", roles=roles(req.actor.roles),
                        action=Term(f"action.{req.action}"),
                        allowed=roles(("ops", "manager", "claimant")))


def _restart(session: Session, task: Task, req: ActionRequest, detail: dict) -> SubmissionRun:
    """Back to ``submitting`` if the run had given up; returns the current run."""
    run = run_for(session, task.id or 0)
    if task.state == "approved":
        lifecycle.apply(session, task.id or 0, "submit", Actor.system("submitter"),
                        detail=detail)
    elif task.state != "submitting":
        raise Conflict("err.bad_state", task_id=task.id, state=Term(f"state.{task.state}"),
                       action=Term(f"action.{req.action}"))
    if run is None:
        raise Conflict("err.submission_not_waiting", task_id=task.id)
    return run


@handles("submission_retry")
def _retry(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """Start the channel chain again with the same idempotency key (never enrols twice)."""
    _staff(req, task)
    before = task.state
    run = _restart(session, task, req, {"retry_by": req.actor.name})
    for old in session.exec(select(SubmissionAttempt).where(
            SubmissionAttempt.task_id == task.id, SubmissionAttempt.status == WAITING)):
        old.status = "cancelled"
        session.add(old)
    run.status, run.channel_index, run.handoff = "active", 0, {}
    run.updated_at = utcnow()
    session.add(run)
    audit(session, task.id or 0, req.actor.name, "submission_retry", key=run.idempotency_key)
    lifecycle.touch(session, task.id or 0)
    enqueue_submission_card(session, task, run)
    return _outcome(session, task, req.action, before)


@handles("submission_takeover")
def _takeover(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """A person takes the submission over: deep link + checklist, confirmed with evidence."""
    if not req.actor.has_any({"ops", "market", "manager"}):
        raise Forbidden("err.forbidden_role", roles=roles(req.actor.roles),
                        action=Term("action.submission_takeover"),
                        allowed=roles(("ops", "market", "manager")))
    before = task.state
    run = _restart(session, task, req, {"takeover_by": req.actor.name})
    campaign = session.get(Campaign, task.campaign_id)
    _, lines = current(session, task.id or 0)
    platform = campaign.platform if campaign else ""
    assisted = channels.current().get("assisted", platform)
    if assisted is None:
        raise Conflict("err.submission_no_assisted", task_id=task.id)
    receipt = assisted.submit(campaign.external_id if campaign else "", [SubmissionItem(
        x.sku, x.list_price, x.promo_price, x.promo_stock) for x in lines], run.idempotency_key)
    run.assignee = req.actor.user_id
    audit(session, task.id or 0, req.actor.name, "submission_takeover",
           key=run.idempotency_key)
    start_handoff(session, task, run, "assisted", receipt.reference,
                  receipt.raw.get("handoff", {}), run.declaration_version, run.idempotency_key)
    lifecycle.touch(session, task.id or 0)
    return _outcome(session, task, req.action, before)


@handles("submission_done")
def _done(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """The person uploaded the file / filled the back office: record the evidence."""
    evidence = (req.comment or "").strip()
    if not evidence:
        raise Invalid("err.reason_required",
                      example=Term.of("example.submission_done", task_id=task.id))
    run = run_for(session, task.id or 0)
    if task.state != "submitting" or run is None or run.status != WAITING or \
            run.handoff.get("channel") not in HUMAN_CHANNELS:
        raise Conflict("err.submission_not_waiting", task_id=task.id)
    if req.actor.user_id not in (run.assignee, task.claimed_by) and \
            "manager" not in req.actor.roles:
        raise Forbidden("err.submission_not_yours", who=user_name(session, run.assignee))
    before = task.state
    attempt = session.exec(select(SubmissionAttempt).where(
        SubmissionAttempt.task_id == task.id, SubmissionAttempt.status == WAITING)).first()
    channel = run.handoff.get("channel", "assisted")
    if attempt is not None:
        attempt.status, attempt.updated_at = "sent", utcnow()
        attempt.response = {**(attempt.response or {}), "evidence": evidence[:500],
                            "by": req.actor.name}
        attempt.reference = evidence[:128]
        session.add(attempt)
    audit(session, task.id or 0, req.actor.name, "submission_attempt", channel=channel,
           status="sent", reference=evidence[:128], key=run.idempotency_key)
    run.status, run.updated_at = "sent", utcnow()
    run.handoff = {**run.handoff, "evidence": evidence[:500]}
    session.add(run)
    mark_sent(session, task.id or 0, req.actor, evidence[:128], run.idempotency_key, channel)
    enqueue_submission_card(session, task, run)
    return _outcome(session, task, req.action, before)


@handles("platform_accepted", "platform_rejected")
def _reported_review(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """For hand-offs there is no status API: the person reports what the platform said."""
    run = run_for(session, task.id or 0)
    _staff(req, task, run)
    attempt = session.exec(select(SubmissionAttempt).where(
        SubmissionAttempt.task_id == task.id, SubmissionAttempt.status == "sent")
        .order_by(SubmissionAttempt.id.desc())).first()
    if attempt is None or attempt.channel in API_CHANNELS or run is None:
        raise Conflict("err.submission_no_review", task_id=task.id)
    rejected = req.action == "platform_rejected"
    if rejected and not (req.comment or "").strip():
        raise Invalid("err.reason_required",
                      example=Term.of(f"example.{req.action}", task_id=task.id))
    if task.state not in ("submitted", "in_review"):
        raise Conflict("err.bad_state", task_id=task.id, state=Term(f"state.{task.state}"),
                       action=Term(f"action.{req.action}"))
    before = task.state
    _, lines = current(session, task.id or 0)
    items = [ItemResult(x.sku, "rejected" if rejected else "accepted",
                        "REPORTED" if rejected else None,
                        (req.comment or "")[:500] if rejected else None) for x in lines]
    audit(session, task.id or 0, req.actor.name, req.action, comment=req.comment)
    apply_review(session, task.id or 0, attempt.reference or "", ReviewStatus(
        status="rejected" if rejected else "accepted", items=items,
        raw={"reported_by": req.actor.name}))
    enqueue_submission_card(session, task, run)
    return _outcome(session, task, req.action, before)

