"""Cards of the watchers feature: notice updated (old → new), source down / recovered,
reminder, digest — and, on the task card, "deadline unclear" with a button to set it and the
responsible people called out. Built fresh at delivery from the rows they show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.core.i18n import Term, t
from bot.core.lifecycle import CLOSED_STATES, OPEN_STATES
from bot.core.timefmt import local, zone
from cards.builders import _platform_name, builder, button, console_link, when
from cards.builders import task_card as plain_task_card
from cards.model import Card, CardField, Line
from storage.models import Campaign, ChatBinding, Task, User
from storage.models_watch import NoticeBody, SourceState
from storage.types import utcnow

FIELD_ORDER = ("title", "type", "registration_start", "registration_end", "event_start",
               "event_end", "requirements", "source_url", "text")


def _when(value: object) -> str:
    if value in (None, ""):
        return "—"
    if isinstance(value, str):
        try:
            return local(datetime.fromisoformat(value))
        except (ValueError, OverflowError):  # not a time, or one the zone cannot show
            return value
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return str(value)


def left_text(delta: timedelta, lang: str) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return t("rem.minutes", lang, n=minutes)
    return t("rem.hours", lang, n=round(minutes / 60))


def watch_task_card(session: Session, params: dict, lang: str,
                    responsible: Callable[[Campaign, int | None], list[User]]) -> Card | None:
    """The foundation task card, plus: unsure deadlines flagged with a "set deadline"
    button, and the responsible roles' members (``responsible``, the watch feature's
    routing) called out while nobody has claimed it."""
    card = plain_task_card(session, params, lang)
    task = session.get(Task, params["task_id"])
    if card is None or task is None:
        return card
    campaign = session.get(Campaign, task.campaign_id)
    body = session.get(NoticeBody, task.campaign_id)
    unsure = task.deadline is None or (body is not None and body.unclear)
    if unsure and task.state in OPEN_STATES and not card.locked:
        if task.deadline is not None:
            label = t("card.deadline", lang)
            for f in card.fields:
                if f.label == label:
                    f.value = t("watch.unclear_guess", lang, when=when(task.deadline))
        set_button = button("set_deadline", task, lang)
        set_button.needs_input = True  # the time is typed in (modal / form / reply)
        card.buttons.append(set_button)
    if task.state == "new" and campaign is not None:
        card.mentions = [u.name for u in responsible(campaign, task.team_id)]
    return card


@builder("notice_updated")
def notice_updated_card(session: Session, params: dict, lang: str) -> Card | None:
    task = session.get(Task, params["task_id"])
    if task is None:
        return None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    changes = params.get("changes") or {}
    card = Card(kind="notice", color="orange", task_id=task.id,
                title=t("watch.updated_title", lang, task_id=task.id, title=campaign.title),
                text=t("watch.updated_text", lang, v=params.get("version")),
                link=console_link(task.id or 0), locked=True,
                table_header=[t(f"watch.col.{c}", lang) for c in ("what", "old", "new")])
    for name in FIELD_ORDER:
        if name in changes:
            old, new = changes[name]
            card.table.append(Line(cells=[t(f"watch.field.{name}", lang), _when(old),
                                          _when(new)]))
    if task.claimed_by:
        user = session.get(User, task.claimed_by)
        card.mentions = [user.name] if user else []
    return card


def _source_card(session: Session, params: dict, lang: str, down: bool) -> Card | None:
    state = session.get(SourceState, params["source"])
    if state is None:
        return None
    name = state.name
    if down:
        card = Card(kind="error", color="red", title=t("watch.down_title", lang, name=name),
                    text=t("watch.down_text", lang, n=state.consecutive_failures,
                           error=state.last_error or "—"))
        card.fields.append(CardField(label=t("watch.next_try", lang),
                                     value=local(state.next_attempt_at)))
    else:
        card = Card(kind="error", color="green", title=t("watch.up_title", lang, name=name),
                    text=t("watch.up_text", lang, when=local(state.last_success)))
    card.fields.insert(0, CardField(label=t("watch.platform", lang), value=state.platform or "*"))
    return card


@builder("source_down")
def source_down_card(session: Session, params: dict, lang: str) -> Card | None:
    return _source_card(session, params, lang, True)


@builder("source_recovered")
def source_recovered_card(session: Session, params: dict, lang: str) -> Card | None:
    return _source_card(session, params, lang, False)


@builder("reminder")
def reminder_card(session: Session, params: dict, lang: str) -> Card | None:
    """One reminder tier (or an escalation / approval nag) for one task, as decided."""
    task = session.get(Task, params["task_id"])
    if task is None:
        return None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    deadline = datetime.fromisoformat(params["deadline"]) if params.get("deadline") else None
    at = datetime.fromisoformat(params["at"]) if params.get("at") else utcnow()
    kind = params.get("kind", "tier")
    title_key = "rem.nag_title" if kind == "nag" else "rem.title"
    card = Card(kind="reminder", color="red" if kind != "tier" else "orange",
                title=t(title_key, lang, task_id=task.id, title=campaign.title),
                task_id=task.id, version=task.version, link=console_link(task.id or 0))
    lines = []
    if kind == "nag":
        role = params.get("role")
        lines.append(t("rem.nag_text", lang, role=Term(f"role.{role}") if role else "—",
                       waited=left_text(timedelta(seconds=params.get("waited", 0)), lang),
                       due=local(datetime.fromisoformat(params["due"])) if params.get("due")
                       else "—", n=params.get("n", 1), deadline=local(deadline)))
    elif deadline and deadline > at:
        lines.append(t("rem.left", lang, left=left_text(deadline - at, lang),
                       when=local(deadline)))
    else:
        lines.append(t("rem.passed", lang, when=local(deadline)))
    if kind == "escalation":
        who = "、".join(params.get("managers_display", [])) or "—"
        lines.append(t("rem.escalated", lang, left=left_text(timedelta(hours=24), lang), who=who))
    elif kind == "tier" and task.state == "new":
        lines.append(t("rem.unclaimed", lang))
    if params.get("late") and params.get("due"):
        lines.append(t("rem.late", lang, due=local(datetime.fromisoformat(params["due"]))))
    card.text = "\n".join(lines)
    card.fields.append(CardField(label=t("card.platform", lang),
                                 value=_platform_name(session, campaign.platform, lang)))
    card.fields.append(CardField(label=t("card.state", lang), value=t(f"state.{task.state}",
                                                                      lang)))
    if task.claimed_by:
        owner = session.get(User, task.claimed_by)
        card.fields.append(CardField(label=t("rem.owner", lang),
                                     value=owner.display_name if owner else "—"))
    card.mentions = list(params.get("mentions", []))
    if task.state in CLOSED_STATES:
        card.locked = True
    elif task.state == "new" and kind != "nag":
        card.buttons.append(button("claim", task, lang, "primary"))
    return card


def digest_card(session: Session, params: dict, lang: str,
                sections: dict[str, list[tuple[Task, Campaign]]]) -> Card | None:
    """The daily digest from the rows the watch feature selected (``sections``)."""
    card = Card(kind="digest", color="blue", title=t("digest.title", lang, date=params["date"]))
    any_rows = False
    for key in ("today", "approval", "stuck", "results"):
        rows = sections[key]
        any_rows = any_rows or bool(rows)
        value = "\n".join(_digest_line(session, task, campaign, lang, params.get("tz"))
                          for task, campaign in rows[:15])
        if len(rows) > 15:
            value += f"\n… +{len(rows) - 15}"
        card.fields.append(CardField(label=f"{t(f'digest.{key}', lang)} ({len(rows)})",
                                     value=value or t("digest.none", lang), short=False))
    if not any_rows:
        card.text = t("digest.empty", lang)
    return card


def _digest_line(session: Session, task: Task, campaign: Campaign, lang: str,
                 tz: str | None = None) -> str:
    when = local(task.deadline, tz, fmt="%m-%d %H:%M") if task.deadline else "?"
    owner = session.get(User, task.claimed_by) if task.claimed_by else None
    who = f" · {owner.display_name}" if owner else ""
    return (f"#{task.id} [{_platform_name(session, campaign.platform, lang)}] {campaign.title[:50]} — "
            f"{when} — {t(f'state.{task.state}', lang)}{who}")


def channel_platforms(session: Session, chat: str, channel_id: str) -> list[str]:
    rows = session.exec(select(ChatBinding.platform).where(
        ChatBinding.chat == chat, ChatBinding.channel_id == channel_id,
        ChatBinding.purpose == "notices"))
    return sorted(set(rows))


__all__ = ["channel_platforms", "left_text", "zone"]
