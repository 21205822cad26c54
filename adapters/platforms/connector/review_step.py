"""A platform's own maker/checker step on PromoPilot's cards.

Some marketplaces check a promotion once more after PromoPilot submits it: on JD the
shop's own checker (the main account, or a sub-account with the right) approves it in the
back office (促销审核) before it takes effect. The connector records where that step
stands in its enrolment ledger (``raw["checker"]``: pending, passed, rejected). This module
shows it: the approval card says the step will come (so approvers know theirs is not the
last word), and the task card says it is waiting for the shop's checker, passed or refused.
The connectors plugin says which platforms have such a step (``configure``).
"""

from __future__ import annotations

from sqlmodel import Session, select

from adapters.platforms.connector.errors import platform_term
from bot.core import views
from bot.core.i18n import t
from bot.submissions.runs import run_for
from bot.watch import cards as task_cards
from cards.model import Card, CardField
from storage.models import Campaign, Declaration, Task
from storage.models_connectors import ConnectorEnrolment

_platforms: dict[str, str] = {}  # platform → the connector whose enrolments carry the step
AFTER_SUBMIT = ("submitting", "submitted", "in_review", "accepted", "platform_rejected",
                "running", "finished")


def configure(platforms: dict[str, str]) -> None:
    _platforms.clear()
    _platforms.update(platforms)


def state(session: Session, task: Task) -> tuple[str, dict | None] | None:
    """(platform, the step's state or None before submission); None when no such step."""
    campaign = session.get(Campaign, task.campaign_id)
    if campaign is None or campaign.platform not in _platforms:
        return None
    run = run_for(session, task.id or 0)
    row = session.exec(select(ConnectorEnrolment).where(
        ConnectorEnrolment.connector == _platforms[campaign.platform],
        ConnectorEnrolment.idempotency_key == run.idempotency_key)).first() \
        if run is not None else None
    found = (row.raw or {}).get("checker") if row is not None else None
    return campaign.platform, found if isinstance(found, dict) else None


def field(platform: str, step: dict | None, lang: str) -> CardField:
    label = t("conn.checker.label", lang, platform=platform_term(platform))
    if step is None or step.get("state") not in ("pending", "passed", "rejected"):
        return CardField(label=label, value=t("conn.checker.upcoming", lang), short=False)
    return CardField(label=label, short=False, value=t(
        f"conn.checker.{step['state']}", lang, reference=step.get("reference") or "—"))


def approval_fields(session: Session, task: Task, declaration: Declaration | None,
                    lang: str) -> list[CardField]:
    found = state(session, task)
    return [] if found is None else [field(found[0], found[1], lang)]


def decorate_task_card(session: Session, task: Task, card: Card, lang: str) -> None:
    if task.state not in AFTER_SUBMIT:
        return
    found = state(session, task)
    if found is not None and found[1] is not None:  # once submitted: where the step stands
        card.fields.append(field(found[0], found[1], lang))


views.section("approval", order=40)(approval_fields)
if decorate_task_card not in task_cards.decorations:
    task_cards.decorations.append(decorate_task_card)
