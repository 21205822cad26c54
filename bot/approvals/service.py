"""Approval steps for a declaration, decided by card button, text command or API.

``route`` (the YAML policy by default) says which steps; ``decide`` enforces, on the
server and always: the step's role (or the person it was escalated to), no approving one's
own request, no deciding a stale card or an already decided step. ``escalate_overdue``
sends an overdue step up to the approvers' managers — a timeout never decides anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.approvals import policy
from bot.core import lifecycle, outbox
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid
from bot.core.i18n import Term, Terms, roles, t
from bot.core.lifecycle import Outcome
from bot.core.refusals import refused
from bot.core.settings import get_settings
from bot.core.timefmt import local
from bot.declarations.autofill import current
from cards.approval import step_reason
from storage.db import Database
from storage.models import ApprovalStep, AuditEvent, Campaign, Declaration, Task, User
from storage.models_approval import ApprovalEscalation, ApprovalRound
from storage.types import utcnow

log = logging.getLogger(__name__)
DEFAULT_SLA = timedelta(hours=4)
DECISIONS = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}



def default_route(session: Session, task: Task, declaration: Declaration) -> list[dict]:
    _, lines = current(session, task.id or 0)
    steps = policy.route(policy.facts_for(session, task, lines))
    return steps or [{"seq": 1, "role": "manager", "reason": "approval.reason.no_rule"}]


route: Callable[[Session, Task, Declaration], list[dict]] = default_route


def request(session: Session, task: Task, declaration: Declaration, actor: Actor,
            *, event_id: str | None = None) -> Outcome:
    outcome = lifecycle.apply(session, task.id or 0, "request_approval", actor,
                              event_id=event_id, detail={"declaration": declaration.version})
    now = utcnow()
    _, lines = current(session, task.id or 0)
    facts = policy.facts_for(session, task, lines)
    rows = []
    for step in route(session, task, declaration) or [{"seq": 1, "role": "manager",
                                                       "reason": "approval.reason.no_steps"}]:
        row = ApprovalStep(
            task_id=task.id or 0, declaration_version=declaration.version,
            seq=step["seq"], role=step["role"], reason=step.get("reason", "")[:256],
            group=step.get("group", ""), mode=step.get("mode", "all_of"),
            requested_by=actor.user_id, due_at=now + step.get("sla", DEFAULT_SLA))
        session.add(row)
        rows.append(row)
    session.flush()
    rnd = ApprovalRound(task_id=task.id or 0, declaration_version=declaration.version,
                        opened_version=outcome.version, requested_by=actor.user_id,
                        step_ids=[r.id for r in rows], facts=facts.as_json())
    session.add(rnd)
    session.flush()
    _ask(session, task, rnd, min(r.seq for r in rows))
    enqueue_approval_card(session, task, declaration.version)
    return outcome


def latest_round(session: Session, task_id: int) -> ApprovalRound | None:
    return session.exec(select(ApprovalRound).where(ApprovalRound.task_id == task_id)
                        .order_by(ApprovalRound.id.desc()).limit(1)).first()


def round_steps(session: Session, rnd: ApprovalRound) -> list[ApprovalStep]:
    if not rnd.step_ids:
        return []
    return list(session.exec(select(ApprovalStep).where(ApprovalStep.id.in_(rnd.step_ids))
                             .order_by(ApprovalStep.seq, ApprovalStep.id)
                             .execution_options(populate_existing=True)))


def escalated_to(session: Session, step_ids: list[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    if not step_ids:
        return out
    for row in session.exec(select(ApprovalEscalation).where(
            ApprovalEscalation.step_id.in_(step_ids))):
        out.setdefault(row.step_id, set()).update(row.escalated_to)
    return out


def enqueue_approval_card(session: Session, task: Task, declaration_version: int) -> None:
    """(Re)show the current round's card in the approvals channel (updated in place)."""
    campaign = session.get(Campaign, task.campaign_id)
    rnd = latest_round(session, task.id or 0)
    assert campaign is not None
    if rnd is None:
        return
    bindings = outbox.bindings_for(session, campaign.platform, "approvals", task.team_id) or \
        outbox.bindings_for(session, campaign.platform, "notices", task.team_id)
    card_key = f"approval:{task.id}:r{rnd.id}"
    task_version = session.get(Task, task.id, populate_existing=True).version  # type: ignore
    stamp = f"{task_version}.{len(rnd.auto)}.{utcnow().timestamp():.6f}"
    for binding in bindings:
        outbox.enqueue_card(
            session, binding.chat, binding.channel_id, card_key, "approval",
            {"task_id": task.id, "declaration_version": declaration_version,
             "round_id": rnd.id},
            key=f"{card_key}:v{stamp}:{binding.chat}:{binding.channel_id}", task_id=task.id)


