"""The approval card's domain answers: the compliance pre-check and who holds each step.

The approvals feature computes them and hands them to the layout in ``cards/approval.py``;
the card module itself calls no domain service.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.approvals import policy
from bot.core import views
from bot.core.i18n import Term, t
from bot.core.views import builder
from bot.declarations import compliance
from cards.approval import PrecheckResult, approval_card
from cards.model import Card
from storage.models import ApprovalStep, Declaration, Task, User
from storage.models_approval import ApprovalRound

log = logging.getLogger(__name__)


def precheck_result(session: Session, task: Task, declaration: Declaration | None,
                    lang: str) -> PrecheckResult | None:
    """Pre-check findings for the approval card; None when there is nothing to check or the
    check itself fails (the card still shows everything else)."""
    if declaration is None:
        return None
    try:
        found = compliance.check(session, task, declaration)
        waived = compliance.waived(session, task.id or 0, declaration.version)
    except Exception:  # noqa: BLE001 - the card still shows everything else
        log.warning("pre-check unavailable for the approval card", exc_info=True,
                    extra={"task_id": task.id})
        return None
    marks = []
    for v in found:
        mark = "⚠" if v.severity != "error" else ("↷" if v.key in waived else "✗")
        marks.append((mark, v.describe(lang)))
    return PrecheckResult(marks)


@builder("approval")
def approval(session: Session, params: dict, lang: str) -> Card | None:
    task = session.get(Task, params["task_id"])
    rnd = session.get(ApprovalRound, params["round_id"]) if params.get("round_id") else None
    requester = rnd.requested_by if rnd else None
    claimant = task.claimed_by if task else None

    def who_decides(role: str, team_id: int | None) -> list[User]:
        """Who can decide a step of ``role``: never the requester or claimant."""
        return policy.eligible(session, role, team_id, requester, claimant)[0]

    def routed(step: ApprovalStep) -> str | None:
        """Why someone other than the role's holders decides (the requester is the only one)."""
        requested = requester or step.requested_by
        why = policy.eligible(session, step.role, task.team_id if task else None, requested,
                              claimant)[1]
        return None if why == "role" else t(f"appr.routed.{why}", lang,
                                            role=Term(f"role.{step.role}"))

    return approval_card(
        session, params, lang,
        precheck=lambda task, declaration: precheck_result(session, task, declaration, lang),
        people=who_decides, note=routed,
        sections=lambda task, declaration: views.sections("approval", session, task,
                                                          declaration, lang))
