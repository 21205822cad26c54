"""Submitting approved declarations, recovering from failure, and following the review.

The idempotency key comes from the intent — task and declaration version — never from a
retry counter, so whatever is retried (tenacity inside a channel, the "retry" button, a
fallback channel), the marketplace enrols once. A channel that keeps failing falls back to
the next configured one (API → RPA → Excel/assisted) and the team gets a context card: what
failed, the last error, what was tried, with "retry" and "I'll take over".
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import cards.submission  # noqa: F401  (registers the "submission" card builder)
from adapters.platforms.submitters import HUMAN, SubmissionConfig, factory
from adapters.platforms.submitters.assisted import AssistedSubmitter
from adapters.platforms.submitters.base import WAITING
from bot.core import lifecycle, outbox
from bot.core.actions import ActionRequest, handles
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid
from bot.core.i18n import t
from bot.core.lifecycle import Outcome
from bot.core.ports import ItemResult, ReviewStatus, SubmissionItem, Submitter
from bot.declarations.autofill import current
from storage.db import Database
from storage.models import (
    AuditEvent,
    Campaign,
    DeclarationLine,
    SubmissionAttempt,
    Task,
    User,
)
from storage.models_approval import SubmissionRun
from storage.queries import user_name
from storage.types import utcnow

log = logging.getLogger(__name__)
SubmitterFactory = Callable[[str], Submitter | None]
ChannelFactory = Callable[[str, str], Submitter | None]
LEASE = timedelta(minutes=10)
API_CHANNELS = ("api", "http_json")



def idempotency_key(task_id: int, declaration_version: int) -> str:
    return f"pp-task{task_id}-decl{declaration_version}"


def _audit(session: Session, task_id: int, actor: str, action: str, **detail: object) -> None:
    session.add(AuditEvent(task_id=task_id, actor=actor, action=action, detail=detail))


def run_for(session: Session, task_id: int) -> SubmissionRun | None:
    return session.exec(select(SubmissionRun).where(SubmissionRun.task_id == task_id)
                        .order_by(SubmissionRun.declaration_version.desc(),
                                  SubmissionRun.id.desc()).limit(1)).first()


def enqueue_submission_card(session: Session, task: Task, run: SubmissionRun) -> None:
    """The hand-off / escalation card, in the task's channel and (after a failure) in ops."""
    campaign = session.get(Campaign, task.campaign_id)
    platform = campaign.platform if campaign else "*"
    targets = {(b.chat, b.channel_id) for b in outbox.bindings_for(session, platform, "notices",
                                                                    task.team_id)}
    if run.tried:
        targets |= {(b.chat, b.channel_id) for b in outbox.bindings_for(session, platform, "ops",
                                                                         task.team_id)}
    card_key = f"submission:{task.id}:{run.id}"
    stamp = f"{utcnow().timestamp():.6f}"
    for chat, channel in sorted(targets):
        outbox.enqueue_card(session, chat, channel, card_key, "submission",
                            {"task_id": task.id, "run_id": run.id},
                            key=f"{card_key}:{stamp}:{chat}:{channel}", task_id=task.id)


