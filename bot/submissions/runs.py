"""A submission run's records: its idempotency key, attempts, hand-offs and the card.

The idempotency key comes from the intent — task and declaration version — never from a
retry counter, so whatever is retried the marketplace enrols once.
"""

from __future__ import annotations

import secrets

from sqlmodel import Session, select

from bot.core import lifecycle, outbox
from bot.core.actors import Actor
from bot.core.i18n import Term, t
from bot.core.ports import HUMAN_CHANNELS, WAITING
from storage.models import AuditEvent, Campaign, SubmissionAttempt, Task, User
from storage.models_approval import SubmissionRun
from storage.types import utcnow

API_CHANNELS = ("api", "http_json")


def idempotency_key(task_id: int, declaration_version: int) -> str:
    return f"pp-task{task_id}-decl{declaration_version}"


def audit(session: Session, task_id: int, actor: str, action: str, **detail: object) -> None:
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
    audit(session, task.id or 0, "submitter", "submission_handoff", channel=channel,
           reference=reference, key=key, assignee=run.assignee)
    run.status, run.updated_at = WAITING, utcnow()
    run.handoff = {**handoff, "channel": channel, "reference": reference,
                   "token": secrets.token_urlsafe(16)}
    run.assignee = run.assignee or task.claimed_by
    session.add(run)
    session.flush()
    assignee = session.get(User, run.assignee) if run.assignee else None
    if channel in HUMAN_CHANNELS and assignee is not None:
        outbox.enqueue_private(session, assignee.id or 0, t(
            "submission.handoff_private", assignee.lang, task_id=task.id,
            channel=Term(f"sub.ch.{channel}")),
            key=f"submission-handoff:{run.id}:{attempt_no}")
    enqueue_submission_card(session, task, run)

