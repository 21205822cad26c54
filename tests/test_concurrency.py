"""100 people click "claim" on one task at the same moment: exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.errors import Conflict
from bot.core.users import add_user
from storage.models import AuditEvent, Task


def test_hundred_concurrent_claims_one_winner(seeded):
    db = seeded
    with db.session() as s:
        people = [Actor.of(add_user(s, f"clerk{i}", ["ops"], display_name=f"店员{i}"))
                  for i in range(100)]
        task_id = s.exec(select(Task.id).order_by(Task.id)).first()
    start = threading.Barrier(100)

    def claim(actor: Actor) -> str:
        start.wait()
        try:
            perform(db, ActionRequest(task_id=task_id, action="claim", actor=actor,
                                      event_id=f"claim-{actor.name}"))
            return "won"
        except Conflict as exc:
            return exc.message("en")

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(claim, people))

    assert results.count("won") == 1
    winner = people[results.index("won")]
    losers = [r for r in results if r != "won"]
    assert all(r == f"Task #{task_id} is already claimed by {winner.display_name}." for r in losers)
    with db.session() as s:
        task = s.get(Task, task_id)
        assert task.claimed_by == winner.user_id and task.state == "claimed"
        claims = s.exec(select(AuditEvent).where(AuditEvent.task_id == task_id,
                                                 AuditEvent.action == "claim")).all()
        assert len(claims) == 1


def test_same_click_delivered_concurrently_transitions_once(seeded):
    db = seeded
    with db.session() as s:
        task_id = s.exec(select(Task.id).order_by(Task.id)).first()
        actor = Actor.of(add_user(s, "dup", ["ops"]))
    start = threading.Barrier(10)

    def deliver(_: int):
        start.wait()
        return perform(db, ActionRequest(task_id=task_id, action="claim", actor=actor,
                                         event_id="same-delivery"))

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(deliver, range(10)))
    assert sum(not r.duplicate for r in results) == 1
    assert all(r.state == "claimed" for r in results)
