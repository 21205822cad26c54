"""The promotion lifecycle: every state change of a task happens here and only here.

Each transition is a conditional ``UPDATE … WHERE state IN (…)`` (never read-then-write),
checks the actor's role, writes an audit event and tells the listeners (cards, reminders,
submissions). Idempotency by delivery id is the caller's ``bot.core.idempotency.once``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sqlalchemy import Insert, Row, Update, bindparam, insert, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid, NotFound
from bot.core.i18n import Term, Terms, roles
from storage.db import connection
from storage.models import AuditEvent, Task, User
from storage.types import utcnow

log = logging.getLogger(__name__)


class State(StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    DRAFTING = "drafting"
    IN_APPROVAL = "in_approval"
    APPROVED = "approved"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    ACCEPTED = "accepted"
    PLATFORM_REJECTED = "platform_rejected"
    RUNNING = "running"
    FINISHED = "finished"
    SKIPPED = "skipped"
    EXPIRED = "expired"


OPEN_STATES = frozenset(
    {State.NEW, State.CLAIMED, State.DRAFTING, State.IN_APPROVAL, State.APPROVED,
     State.SUBMITTING, State.SUBMITTED, State.IN_REVIEW, State.PLATFORM_REJECTED}
)
CLOSED_STATES = frozenset(set(State) - OPEN_STATES)
SYSTEM = frozenset({"system"})
STAFF = frozenset({"market", "ops", "manager"})
APPROVERS = frozenset({"manager", "finance", "legal"})


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[State]
    target: State
    roles: frozenset[str]
    claimant_only: bool = False  # the claimant (or a manager) only
    sets_claimant: bool = False
    clears_claimant: bool = False
    needs_comment: bool = False


def _t(action: str, sources: set[State], target: State, roles: frozenset[str], **kw: bool):
    return action, Transition(action, frozenset(sources), target, roles, **kw)


S = State
TRANSITIONS: dict[str, Transition] = dict(
    [
        _t("claim", {S.NEW}, S.CLAIMED, STAFF, sets_claimant=True),
        _t("release", {S.CLAIMED, S.DRAFTING}, S.NEW, STAFF, claimant_only=True,
           clears_claimant=True),
        _t("draft", {S.CLAIMED, S.DRAFTING, S.PLATFORM_REJECTED}, S.DRAFTING,
           STAFF | {"design"}, claimant_only=True),
        _t("request_approval", {S.DRAFTING}, S.IN_APPROVAL, STAFF, claimant_only=True),
        _t("approve", {S.IN_APPROVAL}, S.APPROVED, APPROVERS | SYSTEM),
        _t("reject", {S.IN_APPROVAL}, S.DRAFTING, APPROVERS, needs_comment=True),
        _t("request_changes", {S.IN_APPROVAL}, S.DRAFTING, APPROVERS, needs_comment=True),
        _t("submit", {S.APPROVED}, S.SUBMITTING, STAFF | SYSTEM, claimant_only=True),
        _t("submission_failed", {S.SUBMITTING}, S.APPROVED, SYSTEM),
        _t("mark_submitted", {S.SUBMITTING}, S.SUBMITTED, STAFF | SYSTEM),
        _t("review_started", {S.SUBMITTED}, S.IN_REVIEW, SYSTEM),
        _t("accept", {S.SUBMITTED, S.IN_REVIEW}, S.ACCEPTED, SYSTEM),
        _t("platform_reject", {S.SUBMITTED, S.IN_REVIEW}, S.PLATFORM_REJECTED, SYSTEM),
        _t("redraft", {S.PLATFORM_REJECTED}, S.DRAFTING, SYSTEM),
        _t("start", {S.ACCEPTED}, S.RUNNING, SYSTEM),
        _t("finish", {S.RUNNING, S.ACCEPTED}, S.FINISHED, SYSTEM),
        _t("skip", {S.NEW, S.CLAIMED, S.DRAFTING, S.PLATFORM_REJECTED}, S.SKIPPED, STAFF,
           needs_comment=True),
        _t("expire", {S.NEW, S.CLAIMED, S.DRAFTING}, S.EXPIRED, SYSTEM),
    ]
)


LOCKED = "promopilot.locked_tasks"  # session.info: task ids this transaction holds locked


def lock(session: Session, task_id: int) -> Task | None:
    """Load a task locked for this transaction (``SELECT … FOR UPDATE``; SQLite's
    ``BEGIN IMMEDIATE`` holds the database already); ``apply`` then needs no lock of its own."""
    task = session.get(Task, task_id, with_for_update=True, populate_existing=True)
    if task is not None:
        session.info.setdefault(LOCKED, set()).add(task_id)
    return task


@dataclass(frozen=True)
class Outcome:
    task_id: int
    action: str
    before: str
    after: str
    version: int
    changed: bool = True


Listener = Callable[[Session, Task, Outcome, Actor], None]
listeners: list[Listener] = []


def on_transition(fn: Listener) -> Listener:
    """Register a listener called inside the transition's transaction."""
    if fn not in listeners:
        listeners.append(fn)
    return fn


