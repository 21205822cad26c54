"""A platform rejection sends the task back to drafting, with the reasons on its card.

The rejected lines keep their verdicts so the claimant sees what to fix; asking for
approval again copies them into a new declaration version, so the next submission carries
a new idempotency key instead of replaying the rejected enrolment.
"""

from __future__ import annotations

from sqlmodel import Session

from bot.core import lifecycle, outbox
from bot.core.actors import Actor
from bot.core.i18n import t
from bot.core.lifecycle import Outcome
from storage.models import Declaration, DeclarationLine, Task, User
from storage.queries import declaration_lines, latest_declaration


def after_rejection(session: Session, task: Task, outcome: Outcome, actor: Actor) -> None:
    """Lifecycle listener: platform_reject → drafting, and tell the claimant why."""
    if outcome.action != "platform_reject":
        return
    lifecycle.apply(session, task.id or 0, "redraft", Actor.system("review"))
    declaration = latest_declaration(session, task.id or 0)
    if task.claimed_by is None or declaration is None:
        return
    rejected = [ln for ln in declaration_lines(session, declaration.id or 0)
                if ln.result == "rejected"]
    claimant = session.get(User, task.claimed_by)
    lang = claimant.lang if claimant else None
    reasons = "\n".join(f"• {ln.sku}: {ln.reason_text or ln.reason_code or '?'}"
                        for ln in rejected) or "—"
    outbox.enqueue_private(session, task.claimed_by,
                           t("redraft.notice", lang, task_id=task.id, reasons=reasons),
                           key=f"redraft:{task.id}:v{declaration.version}")


def new_version(session: Session, task: Task, actor: Actor) -> Declaration:
    """Copy the current lines (without verdicts) into the next declaration version."""
    previous = latest_declaration(session, task.id or 0)
    assert previous is not None
    declaration = Declaration(task_id=task.id or 0, version=previous.version + 1,
                              note=previous.note, documents=list(previous.documents or []),
                              created_by=actor.user_id)
    session.add(declaration)
    session.flush()
    for line in declaration_lines(session, previous.id or 0):
        session.add(DeclarationLine(declaration_id=declaration.id or 0, sku=line.sku,
                                    list_price=line.list_price, promo_price=line.promo_price,
                                    promo_stock=line.promo_stock))
    session.flush()
    return declaration


lifecycle.on_transition(after_rejection)  # always on: wherever a rejection is applied
