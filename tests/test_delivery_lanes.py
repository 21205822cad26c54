"""Each chat is delivered at its own pace: a platform that is slow to answer (Feishu's pace,
a held connection) does not hold back the cards of the console or of another chat."""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import update
from sqlmodel import select

from adapters.chat.feishu.adapter import FeishuAdapter
from adapters.chat.feishu.settings import FeishuSettings
from bot.core import outbox
from bot.core.dispatcher import Dispatcher
from storage.models import ChatMessage, OutboxMessage, Task
from tests.fakes.feishu import FakeFeishu
from tests.test_poison_notices import Recorder


def _only_these(db) -> None:
    """The demo's own cards count as shown: the test's rows are the only ones due."""
    with db.session() as s:
        s.execute(update(OutboxMessage).values(status="sent"))


def _status(db, key: str) -> str:
    with db.session() as s:
        return s.exec(select(OutboxMessage.status).where(OutboxMessage.key == key)).one()


def _wait(predicate, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_held_feishu_post_does_not_hold_back_the_consoles_card(seeded):
    db = seeded
    fake = FakeFeishu("cli_lanes", "app-secret").start()
    try:
        feishu = FeishuAdapter(FeishuSettings(app_id=fake.app_id, app_secret="app-secret",
                                              domain=fake.url, _env_file=None))
        web = Recorder()
        dispatcher = Dispatcher(db, {"web": web, "feishu": feishu})
        delivered: list[tuple[str, str]] = []
        dispatcher.on_delivered.append(lambda chat, channel: delivered.append((chat, channel)))
        _only_these(db)
        with db.session() as s:
            task_id = s.exec(select(Task.id).order_by(Task.id)).first()
            for chat, channel in (("feishu", "oc_lanes"), ("web", "lanes-room")):
                outbox.enqueue_card(s, chat, channel, f"task:{task_id}", "task",
                                    {"task_id": task_id}, key=f"lanes:{chat}", task_id=task_id)
        fake.hold()  # Feishu takes the post but keeps its answer
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        loop.call_soon_threadsafe(dispatcher.wake)
        try:
            assert _wait(lambda: ("web", "lanes-room") in delivered), \
                "the console's card waited for Feishu's answer"
            assert _status(db, "lanes:web") == "sent"
            assert _status(db, "lanes:feishu") == "sending"  # still waiting for its answer
            assert [c.task_id for channel, c in web.cards] == [task_id]
        finally:
            fake.release()
        assert _wait(lambda: _status(db, "lanes:feishu") == "sent")
        assert len(fake.in_chat("oc_lanes")) == 1  # posted once, the held answer kept
        with db.session() as s:
            shown = s.exec(select(ChatMessage.chat).where(
                ChatMessage.card_key == f"task:{task_id}",
                ChatMessage.channel_id.in_(["oc_lanes", "lanes-room"]))).all()
        assert sorted(shown) == ["feishu", "web"]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    finally:
        fake.stop()


def test_run_due_still_delivers_every_chat(seeded):
    db = seeded
    web, other = Recorder(), Recorder()
    dispatcher = Dispatcher(db, {"web": web, "slack": other})
    _only_these(db)
    with db.session() as s:
        task_id = s.exec(select(Task.id).order_by(Task.id)).first()
        for chat, channel in (("web", "all-room"), ("slack", "C0ALL"), ("teams", "nowhere")):
            outbox.enqueue_card(s, chat, channel, f"task:{task_id}", "task",
                                {"task_id": task_id}, key=f"all:{chat}", task_id=task_id)
    assert asyncio.run(dispatcher.run_due()) == 3
    assert [channel for channel, _ in web.cards] == ["all-room"]
    assert [channel for channel, _ in other.cards] == ["C0ALL"]
    with db.session() as s:  # a chat with no adapter here is marked, not left due
        row = s.exec(select(OutboxMessage).where(OutboxMessage.key == "all:teams")).one()
    assert row.status in ("sent", "skipped")
