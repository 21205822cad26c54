"""Card builders: a projection of database rows into the card model, one builder per use.

Builders are looked up by name (``BUILDERS``) so the outbox can store ``(builder, params)``
and build the card fresh at delivery time: a card always shows the row as it is now.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlmodel import Session, select

from bot.core.i18n import platform_name, t
from bot.core.lifecycle import CLOSED_STATES, State
from bot.core.platforms import PLATFORM_NAMES
from bot.core.settings import get_settings
from bot.core.timefmt import local
from bot.core.views import BUILDERS, Builder, builder  # noqa: F401  (re-exported)
from cards import ops as _ops  # noqa: F401  (registers the ops-channel cards)
from cards.callback import CallbackData
from cards.model import Button, Card, CardField, Color, Line
from storage.models import (
    AuditEvent,
    Campaign,
    Platform,
    Task,
    User,
)
from storage.queries import (  # noqa: F401
    declaration_lines,
    last_event,
    latest_declaration,
    user_name,
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
MAX_TABLE_LINES = 15  # declaration lines on the task card; the console and Excel have them all
NEEDS_INPUT = {"skip", "reject", "request_changes"}
SYSTEM_ACTORS = {"watcher", "system", "submitter", "review", "reminders"}


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


UNREADABLE = "_unreadable"  # requirements ingestion could not read (bot/watch/validate.py)
REQ_LABELS = {"min_discount": "min_discount", "min_stock": "min_stock",
              "image_size": "image_size", "price_rule": "price_rule",
              "required_documents": "documents", "categories": "categories"}


def shown_text(value: object, limit: int = 200) -> str:
    """A stored value as printable text, whatever it is (a card never raises on data)."""
    if isinstance(value, list | tuple):
        text = "、".join(shown_text(v, limit) for v in value)
    else:
        text = "" if value is None else str(value)
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fraction(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() and 0 <= parsed < 1 else None


def requirements_text(req: dict, lang: str) -> str:
    """The notice's requirements in words. A value that cannot be read is shown as the
    text it is, flagged (⚠ … unreadable), never raised on."""
    if not isinstance(req, dict):
        return t("req.unreadable", lang, what=shown_text(req))
    parts = []
    flagged = dict(req[UNREADABLE]) if isinstance(req.get(UNREADABLE), dict) else {}
    if req.get("min_discount") is not None:
        found = _fraction(req["min_discount"])
        if found is None:
            flagged.setdefault("min_discount", req["min_discount"])
        else:
            parts.append(t("req.min_discount", lang, v=f"{found:.0%}"))
    for key in ("min_stock", "image_size", "price_rule"):
        if req.get(key):
            parts.append(t(f"req.{key}", lang, v=shown_text(req[key])))
    if req.get("required_documents"):
        parts.append(t("req.documents", lang, v=shown_text(req["required_documents"])))
    if req.get("categories"):
        parts.append(t("req.categories", lang, v=shown_text(req["categories"])))
    for key, raw in flagged.items():
        what = (t(f"req.{REQ_LABELS[key]}", lang, v=shown_text(raw)) if key in REQ_LABELS
                else f"{shown_text(key, 60)}: {shown_text(raw)}")
        parts.append(t("req.unreadable", lang, what=what))
    return ";".join(parts) if lang != "en" else "; ".join(parts)


def when(dt: datetime | None, fmt: str | None = None) -> str:
    """``local`` for a stored time; one the team's zone cannot show is shown as stored,
    flagged, instead of failing the card."""
    try:
        return local(dt, fmt=fmt) if fmt else local(dt)
    except (OverflowError, ValueError):
        return f"⚠ {shown_text(dt.isoformat() if dt is not None else None, 40)}"


def discount(list_price: Decimal | None, promo: Decimal | None) -> str:
    if not list_price or promo is None:
        return "—"
    return f"{(1 - promo / list_price):.0%}"


_user_name = user_name


def _platform_name(session: Session, code: str, lang: str | None) -> str:
    if code in PLATFORM_NAMES:  # no read for the marketplaces the catalog names
        return platform_name(code, lang)
    platform = session.get(Platform, code)
    return platform_name(code, lang, platform.name if platform else None)


REASON_SHOWN = 500  # characters of a rejection reason on the card; the console has it all


def _returned_with(session: Session, task: Task) -> tuple[AuditEvent, str] | None:
    """The approval rejection (or request for changes) that sent the task back to drafting,
    when nothing was asked for since; with the decider's name."""
    event = session.exec(
        select(AuditEvent).where(AuditEvent.task_id == task.id, AuditEvent.action.in_(
            ("reject", "request_changes", "request_approval")))
        .order_by(AuditEvent.id.desc()).limit(1)).first()
    if event is None or event.action == "request_approval" \
            or not (event.detail or {}).get("comment"):
        return None
    user = session.exec(select(User).where(User.name == event.actor)).first()
    return event, user.display_name if user else event.actor


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
        when(task.deadline) if task.deadline else t("card.deadline_unclear", lang)
    )
    fields = [
        CardField(label=t("card.platform", lang), value=_platform_name(session, campaign.platform, lang)),
        CardField(label=t("card.state", lang), value=state_label),
        CardField(label=t("card.deadline", lang), value=deadline),
        CardField(label=t("card.event", lang),
                  value=f"{when(campaign.event_start)} ~ {when(campaign.event_end)}"),
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
        title=f"#{task.id} [{_platform_name(session, campaign.platform, lang)}] {campaign.title}",
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
        if len(lines) > MAX_TABLE_LINES:  # a summary, however large: rejected lines first
            shown = sorted(lines, key=lambda ln: ln.result != "rejected")[:MAX_TABLE_LINES]
            card.fields.append(CardField(label=t("dcard.more_lines_label", lang), short=False,
                                         value=t("card.more_lines", lang, shown=len(shown),
                                                 total=len(lines))))
            lines = shown
        for line in lines:
            cells = [line.sku, str(line.list_price or "—"), str(line.promo_price or "—"),
                     discount(line.list_price, line.promo_price), str(line.promo_stock)]
            if show_result:
                verdict = t(f"card.result.{line.result}", lang) if line.result else "—"
                if line.reason_text:
                    verdict += f": {line.reason_text}"
                cells.append(verdict)
            card.table.append(Line(cells=cells))
    last = last_event(session, task.id or 0)
    if last:
        who = last.actor
        claimant = session.get(User, task.claimed_by) if task.claimed_by else None
        user = claimant if claimant is not None and claimant.name == last.actor else \
            session.exec(select(User).where(User.name == last.actor)).first()  # not held
        if user:
            who = user.display_name
        elif who in SYSTEM_ACTORS:
            who = "PromoPilot"
        card.footer = t("card.last", lang, who=who, what=t(f"action.{last.action}", lang),
                        when=when(last.created_at, fmt="%m-%d %H:%M"))
    returned = _returned_with(session, task) if task.state == State.DRAFTING else None
    if returned is not None:  # where the claimant looks: why it came back, and from whom
        event, who = returned
        card.fields.append(CardField(
            label=t(f"card.returned.{event.action}", lang, who=who), short=False,
            value=shown_text((event.detail or {}).get("comment"), REASON_SHOWN)))
    for action, style in BUTTONS_BY_STATE.get(task.state, []):
        card.buttons.append(button(action, task, lang, style))
    return card


# The "approval" builder lives in cards/approval.py (approvals feature).
