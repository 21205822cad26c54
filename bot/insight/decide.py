"""The recommendation and the alerts where people see them: the notice card's "建议" field and
its **explain** button, the ``explain`` and ``mute_alert`` actions, and the log of what was
recommended when a team decided (a task leaving ``new``) for the back-test's "logged" rate.

Registered on import (``bot.wiring`` imports this module): the task card decoration, the
action handlers, the lifecycle listener and the click answers of the router live here so
that the core, the watch feature and the router name no part of the decisions feature.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from bot.core import lifecycle
from bot.core.actions import ActionRequest, handles
from bot.core.actors import Actor
from bot.core.errors import Forbidden, NotFound
from bot.core.i18n import Term, roles
from bot.core.lifecycle import Outcome
from bot.insight import decision_log
from bot.insight.recommend import recommend
from bot.watch import cards as watch_cards
from cards import insight as layout
from cards.model import Card
from storage.models import AuditEvent, ChatMessage, Task
from storage.models_results import AlertLog
from storage.types import utcnow

log = logging.getLogger(__name__)
MUTE_ROLES = frozenset({"ops", "market", "manager", "admin"})


def decorate(session: Session, task: Task, card: Card, lang: str) -> None:
    """While a notice waits for a decision (``new``), its card shows the recommendation and
    an explain button."""
    if task.state != "new" or card.locked:
        return
    rec = recommend(session, task).as_dict(lang)
    card.fields.append(layout.recommendation_field(rec, lang))
    card.buttons.append(layout.explain_button(task, lang))


def explanation(session: Session, task_id: int, lang: str) -> str:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound("err.not_found", task_id=task_id)
    return layout.explain_text(recommend(session, task).as_dict(lang), lang)


@handles("explain")
def explain(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """A read: changes nothing (the click's answer is the breakdown, privately)."""
    return Outcome(task.id or 0, req.action, task.state, task.state, task.version,
                   changed=False)


@handles("mute_alert")
def mute(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """Silence an alert's subject (the button's third slot names the alert); audited."""
    row = session.get(AlertLog, req.version or 0)
    if row is None or row.task_id != task.id:
        raise NotFound("alert.not_found", task_id=task.id)
    if not req.actor.has_any(MUTE_ROLES) and req.actor.user_id != task.claimed_by:
        raise Forbidden("err.forbidden_role", roles=roles(req.actor.roles),
                        action=Term("action.mute_alert"),
                        allowed=roles((*sorted(MUTE_ROLES), "claimant")))
    now = utcnow()
    for same in session.exec(select(AlertLog).where(AlertLog.subject == row.subject,
                                                    AlertLog.muted_at.is_(None))):
        same.muted_by, same.muted_at = req.actor.name, now
        session.add(same)
    session.add(AuditEvent(task_id=task.id, actor=req.actor.name, action="mute_alert",
                           event_id=req.event_id,
                           detail={"alert": row.id, "kind": row.kind, "subject": row.subject,
                                   "comment": req.comment}))
    session.flush()
    from bot.core import outbox

    for msg in session.exec(select(ChatMessage).where(ChatMessage.card_key == f"alert:{row.id}")):
        outbox.enqueue_card(session, msg.chat, msg.channel_id, f"alert:{row.id}",
                            "insight_alert", {"alert_id": row.id},
                            key=f"alert:{row.id}:muted:{msg.chat}:{msg.channel_id}",
                            task_id=task.id)
    log.info("alert muted", extra={"alert": row.id, "subject": row.subject,
                                   "actor": req.actor.name})
    return Outcome(task.id or 0, req.action, task.state, task.state, task.version,
                   changed=False)


def log_decision(session: Session, task: Task, outcome: Outcome, actor: Actor) -> None:
    """When a task leaves ``new`` (claimed, skipped …), keep what was recommended then:
    noted here, computed and stored just after the commit (``bot.insight.decision_log``)."""
    if outcome.before != "new" or outcome.after == "new" or not outcome.changed:
        return
    decision_log.note(session, task.id or 0, outcome.action)


def install_cards_and_listeners() -> None:
    if decorate not in watch_cards.decorations:
        watch_cards.decorations.append(decorate)
    lifecycle.on_transition(log_decision)


install_cards_and_listeners()
