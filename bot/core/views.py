"""The registry of card builders, so the outbox can build a card it only knows by name.

The outbox stores ``(builder, params)`` and builds the card fresh at delivery time, so a card
always shows the row as it is now. Builders register here from ``cards/`` (pure projections
of rows) and from features (cards that need a domain result, such as the approval card's
pre-check); the core never imports either.
"""

from __future__ import annotations

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