def pending_steps(session: Session, task_id: int) -> list[ApprovalStep]:
    rnd = latest_round(session, task_id)
    if rnd is None or rnd.state != "open":
        return []
    return [s for s in round_steps(session, rnd) if s.state == "pending"]


def _name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return user.display_name if user else "PromoPilot"


def deciders(session: Session, task: Task, rnd: ApprovalRound | None,
             step: ApprovalStep) -> tuple[list[User], str]:
    """Who can decide ``step`` now (``policy.eligible``: never the requester or claimant)."""
    requester = rnd.requested_by if rnd else step.requested_by
    return policy.eligible(session, step.role, task.team_id, requester, task.claimed_by)


def _may(session: Session, task: Task, rnd: ApprovalRound, step: ApprovalStep, actor: Actor,
         escalations: dict[int, set[int]]) -> bool:
    if actor.user_id is None:
        return False
    if actor.user_id in escalations.get(step.id or 0, set()):
        return True
    return actor.user_id in {u.id for u in deciders(session, task, rnd, step)[0]}


def _who_can(session: Session, task: Task, rnd: ApprovalRound, steps: list[ApprovalStep],
             escalations: dict[int, set[int]]) -> Terms:
    """The names of the people who can decide ``steps`` (for a refusal)."""
    ids: list[int] = []
    for step in steps:
        ids += [u.id or 0 for u in deciders(session, task, rnd, step)[0]]
        ids += sorted(escalations.get(step.id or 0, set()))
    return Terms(tuple(_name(session, i) for i in dict.fromkeys(ids)), empty=Term("appr.nobody"))


def _decided_error(session: Session, step: ApprovalStep) -> Conflict:
    return Conflict("err.step_decided", seq=step.seq, role=Term(f"role.{step.role}"),
                    who=_name(session, step.decided_by), when=local(step.decided_at,
                                                                    fmt="%m-%d %H:%M"),
                    decision=Term(f"card.decision.{step.state}"))


