"""The declaration card: a summary that fits every chat however large the declaration is.

Totals (lines, promo value, cost, margin at the promo price), SKUs below cost, the pre-check
result, the documents, what the last fill left out and why, what a refill changed, and the
first few lines with cost and margin; the full list is one click away (console page, Excel).
The declarations feature hands in everything the card shows (``DeclarationView``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bot.core.i18n import t
from cards.builders import discount
from cards.callback import CallbackData
from cards.model import Button, Card, CardField, Line
from storage.models import Declaration, DeclarationLine, Task

MAX_ISSUES = 8  # errors spelled out on the card; the hints page lists every one
MAX_GROUPS = 6  # reasons for left-out SKUs named on the card
MAX_SKUS = 3  # SKUs named per reason / per kind of change on the card
EDITABLE = {"claimed", "drafting"}


@dataclass
class DeclarationView:
    """What the declarations feature computed for the card."""

    task: Task
    title: str
    declaration: Declaration
    lines: list[DeclarationLine]
    costs: dict[str, Decimal | None]
    status: str  # the pre-check verdict, rules version included
    errors: list[str]
    warnings: int
    summary: str = ""
    documents: list[str] = field(default_factory=list)
    attachable: list[int] = field(default_factory=list)  # pool documents the pre-check suggests
    fill: dict | None = None  # the ``autofill`` event of this version (left out, changes)
    links: dict[str, str] = field(default_factory=dict)  # edit, bundle, hints
    rows: int = 10


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def margin(price: Decimal | None, cost: Decimal | None) -> Decimal | None:
    return None if cost is None or not price else (price - cost) / price


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _skus(skus: list[str], n: int, lang: str) -> str:
    shown = "、".join(skus[:MAX_SKUS]) if lang != "en" else ", ".join(skus[:MAX_SKUS])
    return shown + (t("dcard.and_more", lang, n=n - len(skus[:MAX_SKUS]))
                    if n > len(skus[:MAX_SKUS]) else "")


def _when(value: object) -> object:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def left_out_lines(fill: dict, lang: str, groups: int = MAX_GROUPS,
                   skus: int = MAX_SKUS) -> list[str]:
    """One sentence per reason: how many SKUs, which ones, why."""
    out = []
    for group in (fill.get("dropped") or [])[:groups]:
        params = {k: _when(v) for k, v in (group.get("params") or {}).items()}
        if "kind" in params:  # a document kind: its name in the reader's language
            label = t(f"doc.{params['kind']}", lang)
            params["kind"] = params["kind"] if label == f"doc.{params['kind']}" else label
        if "brand" in params and not params["brand"]:
            params["brand"] = t("drop.unbranded", lang)
        names = list(group.get("skus") or [])[:skus]
        out.append("• " + t(f"drop.{group['reason']}", lang, n=group["n"],
                            skus=_skus(names, group["n"], lang), **params))
    hidden = len(fill.get("dropped") or []) - groups
    if hidden > 0:
        out.append(t("cv.more", lang, n=hidden))
    return out


def change_text(diff: dict, lang: str) -> str:
    """What a refill changed: added, removed, repriced, restocked, documents."""
    parts = []
    for kind in ("added", "removed", "repriced", "restocked"):
        n = diff.get(f"{kind}_n") or 0
        if n:
            parts.append(t(f"draft.{kind}", lang, n=n, skus=_skus(diff.get(kind) or [], n, lang)))
    if diff.get("docs_added"):
        parts.append(t("draft.docs_added", lang, docs="、".join(f"#{d}" for d in diff["docs_added"])))
    if diff.get("docs_removed"):
        parts.append(t("draft.docs_removed", lang,
                       docs="、".join(f"#{d}" for d in diff["docs_removed"])))
    if not parts:
        return t("draft.unchanged", lang)
    return ("；" if lang != "en" else "; ").join(parts)


def declaration_card(view: DeclarationView, lang: str) -> Card:
    task, lines = view.task, view.lines
    card = Card(kind="task", title=t("dcard.title", lang, task_id=task.id,
                                     version=view.declaration.version, title=view.title),
                color="red" if view.errors else ("orange" if view.warnings else "green"),
                task_id=task.id, version=task.version, link=view.links.get("edit"))
    status = view.status
    if view.warnings:
        status += "; " + t("dcard.warnings", lang, n=view.warnings)
    card.fields.append(CardField(label=t("dcard.precheck", lang), value=status, short=False))
    value = sum(((ln.promo_price or Decimal(0)) * ln.promo_stock for ln in lines), Decimal(0))
    cost = sum(((view.costs.get(ln.sku) or Decimal(0)) * ln.promo_stock for ln in lines
                if view.costs.get(ln.sku) is not None), Decimal(0))
    costed = sum(((ln.promo_price or Decimal(0)) * ln.promo_stock for ln in lines
                  if view.costs.get(ln.sku) is not None), Decimal(0))
    card.fields.append(CardField(label=t("dcard.totals_label", lang), short=False, value=t(
        "dcard.totals", lang, n=len(lines), value=money(value), cost=money(cost),
        margin=_pct((costed - cost) / costed if costed else None))))
    below = [ln.sku for ln in lines if ln.promo_price is not None
             and view.costs.get(ln.sku) is not None and ln.promo_price < view.costs[ln.sku]]
    if below:
        card.fields.append(CardField(label=t("dcard.below_cost_label", lang), short=False,
                                     value=t("dcard.below_cost", lang, n=len(below),
                                             skus=_skus(below, len(below), lang))))
    if view.documents:
        card.fields.append(CardField(label=t("dcard.documents", lang),
                                     value="、".join(view.documents), short=False))
    fill = view.fill or {}
    if fill.get("left_out"):
        card.fields.append(CardField(
            label=t("dcard.left_out", lang, n=fill["left_out"], pool=fill.get("pool", "?"),
                    taken=fill.get("taken", len(lines))),
            value="\n".join(left_out_lines(fill, lang)), short=False))
    if fill.get("previous") is not None and fill.get("diff") is not None:
        card.fields.append(CardField(label=t("dcard.refilled", lang, before=fill["previous"]),
                                     value=change_text(fill["diff"], lang), short=False))
    shown = [f"• {text}" for text in view.errors[:MAX_ISSUES]]
    if len(view.errors) > MAX_ISSUES:
        shown.append(t("cv.more", lang, n=len(view.errors) - MAX_ISSUES))
    card.text = "\n".join([view.summary, *shown]).strip()
    card.table_header = [t(f"card.col.{c}", lang)
                         for c in ("sku", "list", "promo", "discount", "cost", "margin", "stock")]
    for ln in lines[:view.rows]:
        line_cost = view.costs.get(ln.sku)
        rate = margin(ln.promo_price, line_cost)
        flag = "⚠" if rate is not None and rate < 0 else ""
        card.table.append(Line(cells=[
            ln.sku, str(ln.list_price or "—"), str(ln.promo_price or "—"),
            discount(ln.list_price, ln.promo_price),
            str(line_cost) if line_cost is not None else "—", flag + _pct(rate),
            str(ln.promo_stock)]))
    if len(lines) > view.rows:
        card.fields.append(CardField(label=t("dcard.more_lines_label", lang), short=False,
                                     value=t("dcard.more_lines", lang, shown=view.rows,
                                             total=len(lines))))
    card.buttons = [Button(label=t("dcard.edit", lang), action="open", url=view.links.get("edit")),
                    Button(label=t("dcard.excel", lang), action="open",
                           url=view.links.get("bundle"))]
    if view.warnings or len(view.errors) > MAX_ISSUES:
        card.buttons.append(Button(label=t("dcard.hints_button", lang,
                                           n=view.warnings + len(view.errors)),
                                   action="open", url=view.links.get("hints")))
    if view.attachable and task.state in EDITABLE:
        card.buttons.append(Button(
            label=t("dcard.attach_button", lang, docs="、".join(f"#{d}" for d in view.attachable)),
            action="attach_document", style="primary",
            value=CallbackData("attach_document", task.id or 0, task.version).pack()))
    card.footer = t("dcard.edit_hint", lang, task_id=task.id)
    return card
