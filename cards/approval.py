"""The approval card: everything an approver needs to decide without leaving the chat.

SKUs with list → promo price, discount, margin and promo stock against stock; why the policy
asked for each step and who holds it; pre-check results when the compliance feature offers
them; automatic decisions with their reason. Locked once decided, showing who and when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import Session, select

from bot.core.i18n import has, normalise, t
from bot.core.lifecycle import State
from bot.core.timefmt import local
from cards.builders import _platform_name, _user_name, button, console_link, discount
from cards.model import Card, CardField, Line
from storage.models import (
    ApprovalStep,
    Campaign,
    Declaration,
    DeclarationLine,
    Product,
    Task,
    User,
)
from storage.models_approval import ApprovalEscalation, ApprovalRound

log = logging.getLogger(__name__)
MAX_PRECHECK = 5



def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _precheck_text(found: PrecheckResult | None, lang: str) -> str | None:
    if found is None:
        return None
    if not found.marks:
        return t("card.precheck_ok", lang)
    lines = [f"{mark} {text}" for mark, text in found.marks[:MAX_PRECHECK]]
    if len(found.marks) > MAX_PRECHECK:
        lines.append(t("card.precheck_more", lang, n=len(found.marks) - MAX_PRECHECK))
    return "\n".join(lines)


def step_reason(reason: str | None, lang: str | None) -> str:
    """Why the policy asked for a step: the policy's own text (team data, shown as written),
    or a catalog key for the built-in defaults (``approval.reason.no_rule``)."""
    return t(reason, lang) if reason and has(reason) else (reason or "")


def _who(session: Session, ids: set[int] | list[int]) -> str:
    names = [u.display_name for u in session.exec(select(User).where(User.id.in_(list(ids))))]
    return "、".join(sorted(names)) or "—"


@dataclass(frozen=True)
class PrecheckResult:
    """The compliance pre-check as the approval card shows it: (mark, text) per finding,
    mark ✗ blocking, ↷ waived by an override, ⚠ warning."""

    marks: list[tuple[str, str]]


def approval_card(session: Session, params: dict, lang: str, *,
                  precheck: Callable[[Task, Declaration | None], PrecheckResult | None],
                  people: Callable[[str, int | None], list[User]],
                  note: Callable[[ApprovalStep], str | None] | None = None,
                  sections: Callable[[Task, Declaration | None], list[CardField]] | None = None,
                  ) -> Card | None:
    """The approval card from its rows, the pre-check result and who can decide each step
    (``people``; ``note`` says why, when that is not simply the role's holders), all handed
    in by the approvals feature; ``sections`` adds what other features contribute after the
    pre-check (margin after fees, risks, scenarios)."""
    task = session.get(Task, params["task_id"])
    if task is None:
        return None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    rnd = session.get(ApprovalRound, params["round_id"]) if params.get("round_id") else None
    version = rnd.declaration_version if rnd else params.get("declaration_version")
    if rnd is not None:
        steps = list(session.exec(select(ApprovalStep).where(ApprovalStep.id.in_(rnd.step_ids))
                                  .order_by(ApprovalStep.seq, ApprovalStep.id)))
    else:
        steps = list(session.exec(select(ApprovalStep).where(
            ApprovalStep.task_id == task.id, ApprovalStep.declaration_version == version)
            .order_by(ApprovalStep.seq, ApprovalStep.id)))
    declaration = session.exec(select(Declaration).where(
        Declaration.task_id == task.id, Declaration.version == version)).first()
    card = Card(kind="approval", color="orange", task_id=task.id, version=task.version,
                link=console_link(task.id or 0),
                title=t("card.approval_title", lang, title=f"#{task.id} {campaign.title}"))
    requester = rnd.requested_by if rnd else (steps[0].requested_by if steps else None)
    card.fields += [
        CardField(label=t("card.platform", lang), value=_platform_name(session, campaign.platform, lang)),
        CardField(label=t("card.requested_by", lang), value=_user_name(session, requester)),
        CardField(label=t("card.deadline", lang), value=local(task.deadline)),
    ]
    if rnd and rnd.facts:
        f = rnd.facts
        margin = Decimal(f["min_margin"]) if f.get("min_margin") else None
        text = t("card.facts", lang, discount=_pct(Decimal(f.get("max_discount", "0"))),
                 budget=f"{Decimal(f.get('budget', '0')):,.2f}", margin=_pct(margin))
        if f.get("new_brands"):
            text += "; " + t("card.new_brands", lang, v="、".join(f["new_brands"]))
        if f.get("new_categories"):
            text += "; " + t("card.new_categories", lang, v="、".join(f["new_categories"]))
        card.fields.append(CardField(label=t("card.policy", lang), value=text, short=False))
    precheck_text = _precheck_text(precheck(task, declaration), lang)
    if precheck_text:
        card.fields.append(CardField(label=t("card.precheck", lang), value=precheck_text,
                                     short=False))
    if sections is not None:
        card.fields += sections(task, declaration)
    if declaration:
        lines = list(session.exec(select(DeclarationLine).where(
            DeclarationLine.declaration_id == declaration.id).order_by(DeclarationLine.id)))
        products = {p.sku: p for p in session.exec(
            select(Product).where(Product.sku.in_([x.sku for x in lines])))}
        card.table_header = [t(f"card.col.{c}", lang) for c in
                             ("sku", "price", "discount", "margin", "stock_vs")]
        for line in lines:
            product = products.get(line.sku)
            margin = None
            if product and product.cost is not None and line.promo_price:
                margin = (line.promo_price - product.cost) / line.promo_price
            card.table.append(Line(cells=[
                line.sku, f"{line.list_price or '—'} → {line.promo_price or '—'}",
                discount(line.list_price, line.promo_price), _pct(margin),
                f"{line.promo_stock} / {product.stock if product else '—'}"]))
    escalations: dict[int, set[int]] = {}
    for row in session.exec(select(ApprovalEscalation).where(
            ApprovalEscalation.step_id.in_([s.id for s in steps]))):
        escalations.setdefault(row.step_id, set()).update(row.escalated_to)
    pending = [s for s in steps if s.state == "pending"]
    current_seq = min((s.seq for s in pending), default=None)
    for step in steps:
        role = t(f"role.{step.role}", lang)
        label = t("card.approval_step", lang, seq=step.seq, role=role)
        if step.mode == "any_of":
            label += f" ({t('card.any_of', lang)})"
        holders = people(step.role, task.team_id)
        who = "、".join(u.display_name for u in holders) or role
        if step.state == "pending" and step.seq == current_seq:
            value = t("card.step_waiting", lang, who=who, due=local(step.due_at, fmt="%m-%d %H:%M"))
            card.mentions += [u.name for u in holders if u.id not in (requester, task.claimed_by)]
        elif step.state == "pending":
            value = t("card.step_later", lang, who=who)
        elif step.decided_at:
            value = t("card.decided", lang, who=_user_name(session, step.decided_by),
                      when=local(step.decided_at, fmt="%m-%d %H:%M"),
                      decision=t(f"card.decision.{step.state}", lang))
            if step.comment:
                value += f": {step.comment}"
        else:
            value = t(f"card.decision.{step.state}", lang)
        routed = note(step) if note is not None and step.state == "pending" else None
        if routed:  # why someone other than the role's holders decides
            value += f" · {routed}"
        if step.id in escalations:
            value += " · " + t("card.step_escalated", lang, who=_who(session, escalations[step.id]))
        if step.reason:
            value += f" — {step_reason(step.reason, lang)}"
        card.fields.append(CardField(label=label, value=value, short=False))
        if step.id in escalations and step.state == "pending":
            card.mentions += [u.name for u in session.exec(
                select(User).where(User.id.in_(list(escalations[step.id]))))]
    for auto in (rnd.auto if rnd else []):
        key = f"card.auto.{auto['what']}.{'done' if auto.get('done') else 'blocked'}"
        reason = auto.get("reason", "")
        why = (auto.get("why") or {}).get(normalise(lang))
        card.fields.append(CardField(label=t("card.auto", lang),
                                     value=t(key, lang, reason=f"{why} · {reason}" if why
                                             else reason),
                                     short=False))
    card.mentions = list(dict.fromkeys(card.mentions))
    is_open = (rnd.state == "open") if rnd else bool(pending)
    if task.state == State.IN_APPROVAL and is_open and pending:
        card.subtitle = t("state.in_approval", lang)
        card.buttons = [button("approve", task, lang, "primary"),
                        button("reject", task, lang, "danger"),
                        button("request_changes", task, lang)]
    else:
        card.locked, card.mentions = True, []
        state = rnd.state if rnd else ("approved" if steps and all(
            s.state in ("approved", "skipped") for s in steps) else "rejected")
        card.subtitle = t(f"card.decision.{state}", lang) if state != "open" else \
            t(f"state.{task.state}", lang)
        card.color = {"approved": "green", "rejected": "red"}.get(state, "grey")
        last = max((s for s in steps if s.decided_at), key=lambda s: s.decided_at, default=None)
        if last is not None:
            card.footer = t("card.decided", lang, who=_user_name(session, last.decided_by),
                            when=local(last.decided_at, fmt="%m-%d %H:%M"),
                            decision=t(f"card.decision.{last.state}", lang))
    return card
