"""The outbox builds a batch's cards from a read, on SQLite and PostgreSQL: a click made
while cards are being built does not wait for them (SQLite: the process's one writer is
free), a batch of cards that all show already writes nothing, and a builder that wants to
write still gets its card delivered, once, through the write transaction."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.core import outbox
from bot.core.dispatcher import Dispatcher
from bot.core.views import BUILDERS
from cards.model import Card
from commands.router import Inbound, router
from storage.models import AuditEvent, ChatMessage, OutboxMessage, Task
from tests.test_poison_notices import Recorder


def drain_in_thread(db, adapter: Recorder) -> threading.Thread:
    dispatcher = Dispatcher(db, {"web": adapter})

    async def run() -> None:
        while await dispatcher.run_due():
            pass

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def slow_builder():
    """A card builder that holds on until the test lets it go."""
    building, release = threading.Event(), threading.Event()

    def slow(session, params, lang):
        building.set()
        release.wait(10)
        return Card(kind="notice", title=f"slow {params.get('n')}")

    BUILDERS["slow_test"] = slow
    yield building, release
    release.set()
    BUILDERS.pop("slow_test", None)


def test_a_click_does_not_wait_for_the_cards_being_built(seeded, slow_builder):
    db = seeded
    building, release = slow_builder
    with db.session() as s:
        outbox.enqueue_card(s, "web", "slow-room", "slow:1", "slow_test", {"n": 1},
                            key="slow:1:v1")
        task_id = s.exec(select(Task.id).where(Task.state == "new").order_by(Task.id)).first()
    adapter = Recorder()
    drainer = drain_in_thread(db, adapter)
    assert building.wait(10), "the outbox never started building"
    answers: list = []
    clicker = threading.Thread(target=lambda: answers.append(router.handle_text(
        db, Inbound("web", "tmall-promo", "li.na"), f"认领 {task_id}")), daemon=True)
    clicker.start()
    clicker.join(5)  # before: on SQLite the claim queued behind the batch's write lock
    done_while_building = not clicker.is_alive()
    release.set()
    clicker.join(10)
    drainer.join(20)
    assert done_while_building, "the claim waited for the cards being built"
    assert answers and answers[0].ok, answers
    assert [c.title for channel, c in adapter.cards if channel == "slow-room"] == ["slow 1"]
    with db.session() as s:
        shown = s.exec(select(ChatMessage).where(ChatMessage.card_key == "slow:1")).all()
        assert len(shown) == 1 and shown[0].message_ref
        assert s.get(Task, task_id).state == "claimed"


def test_cards_that_show_already_are_built_without_a_write(seeded):
    """A batch updating cards already posted runs no statement but reads until it settles."""
    db = seeded
    with db.session() as s:
        tasks = s.exec(select(Task).order_by(Task.id).limit(3)).all()
        for task in tasks:
            outbox.enqueue_card(s, "web", "read-room", f"task:{task.id}", "task",
                                {"task_id": task.id}, key=f"read:{task.id}:v1", task_id=task.id)
    adapter = Recorder()
    drain_in_thread(db, adapter).join(20)  # the first delivery reserves the messages
    with db.session() as s:
        for task in tasks:
            outbox.enqueue_card(s, "web", "read-room", f"task:{task.id}", "task",
                                {"task_id": task.id}, key=f"read:{task.id}:v2", task_id=task.id)
    from bot.core import delivery

    writes: list[str] = []
    preparing: set[int] = set()  # the engine is the process's: other threads write too

    def count(_conn, _cursor, statement, *_rest) -> None:
        if threading.get_ident() in preparing and \
                not statement.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
            writes.append(" ".join(statement.split()[:2]).upper())  # BEGIN IMMEDIATE: a lock

    original = delivery.prepare

    def watched(*args, **kwargs):
        preparing.add(threading.get_ident())
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            return original(*args, **kwargs)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)

    delivery.prepare = watched
    try:
        drain_in_thread(db, adapter).join(20)
    finally:
        delivery.prepare = original
    assert [w for w in writes if w not in ("BEGIN", "COMMIT", "ROLLBACK")] == [], writes
    updated = [c.task_id for channel, c in adapter.cards if channel == "read-room"]
    assert sorted(updated) == sorted([t.id for t in tasks] * 2)  # posted, then updated
    with db.session() as s:
        assert len(s.exec(select(ChatMessage).where(
            ChatMessage.channel_id == "read-room")).all()) == 3


def test_a_builder_that_writes_still_gets_its_card_delivered_once(seeded):
    db = seeded

    def writes(session, params, lang):  # as the rules loader stores a file on first use
        session.add(AuditEvent(actor="card-test", action="card_built"))
        session.flush()
        return Card(kind="notice", title="wrote")

    BUILDERS["writes_test"] = writes
    try:
        with db.session() as s:
            outbox.enqueue_card(s, "web", "write-room", "writes:1", "writes_test", {},
                                key="writes:1:v1")
        adapter = Recorder()
        drain_in_thread(db, adapter).join(20)
    finally:
        BUILDERS.pop("writes_test", None)
    assert [c.title for channel, c in adapter.cards if channel == "write-room"] == ["wrote"]
    with db.session() as s:
        row = s.exec(select(OutboxMessage).where(OutboxMessage.key == "writes:1:v1")).one()
        assert row.status == "sent"
        written = s.exec(select(AuditEvent).where(AuditEvent.actor == "card-test")).all()
        assert len(written) == 1  # the read's attempt was refused, the write path's kept
