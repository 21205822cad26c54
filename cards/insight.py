"""Layouts of the decisions feature, part 2: the recommendation on a notice card, its
breakdown ("explain"), and the alert cards (a competitor below our price, stock about to
cross safety stock). The recommendation is handed in as its JSON form
(``bot.insight.recommend.Recommendation.as_dict``); the alert card is a projection of its
``alert_log`` row."""

from __future__ import annotations

from sqlmodel import Session

from bot.core.i18n import t
from bot.core.timefmt import local
from bot.core.views import builder
from cards.callback import CallbackData
from cards.model import Button, Card, CardField
from storage.models import Campaign, Task
from storage.models_results import AlertLog

SHOWN_REASONS = 2
COLOR = {"apply": "green", "caution": "orange", "skip": "red"}


def recommendation_field(rec: dict, lang: str) -> CardField:
    """建议:建议报名(88 分) and the two reasons that moved the score most."""
    lines = [t("rec.card.value", lang, verdict=rec["label"], score=rec["score"])]
    lines += [f"· {r['text']}" for r in rec["reasons"][:SHOWN_REASONS] if r["points"]]
    return CardField(label=t("rec.card.label", lang), value="\n".join(lines), short=False)


def explain_button(task: Task, lang: str) -> Button:
    return Button(label=t("action.explain", lang), action="explain",
                  value=CallbackData("explain", task.id or 0, task.version).pack())


def explain_text(rec: dict, lang: str) -> str:
    """The whole breakdown: the sum, every factor's reason, the weights and where they are."""
    parts = " ".join(f"{r['points']:+d}" for r in rec["reasons"])
    lines = [t("rec.explain_title", lang, task_id=rec["task_id"], verdict=rec["label"],
               score=rec["score"], sum=parts)]
    lines += [f"{i}. {r['text']}" for i, r in enumerate(rec["reasons"], start=1)]
    named = [(t(f"rec.factor.{r['factor']}", lang), r["data"].get("weight", "0"))
             for r in rec["reasons"]]
    weights = ("、" if lang.startswith("zh") else ", ").join(f"{n} {w}" for n, w in named)
    lines.append(t("rec.explain_policy", lang, policy=rec["policy"], weights=weights))
    return "\n".join(lines)


def mute_button(row: AlertLog, lang: str) -> Button:
    return Button(label=t("action.mute_alert", lang), action="mute_alert",
                  value=CallbackData("mute_alert", row.task_id or 0, row.id or 0).pack())


@builder("insight_alert")
def alert_card(session: Session, params: dict, lang: str) -> Card | None:
    row = session.get(AlertLog, params.get("alert_id") or 0)
    if row is None:
        return None
    task = session.get(Task, row.task_id) if row.task_id else None
    campaign = session.get(Campaign, task.campaign_id) if task else None
    d = row.detail or {}
    title = campaign.title if campaign else ""
    if row.kind == "competitor_price":
        gap = f"{float(d.get('gap') or 0):.1%}"
        card = Card(kind="alert", color="orange", task_id=row.task_id,
                    title=t("alert.competitor_title", lang, task_id=row.task_id, sku=row.sku),
                    text=t("alert.competitor_text", lang, title=title, sku=row.sku,
                           ours=d.get("ours"), competitor=d.get("competitor"),
                           theirs=d.get("theirs"), gap=gap,
                           threshold=f"{float(d.get('threshold') or 0):.0%}"))
        if d.get("url", "").startswith(("http://", "https://")):
            card.buttons.append(Button(label=t("alert.open_link", lang), action="open",
                                       url=d["url"]))
    else:
        card = Card(kind="alert", color="red", task_id=row.task_id,
                    title=t("alert.stock_title", lang, task_id=row.task_id, sku=row.sku),
                    text=t("alert.stock_text", lang, title=title, sku=row.sku,
                           days=d.get("days_left"), expected=d.get("expected"),
                           stock=d.get("stock"), left=d.get("left_after"),
                           safety=d.get("safety")))
        card.fields.append(CardField(label=t("alert.suggest_label", lang), short=False,
                                     value=t("alert.suggest", lang, n=d.get("suggest"),
                                             high=d.get("high"), transit=d.get("in_transit"),
                                             method=t(f"forecast.method.{d.get('method')}",
                                                      lang))))
    card.footer = t("alert.decided", lang, when=local(row.created_at))
    if row.muted_at is not None:
        card.locked = True
        card.footer = t("alert.muted", lang, who=row.muted_by or "?", when=local(row.muted_at))
    else:
        card.buttons.append(mute_button(row, lang))
    return card