class SubmissionService:
    def __init__(self, db: Database, submitter_for: SubmitterFactory, *,
                 config: SubmissionConfig | None = None,
                 channel_for: ChannelFactory | None = None, callback_url: str = "") -> None:
        self.db = db
        self.submitter_for = submitter_for
        self.config = config or SubmissionConfig()
        self.channel_for = channel_for or factory(self.config, submitter_for, callback_url)

    def submit_pending(self) -> int:
        """Send every task in ``submitting``; each outcome in its own transaction."""
        with self.db.session() as session:
            ids = list(session.exec(select(Task.id).where(Task.state == "submitting")))
        done = 0
        for task_id in ids:
            done += self.submit_one(task_id)
        return done

    # -- one task through its channel chain -------------------------------------------

    def _claim_run(self, task_id: int) -> tuple | None:
        """Take the run's lease (two workers never send the same run), creating it once."""
        with self.db.session() as session:
            task = session.get(Task, task_id)
            if task is None or task.state != "submitting":
                return None
            campaign = session.get(Campaign, task.campaign_id)
            declaration, lines = current(session, task_id)
            assert campaign is not None and declaration is not None
            run = session.exec(select(SubmissionRun).where(
                SubmissionRun.task_id == task_id,
                SubmissionRun.declaration_version == declaration.version)).first()
            if run is None:
                run = SubmissionRun(
                    task_id=task_id, declaration_version=declaration.version,
                    idempotency_key=idempotency_key(task_id, declaration.version),
                    channels=self._chain(campaign.platform),
                    assignee=task.claimed_by)
                session.add(run)
                session.flush()
            now = utcnow()
            if run.status == "failed":  # submitted again after giving up: start the chain over
                run.status, run.channel_index, run.handoff = "active", 0, {}
                session.add(run)
                session.flush()
            taken = session.execute(
                update(SubmissionRun).where(
                    SubmissionRun.id == run.id,
                    or_(SubmissionRun.status == "active",
                        (SubmissionRun.status == "working") & (SubmissionRun.updated_at
                                                               < now - LEASE)))
                .values(status="working", updated_at=now)
                .execution_options(synchronize_session=False))
            if taken.rowcount != 1:
                return None
            items = [SubmissionItem(line.sku, line.list_price, line.promo_price,
                                    line.promo_stock) for line in lines]
            return (run.id, campaign.platform, campaign.external_id, items,
                    run.idempotency_key, declaration.version)

    def _chain(self, platform: str) -> list[str]:
        """The configured channels that are set up for this platform (RPA needs a URL …)."""
        wanted = list(self.config.for_platform(platform).channels)
        ready = [c for c in wanted if self.channel_for(c, platform) is not None]
        skipped = [c for c in wanted if c not in ready]
        if skipped:
            log.info("submission channels not set up", extra={"platform": platform,
                                                               "skipped": skipped})
        return ready or wanted  # nothing ready: try anyway, so the failure is recorded

    def submit_one(self, task_id: int) -> int:
        try:
            claimed = self._claim_run(task_id)
        except IntegrityError:  # another worker created the run at the same moment
            log.info("submission run raced", extra={"task_id": task_id})
            return 0
        if claimed is None:
            return 0
        run_id, platform, external_id, items, key, version = claimed
        while True:
            with self.db.session() as session:
                run = session.get(SubmissionRun, run_id)
                assert run is not None
                channel = run.channels[run.channel_index] if run.channel_index < len(
                    run.channels) else None
            if channel is None:
                self._give_up(run_id, task_id)
                return 1
            submitter = self.channel_for(channel, platform)
            if submitter is None:
                self._failed(run_id, task_id, version, key, channel,
                             "channel not configured for this platform")
                continue
            try:
                receipt = submitter.submit(external_id, items, key)
            except Exception as exc:  # noqa: BLE001 - recorded, shown on the card, falls back
                log.warning("submission failed", extra={"task_id": task_id, "key": key,
                                                        "channel": channel,
                                                        "error": repr(exc)[:300]})
                self._failed(run_id, task_id, version, key, channel, repr(exc))
                continue
            if receipt.status == WAITING:
                self._handoff(run_id, task_id, version, key, channel, receipt.reference,
                              receipt.raw.get("handoff", {}))
            else:
                self._sent(run_id, task_id, version, key, channel, receipt.reference,
                           receipt.raw)
            return 1

    def _attempt_no(self, session: Session, task_id: int) -> int:
        return len(list(session.exec(select(SubmissionAttempt.id).where(
            SubmissionAttempt.task_id == task_id)))) + 1

    def _failed(self, run_id: int, task_id: int, version: int, key: str, channel: str,
                error: str, record_attempt: bool = True) -> bool:
        """Record a failed channel; True when another channel is left to try."""
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            task = session.get(Task, task_id)
            assert run is not None and task is not None
            if record_attempt:
                session.add(SubmissionAttempt(
                    task_id=task_id, declaration_version=version, idempotency_key=key,
                    channel=channel, status="failed", error=error[:2000],
                    attempt_no=self._attempt_no(session, task_id)))
            _audit(session, task_id, "submitter", "submission_attempt", channel=channel,
                   status="failed", error=error[:500], key=key)
            run.tried = [*run.tried, {"channel": channel, "error": error[:500],
                                      "at": utcnow().isoformat()}]
            run.last_error, run.updated_at = error[:2000], utcnow()
            run.channel_index += 1
            more = run.channel_index < len(run.channels)
            session.add(run)
            task.last_error = f"{channel}: {error}"[:500]
            session.add(task)
            session.flush()
            if more:
                enqueue_submission_card(session, task, run)  # tell people we fell back
            return more

    def _give_up(self, run_id: int, task_id: int) -> None:
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            assert run is not None
            run.status, run.updated_at = "failed", utcnow()
            session.add(run)
            lifecycle.apply(session, task_id, "submission_failed", Actor.system("submitter"),
                            detail={"error": (run.last_error or "")[:500],
                                    "key": run.idempotency_key,
                                    "tried": [x["channel"] for x in run.tried]})
            task = session.get(Task, task_id)
            assert task is not None
            enqueue_submission_card(session, task, run)
        log.error("submission gave up", extra={"task_id": task_id, "run_id": run_id})

    def _handoff(self, run_id: int, task_id: int, version: int, key: str, channel: str,
                 reference: str, handoff: dict) -> None:
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            task = session.get(Task, task_id)
            assert run is not None and task is not None
            start_handoff(session, task, run, channel, reference, handoff, version, key)

    def _sent(self, run_id: int, task_id: int, version: int, key: str, channel: str,
              reference: str, raw: dict) -> None:
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            assert run is not None
            session.add(SubmissionAttempt(
                task_id=task_id, declaration_version=version, idempotency_key=key,
                channel=channel, status="sent", reference=reference,
                attempt_no=self._attempt_no(session, task_id), response=raw))
            _audit(session, task_id, "submitter", "submission_attempt", channel=channel,
                   status="sent", reference=reference, key=key)
            run.status, run.updated_at = "sent", utcnow()
            session.add(run)
            mark_sent(session, task_id, Actor.system("submitter"), reference, key, channel)
            if run.tried:
                task = session.get(Task, task_id)
                assert task is not None
                enqueue_submission_card(session, task, run)

    # -- review ---------------------------------------------------------------------------

    def poll_reviews(self) -> int:
        """Ask the marketplace about every task in review; apply finished reviews."""
        with self.db.session() as session:
            rows = list(session.exec(
                select(Task.id, Campaign.platform, SubmissionAttempt.reference,
                       SubmissionAttempt.channel)
                .join(Campaign, Campaign.id == Task.campaign_id)
                .join(SubmissionAttempt, SubmissionAttempt.task_id == Task.id)
                .where(Task.state.in_(("submitted", "in_review")),
                       SubmissionAttempt.status == "sent",
                       SubmissionAttempt.channel.in_(API_CHANNELS))
            ))
        done = 0
        for task_id, platform, reference, channel in rows:
            submitter = self.channel_for(channel, platform)
            if submitter is None or reference is None:
                continue
            try:
                status = submitter.status(reference)
            except Exception as exc:  # noqa: BLE001 - polled again next round
                log.warning("review poll failed", extra={"task_id": task_id, "channel": channel,
                                                         "error": repr(exc)[:300]})
                continue
            if status.status != "reviewing":
                with self.db.session() as session:
                    apply_review(session, task_id, reference, status)
                done += 1
        return done


