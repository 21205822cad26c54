"""The submission card: a hand-off to a person or robot, or an escalation with context.

It says what failed, the last error and everything tried, and offers "retry" and "I'll take
over"; for hand-offs it carries the file or the deep link and checklist and a button that
asks for the platform's reference as evidence.
"""

from __future__ import annotations

from sqlmodel import Session

from bot.core.i18n import has, t
from bot.core.timefmt import local
from cards.builders import _platform_name, _user_name, builder, console_link
from cards.callback import CallbackData
from cards.model import Button, Card, CardField, Line
from storage.models import Campaign, Task
from storage.models_approval import SubmissionRun

HUMAN = ("excel", "assisted")



def _button(action: str, task: Task, lang: str, style: str = "default",
            needs_input: bool = False) -> Button:
    return Button(label=t(f"action.{action}", lang), action=action, style=style,  # type: ignore
                  value=CallbackData(action, task.id or 0, task.version).pack(),
                  needs_input=needs_input)


def channel_name(channel: str, lang: str) -> str:
    """A submission channel as a person calls it (Excel 报名文件); a configured channel the
    catalog does not know keeps its code."""
    return t(f"sub.ch.{channel}", lang) if has(f"sub.ch.{channel}") else channel


@builder("submission")
def submission_card(session: Session, params: dict, lang: str) -> Card | None:
    from bot.core.settings import get_settings

    task = session.get(Task, params["task_id"])
    run = session.get(SubmissionRun, params["run_id"])
    if task is None or run is None:
        return None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    channel = run.handoff.get("channel") if run.status == "waiting" else (
        run.channels[run.channel_index] if run.channel_index < len(run.channels) else "—")
    status_key = f"sub.status.{run.status}" + (f".{channel}" if run.status == "waiting" else "")
    card = Card(kind="submission", task_id=task.id, version=task.version,
                title=t("sub.title", lang, task_id=task.id, title=campaign.title),
                subtitle=t(status_key, lang), link=console_link(task.id or 0),
                color={"failed": "red", "waiting": "orange", "sent": "green"}.get(
                    run.status, "orange"))
    card.fields += [
        CardField(label=t("card.platform", lang), value=_platform_name(session, campaign.platform, lang)),
        CardField(label=t("sub.channel", lang), value=channel_name(str(channel), lang)),
        CardField(label=t("card.state", lang), value=t(f"state.{task.state}", lang)),
        CardField(label=t("sub.key", lang), value=run.idempotency_key),
    ]
    if run.assignee:
        card.fields.append(CardField(label=t("sub.assignee", lang),
                                     value=_user_name(session, run.assignee)))
    if run.tried:
        tried = "\n".join(
            f"{channel_name(x['channel'], lang)} · {local_iso(x.get('at'))}: {x['error'][:160]}"
            for x in run.tried)
        card.fields.append(CardField(label=t("sub.tried", lang), value=tried, short=False))
        card.fields.append(CardField(label=t("sub.last_error", lang),
                                     value=(run.last_error or "")[:300], short=False))
    handoff = run.handoff or {}
    waiting = run.status == "waiting" and task.state == "submitting"
    if waiting and channel == "excel" and handoff.get("token"):
        base = get_settings().base_url
        card.buttons.append(Button(label=t("sub.download", lang), action="open", url=(
            f"{base}/submissions/handoff/{run.id}/file?token={handoff['token']}")))
        if handoff.get("upload_url"):
            card.buttons.append(Button(label=t("sub.open_upload", lang), action="open",
                                       url=handoff["upload_url"]))
    if waiting and channel == "assisted":
        if handoff.get("instructions"):
            card.fields.append(CardField(label=t("sub.instructions", lang),
                                         value=handoff["instructions"], short=False))
        if handoff.get("deep_link"):
            card.buttons.append(Button(label=t("sub.open_backoffice", lang), action="open",
                                       url=handoff["deep_link"]))
        card.table_header = [t("card.col.sku", lang), t("sub.col.field", lang),
                             t("sub.col.value", lang)]
        for row in handoff.get("checklist", []):
            if row.get("item_id"):  # an assisted connector knows the platform's item
                card.table.append(Line(cells=[row["sku"], t("sub.item_id", lang),
                                              str(row["item_id"])]))
            card.table.append(Line(cells=[row["sku"], t("sub.promo_price", lang),
                                          str(row["promo_price"])]))
            card.table.append(Line(cells=[row["sku"], t("sub.promo_stock", lang),
                                          str(row["promo_stock"])]))
            if "limit_per_buyer" in row:
                card.table.append(Line(cells=[row["sku"], t("sub.limit_per_buyer", lang),
                                              str(row["limit_per_buyer"] or t("sub.no_limit",
                                                                              lang))]))
    if run.status == "sent" and handoff.get("channel") in HUMAN:
        card.fields.append(CardField(label=t("sub.reference", lang),
                                     value=str(handoff.get("evidence") or "")[:200] or "✓"))
    if waiting and channel in HUMAN:
        card.buttons.append(_button("submission_done", task, lang, "primary", needs_input=True))
        card.buttons.append(_button("submission_retry", task, lang))
    elif waiting or (run.status == "failed" and task.state == "approved"):
        card.buttons.append(_button("submission_retry", task, lang, "primary"))
        card.buttons.append(_button("submission_takeover", task, lang))
    elif run.status == "sent" and handoff.get("channel") in HUMAN and \
            task.state in ("submitted", "in_review"):
        card.buttons.append(_button("platform_accepted", task, lang, "primary"))
        card.buttons.append(_button("platform_rejected", task, lang, "danger", needs_input=True))
    if run.assignee and run.status == "waiting":
        from storage.models import User

        user = session.get(User, run.assignee)
        card.mentions = [user.name] if user else []
    card.locked = not card.buttons or all(b.url for b in card.buttons)
    if run.status == "sent" and not any(not b.url for b in card.buttons):
        card.locked = True
    return card


def local_iso(value: str | None) -> str:
    from datetime import datetime

    if not value:
        return "—"
    try:
        return local(datetime.fromisoformat(value), fmt="%m-%d %H:%M")
    except ValueError:
        return value[:16]