def decide(session: Session, task: Task, decision: str, actor: Actor, *,
           comment: str | None = None, event_id: str | None = None,
           version: int | None = None) -> Outcome:
    """Record one approver's decision; the last approval approves the task."""
    if decision not in DECISIONS:
        raise Invalid("err.unknown_action", value=decision[:40],
                      actions=Terms(tuple(Term(f"action.{d}") for d in DECISIONS)))
    if decision != "approve" and not (comment or "").strip():
        raise Invalid("err.reason_required",
                      example=Term.of(f"example.{decision}", task_id=task.id))
    # one decision at a time per task: parallel approvers must see each other's steps
    session.exec(select(Task.id).where(Task.id == task.id).with_for_update()).first()
    rnd = latest_round(session, task.id or 0) or _adopt_legacy(session, task)
    if rnd is not None and rnd.state != "open":
        last = max((s for s in round_steps(session, rnd) if s.decided_at),
                   key=lambda s: s.decided_at, default=None)  # type: ignore[arg-type,return-value]
        if last is not None:
            raise Conflict("err.approval_closed", task_id=task.id,
                           who=_name(session, last.decided_by),
                           when=local(last.decided_at, fmt="%m-%d %H:%M"),
                           decision=Term(f"card.decision.{last.state}"))
    if rnd is None or rnd.state != "open" or task.state != lifecycle.State.IN_APPROVAL:
        lifecycle.apply(session, task.id or 0, decision, actor, comment=comment)  # raises
        raise Conflict("err.bad_state", task_id=task.id, state=Term(f"state.{task.state}"),
                       action=Term(f"action.{decision}"))
    if version is not None and version < rnd.opened_version:
        raise Conflict("err.stale_card", task_id=task.id)
    steps = round_steps(session, rnd)
    pending = [s for s in steps if s.state == "pending"]
    escalations = escalated_to(session, [s.id or 0 for s in steps])
    current_seq = min(s.seq for s in pending)
    now_steps = [s for s in pending if s.seq == current_seq]
    mine = [s for s in now_steps if _may(session, task, rnd, s, actor, escalations)]
    own = actor.user_id is not None and actor.user_id in (rnd.requested_by, task.claimed_by)

    def refuse(error):  # audited in its own transaction: this one rolls back
        return refused(session, error, task_id=task.id, actor=actor, action=decision,
                       state=task.state, detail={"round": rnd.id, "seq": current_seq})

    if own:  # even when escalated to them or holding the role: never one's own request
        raise refuse(Forbidden("appr.self_refused",
                               who=_who_can(session, task, rnd, now_steps, escalations)))
    if not mine:
        done = [s for s in steps if s.state != "pending" and s.decided_at
                and _may(session, task, rnd, s, actor, escalations)]
        if done:
            raise _decided_error(session, done[-1])
        if any(_may(session, task, rnd, s, actor, escalations) for s in pending):
            raise refuse(Conflict("err.not_your_turn", seq=current_seq, roles=roles(
                {s.role for s in now_steps})))
        raise refuse(Forbidden("appr.role_refused", roles=roles(actor.roles),
                               action=Term(f"action.{decision}"),
                               allowed=roles({s.role for s in now_steps}),
                               who=_who_can(session, task, rnd, now_steps, escalations)))
    now = utcnow()
    for step in mine:
        changed = session.execute(
            update(ApprovalStep).where(ApprovalStep.id == step.id,
                                       ApprovalStep.state == "pending")
            .values(state=DECISIONS[decision], decided_by=actor.user_id, decided_at=now,
                    comment=comment)
            .execution_options(synchronize_session=False))
        if changed.rowcount != 1:
            session.refresh(step)
            raise _decided_error(session, step)
    steps = round_steps(session, rnd)
    decided_ids = {s.id for s in mine}
    groups = {s.group for s in mine if s.mode == "any_of" and s.group}
    remaining = []
    for other in steps:
        if other.state != "pending":
            continue
        if decision != "approve":
            other.state = "cancelled"  # the request is over; close the other steps
        elif other.group in groups:
            other.state, other.comment = "skipped", f"any_of: {actor.display_name}"
        else:
            remaining.append(other)
            continue
        session.add(other)
    detail = {"round": rnd.id, "steps": sorted(decided_ids),
              "roles": sorted({s.role for s in mine})}
    if decision == "approve" and remaining:
        lifecycle.touch(session, task.id or 0)
        session.add(AuditEvent(task_id=task.id, actor=actor.name, action="approve_step",
                               event_id=event_id, detail={**detail, **(
                                   {"comment": comment} if comment else {})}))
        session.flush()
        session.refresh(task)
        next_seq = min(s.seq for s in remaining)
        if next_seq != current_seq:
            _ask(session, task, rnd, next_seq)
        outcome = Outcome(task.id or 0, "approve_step", task.state, task.state, task.version)
    else:
        rnd.state, rnd.closed_at = DECISIONS[decision], now
        session.add(rnd)
        # the step (or its escalation) authorised this person; the transition checks that role
        as_step = replace(actor, roles=actor.roles | {s.role for s in mine})
        outcome = lifecycle.apply(session, task.id or 0, decision, as_step, comment=comment,
                                  event_id=event_id, detail=detail)
        session.refresh(task)
        if decision == "approve":
            from bot.approvals import gates

            gates.after_final_approval(session, task, rnd)
            session.refresh(task)
            if task.state != outcome.after:
                outcome = Outcome(task.id or 0, decision, outcome.before, task.state,
                                  task.version)
    enqueue_approval_card(session, task, rnd.declaration_version)
    return outcome


def _adopt_legacy(session: Session, task: Task) -> ApprovalRound | None:
    """Steps requested before rounds existed get a round, so the same checks apply."""
    if task.state != lifecycle.State.IN_APPROVAL:
        return None
    steps = list(session.exec(select(ApprovalStep).where(
        ApprovalStep.task_id == task.id, ApprovalStep.state == "pending")))
    if not steps:
        return None
    rnd = ApprovalRound(task_id=task.id or 0, declaration_version=steps[0].declaration_version,
                        opened_version=1, requested_by=steps[0].requested_by,
                        step_ids=[s.id for s in steps])
    session.add(rnd)
    session.flush()
    return rnd


