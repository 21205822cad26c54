"""The watch feature's cards that need its own answers: who is responsible for a new notice
(routing) and which rows the daily digest shows. The card layout lives in ``cards/watch.py``."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

import cards.watch  # noqa: F401  (registers the watch cards that need no domain answer)
from bot.core.views import builder
from bot.watch.digest import digest_rows
from bot.watch.routing import responsible
from cards.model import Card
from storage.models import Task

# What other features add to the task card (the decisions feature's recommendation on a
# notice): ``fn(session, task, card, lang)`` edits the card; one that fails is logged and
# left out, the card still shows.
decorations: list = []


@builder("task")
def task_card(session: Session, params: dict, lang: str) -> Card | None:
    card = cards.watch.watch_task_card(
        session, params, lang, lambda campaign, team_id: responsible(session, campaign, team_id))
    task = session.get(Task, params["task_id"]) if card is not None else None
    for decorate in list(decorations) if task is not None else []:
        try:
            decorate(session, task, card, lang)
        except Exception:  # noqa: BLE001 - one addition never takes the card down
            logging.getLogger(__name__).warning("task card decoration failed", exc_info=True,
                                                extra={"task_id": task.id})
    return card


@builder("digest")
def digest_card(session: Session, params: dict, lang: str) -> Card | None:
    sections = digest_rows(session, params.get("platforms") or ["*"], params.get("team_id"),
                           datetime.fromisoformat(params["at"]), params.get("tz"))
    return cards.watch.digest_card(session, params, lang, sections)
