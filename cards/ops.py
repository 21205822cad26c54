"""Cards for the ops channel about data PromoPilot could not use: a notice a source could
not hand over (``notice_rejected``) and a card that could not be built (``card_unbuildable``).

Both are built from their params alone (no row lookup), so they can always be built; every
string in them is untrusted and escaped by the renderers.
"""

from __future__ import annotations

from sqlmodel import Session

from bot.core.i18n import t
from bot.core.views import builder
from cards.model import Card, CardField


def _text(value: object, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@builder("notice_rejected")
def notice_rejected_card(session: Session, params: dict, lang: str) -> Card | None:
    source = _text(params.get("source"), 128) or "?"
    card = Card(kind="error", color="orange", title=t("ops.rejected_title", lang, source=source))
    if params.get("more"):
        refs = "、".join(_text(r, 80) for r in params.get("refs") or []) or "—"
        card.text = t("ops.rejected_more", lang, n=params["more"], refs=refs)
    else:
        card.text = t("ops.rejected_text", lang, ref=_text(params.get("ref"), 160) or "?",
                      reason=_text(params.get("reason")) or "—")
    card.fields = [CardField(label=t("ops.source", lang), value=source),
                   CardField(label=t("watch.platform", lang),
                             value=_text(params.get("platform"), 32) or "*")]
    return card


@builder("card_unbuildable")
def card_unbuildable_card(session: Session, params: dict, lang: str) -> Card | None:
    what = _text(params.get("card_key") or params.get("builder"), 128) or "?"
    return Card(kind="error", color="red", title=t("ops.unbuildable_title", lang, card=what),
                text=t("ops.unbuildable_text", lang,
                       where=f"{_text(params.get('chat'), 32) or '?'}/"
                             f"{_text(params.get('channel'), 128) or '?'}",
                       error=_text(params.get("error")) or "—"))
