"""A card built from reads made ahead (a batch's, or a click's one joined read) is the card
built by asking the database each time: the same declaration table, footer and fields."""

from __future__ import annotations

from types import SimpleNamespace

from sqlmodel import select

from bot.core import delivery
from bot.core.views import BUILDERS
from storage.models import Declaration, Task
from tests.fakes import data_pool as pool


def tasks_of_every_kind(db) -> list[int]:
    """A drafted task (a declaration with lines), one whose newest declaration has no lines
    yet (an older one has), a claimed one without any, a new notice."""
    drafted, redrafted = (pool.task(db, "jd", {"min_discount": 0.2, "min_stock": 30},
                                    state="claimed") for _ in range(2))
    for task_id in (drafted, redrafted):
        pool.act(db, task_id, "draft", "li.na")
    with db.session() as s:
        first = s.exec(select(Declaration).where(Declaration.task_id == redrafted)).one()
        s.add(Declaration(task_id=redrafted, version=first.version + 1, note="second"))
    claimed = pool.task(db, "tmall", state="claimed")
    with db.session() as s:
        new = s.exec(select(Task.id).where(Task.state == "new").order_by(Task.id)).first()
    return [drafted, redrafted, claimed, new]


def card(db, task_id: int, ahead=None) -> dict:
    with db.session() as s:
        delivery.hold_loaded(s)
        if ahead is not None:
            ahead(s)
        built = BUILDERS["task"](s, {"task_id": task_id}, "zh-CN")
        return built.model_dump(mode="json")


def test_cards_built_from_reads_made_ahead_are_the_same_cards(seeded):
    ids = tasks_of_every_kind(seeded)
    rows = [SimpleNamespace(task_id=t) for t in ids]
    for task_id in ids:
        plain = card(seeded, task_id)
        assert card(seeded, task_id, lambda s: delivery._preload(s, rows)) == plain
        assert card(seeded, task_id, lambda s, t=task_id: delivery.preload_task(s, t)) == plain
    drafted, redrafted = card(seeded, ids[0]), card(seeded, ids[1])
    assert drafted["table"] and drafted["footer"]  # the lines, "last: 李娜 …"
    assert not redrafted["table"] and drafted["fields"] != redrafted["fields"]
