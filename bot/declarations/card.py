"""The ``declaration`` card builder: what the declarations feature knows about a declaration
(pre-check, costs, documents, what the last fill left out and changed, links), handed to the
layout in ``cards/declaration.py``."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from bot.core.errors import DomainError
from bot.core.i18n import t
from bot.core.templating import TemplateRefused
from bot.declarations import attach, autofill, compliance, exporters
from bot.declarations.draft_settings import get_draft_settings
from bot.declarations.links import link
from cards.builders import builder
from cards.declaration import DeclarationView
from cards.declaration import declaration_card as layout
from cards.model import Card
from storage.models import Campaign, Product, Task
from storage.queries import declaration_lines, latest_declaration

log = logging.getLogger(__name__)


def hints_link(task_id: int) -> str:
    return link(task_id, "edit") + "#hints"


@builder("declaration")
def declaration_card(session: Session, params: dict, lang: str) -> Card | None:
    """Totals, cost and margin, pre-check, documents, left-out SKUs and the first lines."""
    task = session.get(Task, params["task_id"])
    declaration = latest_declaration(session, params["task_id"])
    if task is None or declaration is None:
        return None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    ruleset, found = compliance.evaluate(session, task, declaration)
    errors = compliance.errors(found)
    lines = declaration_lines(session, declaration.id or 0)
    costs = dict(session.exec(select(Product.sku, Product.cost).where(
        Product.sku.in_([ln.sku for ln in lines]))).all()) if lines else {}
    status = (t("dcard.failed", lang, n=len(errors), platform=ruleset.platform, version=ruleset.version)
              if errors else t("dcard.passed", lang, platform=ruleset.platform, version=ruleset.version))
    try:
        summary = exporters.declaration_text(session, task.id or 0, lang, errors)
    except TemplateRefused:
        log.warning("declaration template refused", extra={"task_id": task.id})
        summary = ""
    try:
        docs = [d.title for d in exporters.context_for(session, task.id or 0)["documents"]]
    except DomainError:
        docs = []
    fill = autofill.last_fill(session, task.id or 0)
    if fill is not None and fill.get("declaration") != declaration.version:
        fill = None  # edited or replaced since: what that fill left out is no longer the story
    view = DeclarationView(
        task=task, title=campaign.title, declaration=declaration, lines=lines, costs=costs,
        status=status, errors=[v.describe(lang) for v in errors], warnings=len(found) - len(errors),
        summary=summary, documents=docs, attachable=attach.suggested_in(errors), fill=fill,
        links={"edit": link(task.id or 0, "edit"), "bundle": link(task.id or 0, "bundle"),
               "hints": hints_link(task.id or 0)},
        rows=get_draft_settings().card_lines)
    return layout(view, lang)
