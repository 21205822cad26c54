"""Human gates: which steps may run without a person, per team and platform.

Governance asks that automation is opt-in and visible: every automatic decision records
the setting that allowed it, and the approval card shows it.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.approvals import policy
from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.errors import DomainError
from bot.core.i18n import LANGS
from storage.models import Campaign, Task, Team
from storage.models_approval import ApprovalRound
from storage.types import utcnow

log = logging.getLogger(__name__)
AUTO, PERSON = "auto", "person"


def setting(session: Session, task: Task, gate: str) -> tuple[str, str]:
    """``(auto|person, where it was set)``; the most specific team/platform entry wins."""
    team = session.get(Team, task.team_id)
    campaign = session.get(Campaign, task.campaign_id)
    team_code = team.code if team else "default"
    platform = campaign.platform if campaign else "*"
    gates = policy.current().gates
    for t_code in dict.fromkeys((team_code, "default")):
        for p_code in (platform, "*"):
            value = gates.get(t_code, {}).get(p_code, {}).get(gate)
            if value in (AUTO, PERSON):
                return value, f"gates.{t_code}.{p_code}.{gate}={value}"
    return PERSON, f"{gate}: no gate set, a person decides"


def note(rnd: ApprovalRound, what: str, done: bool, reason: str,
         why: DomainError | None = None) -> None:
    """Record an automatic decision on the round; ``why`` (what blocked it) is kept in every
    language, so the card shows it in its own."""
    rnd.auto = [*rnd.auto, {"what": what, "done": done, "reason": reason[:300],
                            **({"why": {lang: why.message(lang)[:300] for lang in LANGS}}
                               if why is not None else {}),
                            "at": utcnow().isoformat()}]


def after_final_approval(session: Session, task: Task, rnd: ApprovalRound) -> None:
    """Submit right away when the gate allows it and the submit checks pass."""
    from bot.core.actions import ActionRequest, before_action  # late: bot.core.actions imports us

    value, source = setting(session, task, "submit")
    if value != AUTO:
        return
    system = Actor.system("gates")
    request = ActionRequest(task_id=task.id or 0, action="submit", actor=system)
    try:
        for check in before_action.get("submit", []):
            check(session, task, request)
    except DomainError as exc:
        note(rnd, "submit", False, source, why=exc)
        session.add(rnd)
        log.info("auto-submit blocked", extra={"task_id": task.id, "reason": str(exc)})
        return
    lifecycle.apply(session, task.id or 0, "submit", system,
                    detail={"auto": True, "reason": source})
    note(rnd, "submit", True, source)
    session.add(rnd)
