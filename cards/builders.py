"""Card builders: a projection of database rows into the card model, one builder per use.

Builders are looked up by name (``BUILDERS``) so the outbox can store ``(builder, params)``
and build the card fresh at delivery time: a card always shows the row as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlmodel import Session, select

from bot.i18n import register, t
from bot.lifecycle import CLOSED_STATES, State
from bot.settings import get_settings
from bot.timefmt import local
from cards.callback import CallbackData
from cards.model import Button, Card, CardField, Color, Line
from storage.models import (
    AuditEvent,
    Campaign,
    Declaration,
    DeclarationLine,
    Platform,
    Task,
    User,
)

Builder = Callable[[Session, dict, str], Card | None]
BUILDERS: dict[str, Builder] = {}

register(
    {
        "card.platform": {"zh-CN": "平台", "en": "Platform"},
        "card.type": {"zh-CN": "活动类型", "en": "Type"},
        "card.deadline": {"zh-CN": "报名截止", "en": "Registration closes"},
        "card.deadline_unclear": {
            "zh-CN": "截止时间不明确,请核实",
            "en": "Deadline unclear, please check",
        },
        "card.registration": {"zh-CN": "报名时间", "en": "Registration"},
        "card.event": {"zh-CN": "活动时间", "en": "Event"},
        "card.state": {"zh-CN": "状态", "en": "State"},
        "card.claimant": {"zh-CN": "负责人", "en": "Owner"},
        "card.requirements": {"zh-CN": "报名要求", "en": "Requirements"},
        "card.declaration": {"zh-CN": "申报单", "en": "Declaration"},
        "card.lines": {"zh-CN": "{n} 个 SKU(第 {v} 版)", "en": "{n} SKUs (version {v})"},
        "card.last": {"zh-CN": "最近:{who} {what} · {when}", "en": "Last: {who} {what} · {when}"},
        "card.skip_reason": {"zh-CN": "放弃原因", "en": "Skip reason"},
        "card.approval_title": {"zh-CN": "审批:{title}", "en": "Approval: {title}"},
        "card.approval_step": {"zh-CN": "审批环节", "en": "Step"},
        "card.requested_by": {"zh-CN": "申请人", "en": "Requested by"},
        "card.decided": {
            "zh-CN": "{who} 于 {when} {decision}",
            "en": "{decision} by {who} at {when}",
        },
        "card.decision.approved": {"zh-CN": "已批准", "en": "Approved"},
        "card.decision.rejected": {"zh-CN": "已驳回", "en": "Rejected"},
        "card.decision.changes_requested": {"zh-CN": "要求修改", "en": "Changes requested"},
        "card.col.sku": {"zh-CN": "SKU", "en": "SKU"},
        "card.col.list": {"zh-CN": "标价", "en": "List"},
        "card.col.promo": {"zh-CN": "活动价", "en": "Promo"},
        "card.col.discount": {"zh-CN": "折扣", "en": "Off"},
        "card.col.stock": {"zh-CN": "活动库存", "en": "Promo stock"},
        "card.col.result": {"zh-CN": "结果", "en": "Result"},
        "card.result.accepted": {"zh-CN": "通过", "en": "accepted"},
        "card.result.rejected": {"zh-CN": "驳回", "en": "rejected"},
        "card.error": {"zh-CN": "最近错误", "en": "Last error"},
        "req.min_discount": {"zh-CN": "最低折扣 {v}", "en": "min. discount {v}"},
        "req.min_stock": {"zh-CN": "最低库存 {v}", "en": "min. stock {v}"},
        "req.image_size": {"zh-CN": "主图 {v}", "en": "image {v}"},
        "req.price_rule": {"zh-CN": "价格:{v}", "en": "price: {v}"},
        "req.documents": {"zh-CN": "资质:{v}", "en": "documents: {v}"},
        "req.categories": {"zh-CN": "类目:{v}", "en": "categories: {v}"},
    }
)

STATE_COLOR: dict[str, Color] = {
    "new": "blue", "claimed": "blue", "drafting": "purple", "in_approval": "orange",
    "approved": "green", "submitting": "orange", "submitted": "orange", "in_review": "orange",
    "accepted": "green", "running": "green", "finished": "grey", "platform_rejected": "red",
    "skipped": "grey", "expired": "grey",
}
BUTTONS_BY_STATE: dict[str, list[tuple[str, str]]] = {
    "new": [("claim", "primary"), ("skip", "default")],
    "claimed": [("draft", "primary"), ("release", "default"), ("skip", "default")],
    "drafting": [("request_approval", "primary"), ("draft", "default"), ("skip", "default")],
    "approved": [("submit", "primary")],
    "platform_rejected": [("draft", "primary"), ("skip", "default")],
}
NEEDS_INPUT = {"skip", "reject", "request_changes"}
SYSTEM_ACTORS = {"watcher", "system", "submitter", "review", "reminders"}


def builder(name: str) -> Callable[[Builder], Builder]:
    def register_builder(fn: Builder) -> Builder:
        BUILDERS[name] = fn
        return fn

    return register_builder


def button(action: str, task: Task, lang: str, style: str = "default") -> Button:
    return Button(
        label=t(f"action.{action}", lang),
        action=action,
        value=CallbackData(action, task.id or 0, task.version).pack(),
        style=style,  # type: ignore[arg-type]
        needs_input=action in NEEDS_INPUT,
    )


def console_link(task_id: int) -> str:
    return f"{get_settings().base_url}/console?task={task_id}"


def requirements_text(req: dict, lang: str) -> str:
    parts = []
    if req.get("min_discount") is not None:
        parts.append(t("req.min_discount", lang, v=f"{Decimal(str(req['min_discount'])):.0%}"))
    for key in ("min_stock", "image_size", "price_rule"):
        if req.get(key):
            parts.append(t(f"req.{key}", lang, v=req[key]))
    if req.get("required_documents"):
        parts.append(t("req.documents", lang, v="、".join(map(str, req["required_documents"]))))
    if req.get("categories"):
        parts.append(t("req.categories", lang, v="、".join(map(str, req["categories"]))))
    return ";".join(parts) if lang != "en" else "; ".join(parts)


def discount(list_price: Decimal | None, promo: Decimal | None) -> str:
    if not list_price or promo is None:
        return "—"
    return f"{(1 - promo / list_price):.0%}"


def latest_declaration(session: Session, task_id: int) -> Declaration | None:
    return session.exec(
        select(Declaration).where(Declaration.task_id == task_id)
        .order_by(Declaration.version.desc()).limit(1)
    ).first()


def declaration_lines(session: Session, declaration_id: int) -> list[DeclarationLine]:
    return list(session.exec(
        select(DeclarationLine).where(DeclarationLine.declaration_id == declaration_id)
        .order_by(DeclarationLine.id)
    ))


def _user_name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return user.display_name if user else "—"


def _platform_name(session: Session, code: str) -> str:
    platform = session.get(Platform, code)
    return platform.name if platform else code


@builder("task")
def task_card(session: Session, params: dict, lang: str) -> Card | None:
    """The one card a task has in its channel; updated in place through the lifecycle."""
    task = session.get(Task, params["task_id"])
    if task is None:
        return None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    state_label = t(f"state.{task.state}", lang)
    deadline = (
        local(task.deadline) if task.deadline else t("card.deadline_unclear", lang)
    )
    fields = [
        CardField(label=t("card.platform", lang), value=_platform_name(session, campaign.platform)),
        CardField(label=t("card.state", lang), value=state_label),
        CardField(label=t("card.deadline", lang), value=deadline),
        CardField(label=t("card.event", lang),
                  value=f"{local(campaign.event_start)} ~ {local(campaign.event_end)}"),
    ]
    if campaign.type:
        fields.append(CardField(label=t("card.type", lang), value=campaign.type))
    if task.claimed_by:
        fields.append(CardField(label=t("card.claimant", lang),
                                value=_user_name(session, task.claimed_by)))
    req = requirements_text(campaign.requirements or {}, lang)
    if req:
        fields.append(CardField(label=t("card.requirements", lang), value=req, short=False))
    if task.skip_reason and task.state == State.SKIPPED:
        fields.append(CardField(label=t("card.skip_reason", lang), value=task.skip_reason,
                                short=False))
    if task.last_error and task.state not in CLOSED_STATES:
        fields.append(CardField(label=t("card.error", lang), value=task.last_error, short=False))

    card = Card(
        kind="result" if task.state in {"accepted", "platform_rejected", "running",
                                        "finished"} else ("notice" if task.state == "new"
                                                          else "task"),
        title=f"#{task.id} [{_platform_name(session, campaign.platform)}] {campaign.title}",
        color=STATE_COLOR.get(task.state, "blue"),
        subtitle=state_label,
        fields=fields,
        task_id=task.id,
        version=task.version,
        link=console_link(task.id or 0),
        locked=task.state in CLOSED_STATES,
    )
    declaration = latest_declaration(session, task.id or 0)
    if declaration:
        lines = declaration_lines(session, declaration.id or 0)
        card.fields.append(CardField(label=t("card.declaration", lang),
                                     value=t("card.lines", lang, n=len(lines),
                                             v=declaration.version)))
        show_result = any(line.result for line in lines)  # also while fixing a rejection
        card.table_header = [t(f"card.col.{c}", lang) for c in
                             ("sku", "list", "promo", "discount", "stock")]
        if show_result:
            card.table_header.append(t("card.col.result", lang))
        for line in lines:
            cells = [line.sku, str(line.list_price or "—"), str(line.promo_price or "—"),
                     discount(line.list_price, line.promo_price), str(line.promo_stock)]
            if show_result:
                verdict = t(f"card.result.{line.result}", lang) if line.result else "—"
                if line.reason_text:
                    verdict += f": {line.reason_text}"
                cells.append(verdict)
            card.table.append(Line(cells=cells))
    last = session.exec(
        select(AuditEvent).where(AuditEvent.task_id == task.id)
        .order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    if last:
        who = last.actor
        user = session.exec(select(User).where(User.name == last.actor)).first()
        if user:
            who = user.display_name
        elif who in SYSTEM_ACTORS:
            who = "PromoPilot"
        card.footer = t("card.last", lang, who=who, what=t(f"action.{last.action}", lang),
                        when=local(last.created_at, fmt="%m-%d %H:%M"))
    for action, style in BUTTONS_BY_STATE.get(task.state, []):
        card.buttons.append(button(action, task, lang, style))
    return card


# The "approval" builder lives in cards/approval.py (approvals feature).