def _ask(session: Session, task: Task, rnd: ApprovalRound, seq: int) -> None:
    """Tell the people of step ``seq`` privately that they have something to approve."""
    campaign = session.get(Campaign, task.campaign_id)
    title = campaign.title[:80] if campaign else ""
    for step in round_steps(session, rnd):
        if step.seq != seq or step.state != "pending":
            continue
        for user in deciders(session, task, rnd, step)[0]:
            outbox.enqueue_private(session, user.id or 0, t(
                "approval.ask", user.lang, task_id=task.id, title=title, seq=step.seq,
                role=Term(f"role.{step.role}"), reason=step_reason(step.reason, user.lang) or "-"),
                key=f"approval-ask:{rnd.id}:{step.id}:{user.id}")


def escalate_overdue(db: Database, now: datetime | None = None) -> int:
    """Send each overdue pending step one level up; returns how many were escalated."""
    now = now or utcnow()
    with db.session() as session:
        ids = list(session.exec(
            select(ApprovalStep.id).join(Task, Task.id == ApprovalStep.task_id)
            .where(ApprovalStep.state == "pending", ApprovalStep.due_at <= now,
                   Task.state == lifecycle.State.IN_APPROVAL)))
    count = 0
    for step_id in ids:
        try:
            with db.session() as session:
                count += _escalate_one(session, step_id, now)
        except IntegrityError:  # another replica escalated it at the same moment
            log.info("escalation raced", extra={"step_id": step_id})
    return count


def _escalate_one(session: Session, step_id: int, now: datetime) -> int:
    step = session.get(ApprovalStep, step_id)
    if step is None or step.state != "pending" or step.due_at is None or step.due_at > now:
        return 0
    task = session.get(Task, step.task_id)
    rnd = latest_round(session, step.task_id)
    if task is None or rnd is None or step_id not in rnd.step_ids or rnd.state != "open":
        return 0
    previous = list(session.exec(select(ApprovalEscalation).where(
        ApprovalEscalation.step_id == step_id).order_by(ApprovalEscalation.level)))
    level = len(previous) + 1
    holders = ({uid for uid in previous[-1].escalated_to} if previous else
               {u.id for u in deciders(session, task, rnd, step)[0]})
    targets: set[int] = set()
    for uid in holders:
        user = session.get(User, uid)
        if user and user.manager_id:
            targets.add(user.manager_id)
    targets -= {rnd.requested_by, task.claimed_by, None}
    if not targets:
        targets = {u.id for u in policy.people(session, "admin", task.team_id)} - {
            rnd.requested_by, task.claimed_by, None}  # never to the requester themselves
    session.add(ApprovalEscalation(step_id=step_id, task_id=task.id or 0, level=level,
                                   escalated_to=sorted(targets)))
    sla = timedelta(hours=float(policy.current().defaults.get("sla_hours", 4)))
    step.due_at = now + sla  # the next level if this one is silent too; never a decision
    session.add(step)
    who = "、".join(_name(session, uid) for uid in sorted(targets))
    session.add(AuditEvent(task_id=task.id, actor="reminders", action="approval_escalated",
                           detail={"step": step_id, "level": level, "role": step.role,
                                   "to": sorted(targets)}))
    session.flush()
    for uid in sorted(targets):
        user = session.get(User, uid)
        outbox.enqueue_private(session, uid, t("approval.escalated", user.lang if user else None,
                                               task_id=task.id, seq=step.seq,
                                               role=Term(f"role.{step.role}"), who=who),
                               key=f"approval-escalated:{step_id}:{level}:{uid}")
    campaign = session.get(Campaign, task.campaign_id)
    key = "approval.escalated" if targets else "approval.escalated_nobody"
    for binding in outbox.bindings_for(session, campaign.platform if campaign else "*",
                                       "approvals", task.team_id):
        outbox.enqueue_text(session, binding.chat, binding.channel_id,
                            t(key, get_settings().language, task_id=task.id, seq=step.seq,
                              role=Term(f"role.{step.role}"), who=who),
                            key=f"approval-escalated:{step_id}:{level}:{binding.chat}:"
                                f"{binding.channel_id}")
    log.warning("approval step escalated", extra={"task_id": task.id, "step_id": step_id,
                                                  "level": level, "to": sorted(targets)})
    enqueue_approval_card(session, task, step.declaration_version)
    return 1