def _who(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return user.display_name if user else "?"


def check_role(rule: Transition, actor: Actor) -> None:
    if actor.is_system and "system" in rule.roles:
        return
    if not actor.has_any(rule.roles - SYSTEM):
        people = rule.roles - SYSTEM
        raise Forbidden(
            "err.forbidden_role",
            roles=roles(actor.roles),
            action=Term(f"action.{rule.action}"),
            allowed=roles(people) if people else Term("role.system"),
        )


def apply(
    session: Session,
    task_id: int,
    action: str,
    actor: Actor,
    *,
    comment: str | None = None,
    expected_version: int | None = None,
    event_id: str | None = None,
    detail: dict | None = None,
) -> Outcome:
    """Make one transition or raise ``NotFound`` / ``Forbidden`` / ``Conflict`` / ``Invalid``."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise Invalid("err.unknown_action", value=action[:40], actions=Terms(tuple(
            Term(f"action.{name}") for name, r in TRANSITIONS.items() if r.roles - SYSTEM)))
    check_role(rule, actor)
    if rule.needs_comment and not (comment or "").strip():
        raise Invalid("err.reason_required", example=Term.of(f"example.{action}", task_id=task_id))

    claimant_guard = rule.claimant_only and not actor.is_system and "manager" not in actor.roles
    # "before" must be exact: known when the rule has one source state (the UPDATE below
    # only matches it), read under the lock ``perform`` took, or else read FOR UPDATE. The
    # conditional UPDATE decides; RETURNING hands the new row back as the session's Task
    # (no re-read), and the audit row is one compiled INSERT (no unit-of-work flush).
    locked = task_id in session.info.get(LOCKED, ())
    task = session.identity_map.get(session.identity_key(Task, task_id)) if locked else None
    if task is not None:
        before: str | None = task.state
    elif len(rule.sources) == 1:
        before = next(iter(rule.sources)).value
    else:
        before = session.execute(
            select(Task.state).where(Task.id == task_id).with_for_update()
        ).scalar_one_or_none()
    conn = connection(session)
    row = conn.execute(
        _transition(action, claimant_guard, expected_version is not None), {
            "p_task": task_id, "p_now": utcnow(), "p_actor": actor.user_id, "p_comment": comment,
            "p_version": expected_version}).first()
    task = _held(session, row) if row is not None else None
    if task is None:
        raise _why_not(session, task_id, rule, actor, claimant_guard, expected_version)
    outcome = Outcome(task.id or task_id, action, before or "", task.state, task.version)
    conn.execute(_audit_insert(), {
        "task_id": task_id, "actor": actor.name, "action": action,
        "from_state": outcome.before, "to_state": outcome.after, "event_id": event_id,
        "detail": {**(detail or {}), **({"comment": comment} if comment else {})},
        "created_at": utcnow()})
    log.info(
        "transition", extra={"task_id": task_id, "action": action, "actor": actor.name,
                             "from": outcome.before, "to": outcome.after}
    )
    for listener in list(listeners):
        listener(session, task, outcome, actor)
    return outcome


@cache
def _transition(action: str, claimant_guard: bool, versioned: bool) -> Update:
    """A rule's conditional ``UPDATE … RETURNING`` the task, built once per process for each
    shape (who may, whether the card's version is checked): every claim only binds values."""
    rule, t = TRANSITIONS[action], Task.__table__.c
    values: dict = {"state": rule.target.value, "version": t.version + 1,
                    "updated_at": bindparam("p_now")}
    if rule.sets_claimant:
        values["claimed_by"] = bindparam("p_actor")
    if rule.clears_claimant:
        values["claimed_by"] = None
    if action == "skip":
        values["skip_reason"] = bindparam("p_comment")
    sources = sorted(s.value for s in rule.sources)
    conditions = [t.id == bindparam("p_task"),
                  t.state == sources[0] if len(sources) == 1 else t.state.in_(sources)]
    if claimant_guard:
        conditions.append(t.claimed_by == bindparam("p_actor"))
    if versioned:
        conditions.append(t.version == bindparam("p_version"))
    return update(Task.__table__).where(*conditions).values(**values).returning(*Task.__table__.c)


def _held(session: Session, row: Row) -> Task:
    """The updated task as the session's object: the one it already holds, brought up to
    date, or a new one built from the row (no ORM flush or load machinery on the hot path)."""
    held = session.identity_map.get(session.identity_key(Task, row.id))
    if held is None:
        held = Task(**row._mapping)
        make_transient_to_detached(held)  # as if loaded: persistent once added, no INSERT
        session.add(held)
        return held
    for key, value in row._mapping.items():
        set_committed_value(held, key, value)
    return held


@cache
def _audit_insert() -> Insert:
    """Compiled once per process: parameters, not rendered values."""
    return insert(AuditEvent.__table__)  # type: ignore[arg-type]


def _why_not(
    session: Session,
    task_id: int,
    rule: Transition,
    actor: Actor,
    claimant_guard: bool,
    expected_version: int | None,
) -> Exception:
    task = session.get(Task, task_id, populate_existing=True)
    if task is None:
        return NotFound("err.not_found", task_id=task_id)
    if task.state not in {s.value for s in rule.sources}:
        if rule.action == "claim" and task.claimed_by:
            if task.claimed_by == actor.user_id:  # their own click again (a redelivery)
                return Conflict("err.already_yours", task_id=task_id)
            return Conflict("err.already_claimed", task_id=task_id,
                            who=_who(session, task.claimed_by))
        return Conflict("err.bad_state", task_id=task_id, state=Term(f"state.{task.state}"),
                        action=Term(f"action.{rule.action}"))
    if claimant_guard and task.claimed_by != actor.user_id:
        return Forbidden("err.not_claimant", task_id=task_id, who=_who(session, task.claimed_by))
    if expected_version is not None and task.version != expected_version:
        return Conflict("err.stale_card", task_id=task_id)
    return Conflict("err.bad_state", task_id=task_id, state=Term(f"state.{task.state}"),
                    action=Term(f"action.{rule.action}"))


def touch(session: Session, task_id: int) -> None:
    """Bump a task's version after a visible change that is not a state change."""
    session.execute(
        update(Task).where(Task.id == task_id)
        .values(version=Task.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def allowed_actions(task: Task) -> list[str]:
    """Person-facing actions that the task's state allows (for card buttons)."""
    return [
        name for name, rule in TRANSITIONS.items()
        if task.state in rule.sources and rule.roles - SYSTEM
    ]
