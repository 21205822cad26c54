"""The registry of card builders, so the outbox can build a card it only knows by name.

The outbox stores ``(builder, params)`` and builds the card fresh at delivery time, so a card
always shows the row as it is now. Builders register here from ``cards/`` (pure projections
of rows) and from features (cards that need a domain result, such as the approval card's
pre-check); the core never imports either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

if TYPE_CHECKING:
    from cards.model import Card

Builder = Callable[[Session, dict, str], "Card | None"]
BUILDERS: dict[str, Builder] = {}


def builder(name: str) -> Callable[[Any], Any]:
    def register_builder(fn: Builder) -> Builder:
        BUILDERS[name] = fn
        return fn

    return register_builder


# Parts of a card that a feature adds (the approval card's margin, risks and scenarios):
# card name → [(order, fn(session, task, declaration, lang) -> list[CardField])]. The card's
# builder asks for them; a part that fails is logged and left out, the card still shows.
Section = Callable[[Session, Any, Any, str], list]
SECTIONS: dict[str, list[tuple[int, Section]]] = {}


def section(card: str, order: int = 50) -> Callable[[Section], Section]:
    def register_section(fn: Section) -> Section:
        parts = SECTIONS.setdefault(card, [])
        if all(existing is not fn for _, existing in parts):
            parts.append((order, fn))
            parts.sort(key=lambda part: part[0])
        return fn

    return register_section


def sections(card: str, session: Session, task: Any, declaration: Any, lang: str) -> list:
    """Every registered part of ``card``, in order (a failing part is logged and skipped)."""
    out: list = []
    for _, fn in SECTIONS.get(card, []):
        try:
            out += fn(session, task, declaration, lang)
        except Exception:  # noqa: BLE001 - one part never takes the card down
            logging.getLogger(__name__).warning(
                "card section failed", exc_info=True,
                extra={"card": card, "section": getattr(fn, "__qualname__", "?"),
                       "task_id": getattr(task, "id", None)})
    return out
