"""Approval steps for a declaration version, decided by card button or API.

The foundation asks one manager step. The policy (which steps, in which order, by which
roles) is ``route``; a YAML policy replaces it without touching the decision rules here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from bot import lifecycle, outbox
from bot.actors import Actor
from bot.errors import Conflict, Forbidden, Invalid
from bot.lifecycle import Outcome
from storage.models import ApprovalStep, Campaign, Declaration, Task
from storage.types import utcnow

DEFAULT_SLA = timedelta(hours=4)
DECISIONS = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}


def default_route(session: Session, task: Task, declaration: Declaration) -> list[dict]:
    return [{"seq": 1, "role": "manager", "reason": "default"}]


route: Callable[[Session, Task, Declaration], list[dict]] = default_route


def request(session: Session, task: Task, declaration: Declaration, actor: Actor,
            *, event_id: str | None = None) -> Outcome:
    outcome = lifecycle.apply(session, task.id or 0, "request_approval", actor,
                              event_id=event_id, detail={"declaration": declaration.version})
    now = utcnow()
    for step in route(session, task, declaration):
        session.add(ApprovalStep(
            task_id=task.id or 0, declaration_version=declaration.version,
            seq=step["seq"], role=step["role"], reason=step.get("reason", ""),
            group=step.get("group", ""), mode=step.get("mode", "all_of"),
            requested_by=actor.user_id, due_at=now + step.get("sla", DEFAULT_SLA),
        ))
    session.flush()
    enqueue_approval_card(session, task, declaration.version)
    return outcome


def enqueue_approval_card(session: Session, task: Task, declaration_version: int) -> None:
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    bindings = outbox.bindings_for(session, campaign.platform, "approvals", task.team_id) or \
        outbox.bindings_for(session, campaign.platform, "notices", task.team_id)
    card_key = f"approval:{task.id}:{declaration_version}"
    for binding in bindings:
        outbox.enqueue_card(
            session, binding.chat, binding.channel_id, card_key, "approval",
            {"task_id": task.id, "declaration_version": declaration_version},
            key=f"{card_key}:v{task.version}:{binding.chat}:{binding.channel_id}",
            task_id=task.id,
        )


def pending_steps(session: Session, task_id: int) -> list[ApprovalStep]:
    return list(session.exec(
        select(ApprovalStep).where(ApprovalStep.task_id == task_id,
                                   ApprovalStep.state == "pending")
        .order_by(ApprovalStep.seq, ApprovalStep.id)
    ))


def decide(session: Session, task: Task, decision: str, actor: Actor, *,
           comment: str | None = None, event_id: str | None = None) -> Outcome:
    """Record one approver's decision; the last approval approves the task."""
    if decision not in DECISIONS:
        raise Invalid("err.usage", usage="approve | reject <reason> | request_changes <reason>")
    if decision != "approve" and not (comment or "").strip():
        raise Invalid("err.reason_required", example=f"{decision} {task.id} <reason>")
    pending = pending_steps(session, task.id or 0)
    if task.state != lifecycle.State.IN_APPROVAL or not pending:
        lifecycle.apply(session, task.id or 0, decision, actor, comment=comment)  # raises
    current_seq = pending[0].seq
    mine = [s for s in pending if s.seq == current_seq and s.role in actor.roles]
    if not mine:
        roles = sorted({s.role for s in pending if s.seq == current_seq})
        raise Forbidden("err.forbidden_role", roles=", ".join(sorted(actor.roles)) or "-",
                        action=decision, allowed=", ".join(roles))
    step = mine[0]
    if step.requested_by is not None and step.requested_by == actor.user_id:
        raise Forbidden("err.self_approval")
    done = session.execute(
        update(ApprovalStep).where(ApprovalStep.id == step.id, ApprovalStep.state == "pending")
        .values(state=DECISIONS[decision], decided_by=actor.user_id, decided_at=utcnow(),
                comment=comment)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise Conflict("err.bad_state", task_id=task.id, state="decided", action=decision)
    remaining = pending_steps(session, task.id or 0)
    if decision == "approve" and remaining:
        lifecycle.touch(session, task.id or 0)
        session.refresh(task)
        outcome = Outcome(task.id or 0, "approve_step", task.state, task.state, task.version)
    else:
        if decision != "approve":
            for other in remaining:  # the request is over; close the other steps
                other.state = "cancelled"
                session.add(other)
        outcome = lifecycle.apply(session, task.id or 0, decision, actor, comment=comment,
                                  event_id=event_id, detail={"step": step.id})
        session.refresh(task)
    enqueue_approval_card(session, task, step.declaration_version)
    return outcome