def mark_sent(session: Session, task_id: int, actor: Actor, reference: str, key: str,
              channel: str) -> None:
    task = session.get(Task, task_id)
    assert task is not None
    task.last_error = None
    session.add(task)
    lifecycle.apply(session, task_id, "mark_submitted", actor,
                    detail={"reference": reference, "key": key, "channel": channel})
    lifecycle.apply(session, task_id, "review_started", Actor.system("review"))


def start_handoff(session: Session, task: Task, run: SubmissionRun, channel: str,
                  reference: str, handoff: dict, version: int, key: str) -> None:
    """Give the submission to a person (file, checklist) or a robot, and say so on a card."""
    for old in session.exec(select(SubmissionAttempt).where(
            SubmissionAttempt.task_id == task.id, SubmissionAttempt.status == WAITING)):
        old.status = "cancelled"
        session.add(old)
    attempt_no = len(list(session.exec(select(SubmissionAttempt.id).where(
        SubmissionAttempt.task_id == task.id)))) + 1
    session.add(SubmissionAttempt(
        task_id=task.id or 0, declaration_version=version, idempotency_key=key,
        channel=channel, status=WAITING, reference=reference[:128], attempt_no=attempt_no,
        response={"handoff": handoff}))
    _audit(session, task.id or 0, "submitter", "submission_handoff", channel=channel,
           reference=reference, key=key, assignee=run.assignee)
    run.status, run.updated_at = WAITING, utcnow()
    run.handoff = {**handoff, "channel": channel, "reference": reference,
                   "token": secrets.token_urlsafe(16)}
    run.assignee = run.assignee or task.claimed_by
    session.add(run)
    session.flush()
    assignee = session.get(User, run.assignee) if run.assignee else None
    if channel in HUMAN and assignee is not None:
        outbox.enqueue_private(session, assignee.id or 0, t(
            "submission.handoff_private", assignee.lang, task_id=task.id, channel=channel),
            key=f"submission-handoff:{run.id}:{attempt_no}")
    enqueue_submission_card(session, task, run)


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


