"""The inbox, leases and event ids, in one process (SQLite and PostgreSQL).

The fault tests with real processes are tests/test_crash_inbox.py and test_crash_outbox.py;
these pin the rules they rest on: a redelivery is stored once; a row held by a worker that
stopped is taken over after its lease and done once; a heartbeat keeps a slow row; failing
work is retried and then given up on; a waiting request gets the answer or "working on it";
an event id is de-duplicated per actor, and a reused one for another action is refused.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.core import inbox as inbox_module
from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.dispatcher import Dispatcher
from bot.core.errors import Conflict
from bot.core.inbox import InboxWorker
from bot.core.leases import get_lease_settings
from bot.core.users import add_user
from storage.models import AuditEvent, ChatMessage, InboxEvent, OutboxMessage, Task, User
from storage.types import utcnow


@pytest.fixture(autouse=True)
def short_lease(monkeypatch):
    monkeypatch.setenv("PROMOPILOT_LEASE_SECONDS", "1")
    monkeypatch.delenv("PROMOPILOT_INBOX_PAUSE_MS", raising=False)
    get_lease_settings.cache_clear()
    yield
    get_lease_settings.cache_clear()


def rows(db) -> list[InboxEvent]:
    with db.session() as s:
        return list(s.exec(select(InboxEvent).order_by(InboxEvent.id)))


def test_a_redelivery_is_stored_once(db):
    worker = InboxWorker(db)
    assert worker.accept("slack:act:T1", "slack", "click", {"n": 1}) is not None
    assert worker.accept("slack:act:T1", "slack", "click", {"n": 2}) is None
    assert [r.payload for r in rows(db)] == [{"n": 1}]
    worker.stop()


def test_a_stopped_workers_events_are_taken_over_after_the_lease_and_done_once(db):
    dead = InboxWorker(db)
    for n in range(3):
        dead.accept(f"web:click:{n}", "web", "click", {"n": n})
    dead.heartbeat.stop()  # the process died: nobody renews, nobody works
    done: list[int] = []
    survivor = InboxWorker(db)
    survivor.register("web", lambda event, inline: done.append(event.payload["n"]) or {})
    assert survivor.run_due() == 0  # still leased to the dead worker
    time.sleep(1.2)
    assert survivor.run_due() == 3
    deadline = time.time() + 10
    while len(done) < 3 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert sorted(done) == [0, 1, 2]
    assert {(r.status, r.attempts) for r in rows(db)} == {("done", 2)}
    assert survivor.run_due() == 0  # done is done
    survivor.stop()


def test_the_heartbeat_keeps_a_slow_event_from_being_taken(db):
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(event, inline):
        calls.append("slow")
        started.set()
        release.wait(10)
        return {"ok": True}

    busy = InboxWorker(db)
    busy.register("web", slow)
    busy.submit(busy.accept("web:say:slow", "web", "say", {}))
    assert started.wait(5)
    other = InboxWorker(db)
    other.register("web", lambda event, inline: calls.append("other") or {})
    time.sleep(2.5)  # more than two leases: only the heartbeat keeps it
    assert other.run_due() == 0
    release.set()
    time.sleep(0.3)
    assert calls == ["slow"] and rows(db)[0].status == "done"
    busy.stop()
    other.stop()


def test_failing_work_is_retried_then_given_up(db, monkeypatch):
    monkeypatch.setattr(inbox_module, "MAX_ATTEMPTS", 2)
    worker = InboxWorker(db)

    def broken(event, inline):
        raise RuntimeError("database away")

    worker.register("web", broken)
    assert worker.call(worker.accept("web:say:x", "web", "say", {}), 5) is None
    first = rows(db)[0]
    assert first.status == "pending" and "database away" in first.last_error
    with db.session() as s:  # its backoff has passed
        s.execute(update(InboxEvent).values(next_attempt_at=utcnow()))
    assert worker.run_due() == 1
    time.sleep(0.5)
    assert rows(db)[0].status == "dead"
    worker.stop()


def test_a_waiting_request_gets_the_answer_or_working_on_it(db):
    worker = InboxWorker(db)
    seen: list[bool] = []

    def handler(event, inline):
        time.sleep(event.payload["sleep"])
        seen.append(inline())
        return {"text": "done"}

    worker.register("web", handler)
    fast = worker.accept("web:say:fast", "web", "say", {"sleep": 0})
    assert worker.call(fast, 2) == {"text": "done"} and seen == [True]
    slow = worker.accept("web:say:slow", "web", "say", {"sleep": 1})
    assert worker.call(slow, 0.2) is None  # the caller says "working on it"
    time.sleep(1.3)
    assert seen == [True, False]  # …so the handler knows to tell the person itself
    assert rows(db)[1].result == {"text": "done"}
    worker.stop()


def test_outbox_rows_of_a_dead_dispatcher_are_taken_over_after_a_short_lease(seeded):
    with seeded.session() as s:
        row = s.exec(select(OutboxMessage)).first()
        row.status, row.lease_owner = "sending", "outbox:gone:1:dead"
        row.next_attempt_at = utcnow() + timedelta(seconds=1)
        s.add(row)
    dispatcher = Dispatcher(seeded, {})
    assert row.id not in [r.id for r in dispatcher.claim_due()]
    time.sleep(1.2)
    taken = [r for r in dispatcher.claim_due() if r.id == row.id]
    assert taken and taken[0].attempts == row.attempts + 1
    with seeded.session() as s:
        assert s.get(OutboxMessage, row.id).lease_owner == dispatcher.owner


async def test_the_attempt_is_recorded_before_the_post_and_a_retry_reuses_its_key(seeded):
    seen: list[tuple] = []

    class Lost:  # the platform takes the post; its answer never comes back
        chat = "web"

        async def post_card(self, channel_id, card, *, key="", unsure_since=None):
            with seeded.session() as s:
                shown = s.exec(select(ChatMessage).where(ChatMessage.post_key == key)).one()
            seen.append((key, unsure_since, shown.post_started_at))
            if len(seen) == 1:
                raise TimeoutError("answer lost")
            return "ref-1"

        async def update_card(self, channel_id, message_ref, card):
            seen.append(("update", message_ref))

    dispatcher = Dispatcher(seeded, {"web": Lost()})
    await dispatcher.run_due(limit=1)
    with seeded.session() as s:
        s.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    await dispatcher.run_due(limit=1)
    (key, first_since, started), (again, since, _), update_call = seen[:3]
    assert first_since is None and started is not None  # recorded before the call
    assert again == key and since == started  # same key, "outcome unknown since …"
    assert update_call == ("update", "ref-1")  # then brought up to date


def test_an_event_id_counts_per_actor(seeded):
    with seeded.session() as s:
        task_id = s.exec(select(Task.id).order_by(Task.id)).first()
        actors = [Actor.of(add_user(s, f"clerk{i}", ["ops"])) for i in range(10)]

    def claim(actor: Actor):
        try:
            return perform(seeded, ActionRequest(task_id=task_id, action="claim", actor=actor,
                                                 event_id="api:same-id"))
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(claim, actors))
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 1 and not won[0].duplicate  # one acted …
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 9 and all(r.key == "err.already_claimed" for r in refused)
    again = perform(seeded, ActionRequest(task_id=task_id, action="claim",
                                          actor=next(a for a, r in zip(actors, results,
                                                                       strict=True)
                                                     if r is won[0]), event_id="api:same-id"))
    assert again.duplicate  # … and the same actor's same id is still done once
    with seeded.session() as s:
        assert len(s.exec(select(AuditEvent).where(AuditEvent.task_id == task_id,
                                                   AuditEvent.action == "claim")).all()) == 1


def test_rest_refuses_an_event_id_reused_for_another_action(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    with live.container.db.session() as s:
        first, second = s.exec(select(Task.id).order_by(Task.id)).all()[:2]
    body = {"action": "claim", "actor": "li.na", "event_id": "req-1"}
    assert client.post(f"/api/tasks/{first}/actions", json=body).json()["duplicate"] is False
    assert client.post(f"/api/tasks/{first}/actions", json=body).json()["duplicate"] is True
    reused = client.post(f"/api/tasks/{second}/actions", json=body)
    assert reused.status_code == 409
    assert f"#{first}" in reused.json()["detail"]["message"]
    assert "认领" in reused.json()["detail"]["message"]  # in the actor's language (zh-CN)
    english = client.post(f"/api/tasks/{second}/actions", json=body,
                          headers={"Accept-Language": "en"})
    assert "claim" in english.json()["detail"]["message"].lower()
    other = client.post(f"/api/tasks/{second}/actions",
                        json={**body, "actor": "alex"})  # someone else's id is their own
    assert other.status_code == 200 and other.json()["state"] == "claimed"
    with live.container.db.session() as s:
        assert s.get(Task, second).claimed_by == s.exec(
            select(User.id).where(User.name == "alex")).one()


def test_seeding_twice_at_once_adds_everything_once(db, settings):
    from bot.demo import PEOPLE, seed

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda _: seed(db, settings), range(2)))
    assert len(reports) == 2
    with db.session() as s:
        assert len(s.exec(select(User)).all()) == len(PEOPLE)
