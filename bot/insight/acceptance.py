"""Before approval: an approver's ``approve`` is refused while the guards
(``bot.insight.guards``) have open error findings on the declaration, until a manager,
finance or an admin accepts them with a reason (``accept_risk``, audited); a rejection or a
request for changes ends the acceptance, and an edit of the price is a new finding. The
approval card's "price risks" section lists every finding: ✗ open, ↷ accepted, ⚠ warning.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from bot.approvals.service import (
    deciders,
    enqueue_approval_card,
    escalated_to,
    latest_round,
    round_steps,
)
from bot.core import actions, views
from bot.core.actions import ActionRequest
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid
from bot.core.i18n import Term, roles, t
from bot.core.lifecycle import Outcome, State
from bot.insight.guards import MAX_SHOWN, Finding, findings
from bot.insight.margin import Deal, deal
from cards.model import CardField
from storage.models import AuditEvent, Declaration, Task

log = logging.getLogger(__name__)


ACCEPT_ROLES = frozenset({"manager", "finance", "admin"})
CLEARS = ("reject", "request_changes")  # an approver sent it back: look again


def accepted(session: Session, task_id: int, version: int) -> set[str]:
    """Finding keys accepted on this declaration version (until a reject/request_changes).
    A key names the price judged, so an edit of that line is a new finding."""
    keys: set[str] = set()
    for event in session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action.in_(("accept_risk", *CLEARS)))
            .order_by(AuditEvent.id)):
        detail = event.detail or {}
        if event.action in CLEARS:
            keys.clear()
        elif detail.get("declaration") == version:
            keys.update(detail.get("keys", []))
    return keys


class RiskBlocked(Conflict):
    """``approve`` refused: open error findings, each in the reader's language."""

    def __init__(self, task_id: int, found: list[Finding]) -> None:
        super().__init__("deal.blocked", task_id=task_id)
        self.task_id, self.found = task_id, found

    def message(self, lang: str | None = None) -> str:
        items = [f"• {f.describe(lang)}" for f in self.found[:MAX_SHOWN]]
        if len(self.found) > MAX_SHOWN:
            items.append(t("deal.more", lang, n=len(self.found) - MAX_SHOWN))
        return t("deal.blocked", lang, task_id=self.task_id, n=len(self.found),
                 items="\n".join(items), roles=roles(ACCEPT_ROLES),
                 example=Term.of("example.accept_risk", task_id=self.task_id))


def open_errors(session: Session, task: Task) -> tuple[Deal | None, list[Finding]]:
    found = deal(session, task)
    if found is None:
        return None, []
    errors = [f for f in findings(session, found) if f.severity == "error"]
    skip = accepted(session, task.id or 0, found.declaration.version)
    return found, [f for f in errors if f.ack_key not in skip]


def _decides_now(session: Session, task: Task, actor: Actor) -> bool:
    """Whether this click would decide a current step: anyone else hears the approvals'
    own refusal (not your turn, your own request …), not the risks."""
    rnd = latest_round(session, task.id or 0)
    if rnd is None or rnd.state != "open" or actor.user_id is None \
            or actor.user_id in (rnd.requested_by, task.claimed_by):
        return False
    steps = round_steps(session, rnd)
    pending = [s for s in steps if s.state == "pending"]
    if not pending:
        return False
    seq = min(s.seq for s in pending)
    escalations = escalated_to(session, [s.id or 0 for s in steps])
    return any(actor.user_id in escalations.get(s.id or 0, set())
               or actor.user_id in {u.id for u in deciders(session, task, rnd, s)[0]}
               for s in pending if s.seq == seq)


def before_approve(session: Session, task: Task, req: ActionRequest) -> None:
    """Guard for ``approve``: open error findings refuse an approver's decision, listed
    with how to accept them."""
    if task.state != State.IN_APPROVAL or not _decides_now(session, task, req.actor):
        return  # the lifecycle or the approvals explain why this click decides nothing
    _, open_ = open_errors(session, task)
    if open_:
        raise RiskBlocked(task.id or 0, open_)


def accept_risk(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """``accept_risk``: a manager, finance or an admin accepts the open error findings of the
    current declaration with a reason; audited, and the approval card shows who and why."""
    if not req.actor.has_any(ACCEPT_ROLES):
        raise Forbidden("deal.accept_refused", mine=roles(req.actor.roles),
                        roles=roles(ACCEPT_ROLES))
    if not (req.comment or "").strip():
        raise Invalid("err.reason_required", example=Term.of("example.accept_risk",
                                                             task_id=task.id))
    found, open_ = open_errors(session, task)
    if found is None:
        raise Invalid("err.no_declaration", task_id=task.id)
    if not open_:
        raise Invalid("deal.nothing_to_accept", task_id=task.id)
    session.add(AuditEvent(
        task_id=task.id, actor=req.actor.name, action="accept_risk", event_id=req.event_id,
        detail={"declaration": found.declaration.version, "comment": req.comment,
                "keys": [f.ack_key for f in open_], "findings": [f.as_dict("en") for f in open_]}))
    session.flush()
    enqueue_approval_card(session, task, found.declaration.version)
    log.info("risk accepted", extra={"task_id": task.id, "actor": req.actor.name,
                                     "findings": len(open_)})
    return Outcome(task.id or 0, req.action, task.state, task.state, task.version, changed=False)


def acceptance_of(session: Session, task_id: int, version: int) -> AuditEvent | None:
    """The latest still-valid acceptance of this declaration version (for the card)."""
    found = None
    for event in session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action.in_(("accept_risk", *CLEARS)))
            .order_by(AuditEvent.id)):
        if event.action in CLEARS:
            found = None
        elif (event.detail or {}).get("declaration") == version:
            found = event
    return found


def card_fields(session: Session, task: Task, declaration: Declaration | None,
                lang: str) -> list[CardField]:
    """The approval card's "risks" section: ✗ open errors, ↷ accepted, ⚠ warnings."""
    found = deal(session, task, declaration)
    if found is None:
        return []
    listed = findings(session, found)
    skip = accepted(session, task.id or 0, found.declaration.version)
    if not listed:
        return [CardField(label=t("deal.card.risks", lang), value=t("deal.card.no_risks",
                                                                        lang), short=False)]
    lines = [f"{'⚠' if f.severity != 'error' else ('↷' if f.ack_key in skip else '✗')} "
             f"{f.describe(lang)}" for f in listed[:MAX_SHOWN]]
    if len(listed) > MAX_SHOWN:
        lines.append(t("deal.more", lang, n=len(listed) - MAX_SHOWN))
    event = acceptance_of(session, task.id or 0, found.declaration.version)
    if event is not None:
        lines.append(t("deal.card.accepted", lang, who=event.actor,
                       reason=(event.detail or {}).get("comment", "")))
    return [CardField(label=t("deal.card.risks", lang), value="\n".join(lines), short=False)]


views.section("approval", order=20)(card_fields)
actions.handles("accept_risk")(accept_risk)