# -- what people click on the submission card ----------------------------------------------

def _outcome(session: Session, task: Task, action: str, before: str) -> Outcome:
    session.flush()
    session.refresh(task)
    return Outcome(task.id or 0, action, before, task.state, task.version)


def _staff(req: ActionRequest, task: Task, run: SubmissionRun | None = None) -> None:
    """Ops, a manager, the claimant, or whoever took the submission over."""
    mine = {task.claimed_by, run.assignee if run else None} - {None}
    if not (req.actor.has_any({"ops", "manager"}) or req.actor.user_id in mine):
        raise Forbidden("err.forbidden_role", roles=", ".join(sorted(req.actor.roles)) or "-",
                        action=t(f"action.{req.action}", req.actor.lang),
                        allowed="ops, manager, claimant")


def _restart(session: Session, task: Task, req: ActionRequest, detail: dict) -> SubmissionRun:
    """Back to ``submitting`` if the run had given up; returns the current run."""
    run = run_for(session, task.id or 0)
    if task.state == "approved":
        lifecycle.apply(session, task.id or 0, "submit", Actor.system("submitter"),
                        detail=detail)
    elif task.state != "submitting":
        raise Conflict("err.bad_state", task_id=task.id, state=t(f"state.{task.state}",
                                                                 req.actor.lang),
                       action=t(f"action.{req.action}", req.actor.lang))
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
    _audit(session, task.id or 0, req.actor.name, "submission_retry", key=run.idempotency_key)
    lifecycle.touch(session, task.id or 0)
    enqueue_submission_card(session, task, run)
    return _outcome(session, task, req.action, before)


