"""The watch feature's cards that need its own answers: who is responsible for a new notice
(routing) and which rows the daily digest shows. The card layout lives in ``cards/watch.py``."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

import cards.watch  # noqa: F401  (registers the watch cards that need no domain answer)
from bot.core.views import builder
from bot.watch.digest import digest_rows
from bot.watch.routing import responsible
from cards.model import Card


@builder("task")
def task_card(session: Session, params: dict, lang: str) -> Card | None:
    return cards.watch.watch_task_card(
        session, params, lang, lambda campaign, team_id: responsible(session, campaign, team_id))


@builder("digest")
def digest_card(session: Session, params: dict, lang: str) -> Card | None:
    sections = digest_rows(session, params.get("platforms") or ["*"], params.get("team_id"),
                           datetime.fromisoformat(params["at"]), params.get("tz"))
    return cards.watch.digest_card(session, params, lang, sections)
