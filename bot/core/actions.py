"""One entry point for every decision a person (or the system) makes on a task.

A click from any chat, a text command and a REST call all become ``ActionRequest`` and
go through ``perform``: once per (actor, delivery id), one transaction, then the outbox is
kicked. Delivery ids carry their source (``slack:…``, ``feishu:…``, ``api:…``), so the key is
(source, actor, id): two people sending the same id each act; one person reusing an id for
another task or action is refused (409) instead of being silently "already done".
Features register their handlers with ``@handles("name")`` (as listeners register with the
lifecycle); an action without one is a plain lifecycle transition. The core names no feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.errors import Conflict, NotFound
from bot.core.i18n import Term
from bot.core.idempotency import Duplicate, once
from bot.core.lifecycle import Outcome
from storage.db import Database
from storage.models import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionRequest:
    task_id: int
    action: str
    actor: Actor
    comment: str | None = None
    event_id: str | None = None  # source-prefixed delivery id: same actor + id → handled once
    version: int | None = None  # the card version the click came from
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    task_id: int
    action: str
    before: str
    state: str
    version: int
    duplicate: bool = False


Handler = Callable[[Session, Task, ActionRequest], Outcome]
HANDLERS: dict[str, Handler] = {}
after_commit: list[Callable[[ActionResult], None]] = []
# Checks run inside the transaction before an action's handler; raise a DomainError to block
# (e.g. the compliance pre-check before request_approval and submit).
Guard = Callable[[Session, Task, ActionRequest], None]
before_action: dict[str, list[Guard]] = {}


def guard(*names: str) -> Callable[[Guard], Guard]:
    def register(fn: Guard) -> Guard:
        for name in names:
            guards = before_action.setdefault(name, [])
            if fn not in guards:
                guards.append(fn)
        return fn

    return register


def handles(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


def _plain(session: Session, task: Task | None, req: ActionRequest) -> Outcome:
    return lifecycle.apply(session, req.task_id, req.action, req.actor, comment=req.comment,
                           expected_version=req.version, event_id=req.event_id)


def perform(db: Database, req: ActionRequest) -> ActionResult:
    """Do one action once; raises DomainError subclasses with a user-facing reason."""
    event_key = f"action:{req.actor.name}:{req.event_id}" if req.event_id else None
    intent = {"task_id": req.task_id, "action": req.action}

    def work(session: Session) -> ActionResult:
        checks = before_action.get(req.action, [])
        if req.action not in HANDLERS and not checks:
            # A plain transition with nothing to check first: its conditional UPDATE is the
            # whole decision (lifecycle.apply), no read before it.
            outcome = _plain(session, None, req)
            return ActionResult(req.task_id, req.action, outcome.before, outcome.after,
                                outcome.version)
        # A checked plain transition locks its row at once; a handler keeps the order it
        # locks in (its own rows first, the task when it applies).
        task = session.get(Task, req.task_id) if req.action in HANDLERS else \
            lifecycle.lock(session, req.task_id)
        if task is None:
            raise NotFound("err.not_found", task_id=req.task_id)
        before = task.state
        for check in checks:
            check(session, task, req)
        handler = HANDLERS.get(req.action, _plain)
        outcome = handler(session, task, req)
        return ActionResult(req.task_id, req.action, before, outcome.after, outcome.version)

    try:
        result = once(db, event_key, work, record=intent)
    except Duplicate as dup:
        first = dup.record
        if first and (first.get("task_id"), first.get("action")) != (req.task_id, req.action):
            log.info("event id reused for another action", extra={
                "event_id": req.event_id, "actor": req.actor.name, "first": first,
                "task_id": req.task_id, "action": req.action})
            raise Conflict("err.event_id_reused", task_id=first.get("task_id"),
                           action=Term(f"action.{first.get('action')}")) from None
        with db.session() as session:
            task = session.get(Task, req.task_id)
            if task is None:
                raise NotFound("err.not_found", task_id=req.task_id) from None
            result = ActionResult(req.task_id, req.action, task.state, task.state,
                                  task.version, duplicate=True)
        log.info("duplicate delivery ignored", extra={"event_id": req.event_id,
                                                      "task_id": req.task_id})
        return result
    for callback in list(after_commit):
        try:
            callback(result)
        except Exception:  # noqa: BLE001 - a notification hiccup must not undo the action
            log.exception("after_commit callback failed")
    return result