@handles("submission_takeover")
def _takeover(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """A person takes the submission over: deep link + checklist, confirmed with evidence."""
    if not req.actor.has_any({"ops", "market", "manager"}):
        raise Forbidden("err.forbidden_role", roles=", ".join(sorted(req.actor.roles)) or "-",
                        action=t("action.submission_takeover", req.actor.lang),
                        allowed="ops, market, manager")
    before = task.state
    run = _restart(session, task, req, {"takeover_by": req.actor.name})
    campaign = session.get(Campaign, task.campaign_id)
    _, lines = current(session, task.id or 0)
    from adapters.platforms.submitters import load

    entry = load().for_platform(campaign.platform if campaign else "*")
    receipt = AssistedSubmitter(entry.assisted, campaign.platform if campaign else "").submit(
        campaign.external_id if campaign else "", [SubmissionItem(
            x.sku, x.list_price, x.promo_price, x.promo_stock) for x in lines],
        run.idempotency_key)
    run.assignee = req.actor.user_id
    _audit(session, task.id or 0, req.actor.name, "submission_takeover",
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
        raise Invalid("err.reason_required", example=f"done {task.id} <platform reference>")
    run = run_for(session, task.id or 0)
    if task.state != "submitting" or run is None or run.status != WAITING or \
            run.handoff.get("channel") not in HUMAN:
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
    _audit(session, task.id or 0, req.actor.name, "submission_attempt", channel=channel,
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
        raise Invalid("err.reason_required", example=f"{req.action} {task.id} <reason>")
    if task.state not in ("submitted", "in_review"):
        raise Conflict("err.bad_state", task_id=task.id, state=t(f"state.{task.state}",
                                                                 req.actor.lang),
                       action=t(f"action.{req.action}", req.actor.lang))
    before = task.state
    _, lines = current(session, task.id or 0)
    items = [ItemResult(x.sku, "rejected" if rejected else "accepted",
                        "REPORTED" if rejected else None,
                        (req.comment or "")[:500] if rejected else None) for x in lines]
    _audit(session, task.id or 0, req.actor.name, req.action, comment=req.comment)
    apply_review(session, task.id or 0, attempt.reference or "", ReviewStatus(
        status="rejected" if rejected else "accepted", items=items,
        raw={"reported_by": req.actor.name}))
    enqueue_submission_card(session, task, run)
    return _outcome(session, task, req.action, before)


def rpa_callback(db: Database, payload: dict) -> str:
    """A signed result from the RPA robot: submitted, a review outcome, or failed."""
    job_id = str(payload.get("job_id") or "")
    status = str(payload.get("status") or "")
    if not job_id or status not in ("submitted", "accepted", "rejected", "partial", "failed"):
        raise Invalid("err.usage", usage="job_id and status (submitted/accepted/rejected/"
                                         "partial/failed) are required")
    with db.session() as session:
        attempt = session.exec(select(SubmissionAttempt).where(
            SubmissionAttempt.reference == job_id[:128],
            SubmissionAttempt.channel == "rpa")).first()
        if attempt is None:
            raise Invalid("err.usage", usage=f"unknown job {job_id[:60]}")
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
            _audit(session, task_id, "rpa", "submission_attempt", channel="rpa", status="sent",
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
    service = SubmissionService(db, lambda _p: None)  # only to record and move on
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


# -- plugin: configured channels, the escalation sweep, the RPA callback, hand-off files ----

def install(container, api) -> None:
    """Replace the foundation's API-only service with the configured channel chain."""
    from adapters.platforms.submitters import load
    from adapters.platforms.submitters.rpa import verify
    from bot.approvals import service as approvals
    from bot.core.errors import DomainError
    from bot.core.scheduler import threaded

    config = load()
    base = container.settings.base_url
    container.submissions = SubmissionService(
        container.db, container.submitters.get, config=config,
        callback_url=f"{base}/submissions/rpa/callback")
    container.jobs.append(("approval-escalation",
                           threaded(lambda: approvals.escalate_overdue(container.db)), 60.0))
    router = APIRouter(prefix="/submissions", tags=["submissions"])

    @router.post("/rpa/callback")
    async def rpa(request: Request) -> dict:
        import json
        import os

        body = await request.body()
        secret = os.environ.get(config.rpa.secret_env, "")
        if not verify(secret, request.headers.get("X-PromoPilot-Timestamp"),
                      request.headers.get("X-PromoPilot-Signature"), body):
            log.warning("rpa callback refused: bad signature or timestamp")
            raise HTTPException(401, "bad signature")
        try:
            payload = json.loads(body)
            result = rpa_callback(container.db, payload if isinstance(payload, dict) else {})
        except (ValueError, DomainError) as exc:
            raise HTTPException(422, str(exc)[:300]) from None
        container.extras.get("kick", lambda: None)()
        return {"result": result}

    @router.get("/handoff/{run_id}/file")
    def handoff_file(run_id: int, token: str) -> FileResponse:
        with container.db.session() as session:
            run = session.get(SubmissionRun, run_id)
        handoff = run.handoff if run else {}
        if not handoff.get("token") or not secrets.compare_digest(
                str(handoff["token"]), token) or not handoff.get("file"):
            raise HTTPException(404, "no such hand-off file")
        return FileResponse(handoff["file"], filename=handoff.get("filename") or "promo.xlsx",
                            media_type="application/vnd.openxmlformats-officedocument."
                                       "spreadsheetml.sheet")

    api.include_router(router)
