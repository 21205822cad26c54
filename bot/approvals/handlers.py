"""The approval actions: ask for approval of the current declaration, decide a step."""

from __future__ import annotations

from sqlmodel import Session

from bot.approvals import service as approvals
from bot.core.actions import ActionRequest, handles
from bot.core.errors import Conflict, Invalid
from bot.core.lifecycle import Outcome
from bot.declarations import autofill as declarations
from bot.declarations import redraft
from storage.models import Task


@handles("request_approval")
def request_approval(session: Session, task: Task, req: ActionRequest) -> Outcome:
    declaration, lines = declarations.current(session, task.id or 0)
    if declaration is None or not lines:
        raise Invalid("err.no_declaration", task_id=task.id)
    if req.version is not None and task.version != req.version and task.state == "drafting":
        raise Conflict("err.stale_card", task_id=task.id)
    if any(line.result for line in lines):  # fixed after a platform verdict: a new version,
        declaration = redraft.new_version(session, task, req.actor)  # so a new submission key
    return approvals.request(session, task, declaration, req.actor, event_id=req.event_id)


@handles("approve", "reject", "request_changes")
def decide(session: Session, task: Task, req: ActionRequest) -> Outcome:
    return approvals.decide(session, task, req.action, req.actor, comment=req.comment,
                            event_id=req.event_id, version=req.version)
