"""The custom robot webhook: signed requests, 20-a-minute limit honoured by queueing
(nothing dropped), cards as ActionCards that mention nobody. Real outbox, local robot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from adapters.chat.dingtalk import bind_webhook_group, build_adapter
from adapters.chat.dingtalk.settings import DingTalkSettings
from bot.core import outbox
from bot.core.dispatcher import Dispatcher
from bot.core.ports import Notice
from bot.watch.ingest import ingest
from storage.models import OutboxMessage
from storage.types import utcnow
from tests.fakes.dingtalk import FakeDingTalk

WINDOW = 2.0  # seconds; DingTalk's is 60, the arithmetic is the same


@pytest.fixture
def robot():
    server = FakeDingTalk(webhook_limit=20, webhook_window=WINDOW).start()
    yield server
    server.stop()


def webhook_settings(robot: FakeDingTalk, secret: str | None = None) -> DingTalkSettings:
    return DingTalkSettings(webhook_url=robot.webhook_url,
                            webhook_secret=secret or robot.webhook_secret,
                            webhook_per_window=20, webhook_window_seconds=WINDOW,
                            _env_file=None)


def rows(db) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.chat == "dingtalk")
                                 .order_by(OutboxMessage.id)))


async def test_rate_limit_queues_and_sends_later_nothing_dropped(db, robot):
    dispatcher = Dispatcher(db, {"dingtalk": build_adapter(webhook_settings(robot), db)})
    with db.session() as session:
        for i in range(25):
            outbox.enqueue_text(session, "dingtalk", "webhook", f"通知 {i}", key=f"notice-{i}")
    await dispatcher.run_due()
    assert len(robot.webhook_messages) == 20 and not robot.webhook_refused
    waiting = [r for r in rows(db) if r.status == "pending"]
    assert len(waiting) == 5
    assert all(r.next_attempt_at > utcnow() for r in waiting)  # queued for a later slot
    await dispatcher.run_due()  # too early: the queued ones are not due yet
    assert len(robot.webhook_messages) == 20
    await asyncio.sleep(WINDOW + 0.3)
    await dispatcher.run_due()
    assert not robot.webhook_refused
    sent = sorted(m["text"]["content"] for m in robot.webhook_messages)
    assert sent == sorted(f"通知 {i}" for i in range(25))
    assert {r.status for r in rows(db)} == {"sent"}
    assert max(r.attempts for r in rows(db)) == 2  # each deferred once, never dead


async def test_robot_throttling_us_is_retried_not_dropped(db, robot):
    robot.webhook_limit = 3  # someone else shares this robot
    dispatcher = Dispatcher(db, {"dingtalk": build_adapter(webhook_settings(robot), db)})
    with db.session() as session:
        for i in range(6):
            outbox.enqueue_text(session, "dingtalk", "webhook", f"n{i}", key=f"n-{i}")
    await dispatcher.run_due()
    assert len(robot.webhook_messages) == 3
    assert {r.status for r in rows(db)} == {"sent", "pending"}
    robot.webhook_limit = 20
    with db.session() as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")):
            assert "throttled" in row.last_error
            row.next_attempt_at = utcnow()
            session.add(row)
    await asyncio.sleep(WINDOW + 0.1)
    await dispatcher.run_due()
    assert sorted(m["text"]["content"] for m in robot.webhook_messages) == \
        [f"n{i}" for i in range(6)]


async def test_wrong_signing_secret_is_refused_and_reported(db, robot):
    adapter = build_adapter(webhook_settings(robot, secret="SECwrong"), db)
    dispatcher = Dispatcher(db, {"dingtalk": adapter})
    with db.session() as session:
        outbox.enqueue_text(session, "dingtalk", "webhook", "hello", key="hello")
    await dispatcher.run_due()
    assert not robot.webhook_messages and len(robot.webhook_refused) == 1
    [row] = rows(db)
    assert row.status == "dead" and "DINGTALK_WEBHOOK_SECRET" in row.last_error
    assert robot.webhook_token not in row.last_error  # the robot's token stays out of errors


async def test_notice_reaches_webhook_group_as_action_card(seeded, robot):
    assert bind_webhook_group(seeded, "*") == 1
    assert bind_webhook_group(seeded, "*") == 0  # idempotent
    now = utcnow()
    ingest(seeded, [Notice(platform="pdd", external_id="wh-1",
                           title="@所有人 百亿补贴 <b>报名</b> @all", registration_end=now
                           + timedelta(days=2), event_start=now + timedelta(days=5))])
    dispatcher = Dispatcher(seeded, {"dingtalk": build_adapter(webhook_settings(robot),
                                                               seeded)})
    await dispatcher.run_due()
    [message] = robot.webhook_messages
    assert message["msgtype"] == "actionCard"
    assert message["at"] == {"isAtAll": False, "atUserIds": [], "atMobiles": []}
    card = message["actionCard"]
    assert "@所有人" not in card["title"] + card["text"] and "所有人" in card["title"]
    assert "<b>" not in card["text"]
    urls = [b["actionURL"] for b in card.get("btns", [])] or [card["singleURL"]]
    assert all("/console?task=" in url for url in urls)


def test_webhook_only_team_gets_notices_from_the_running_app(settings, seeded, robot,
                                                            monkeypatch):
    from bot.web.app import create_app
    from tests.conftest import LiveServer

    for name in ("DINGTALK_CLIENT_ID", "DINGTALK_CLIENT_SECRET", "DINGTALK_CARD_TEMPLATE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DINGTALK_WEBHOOK_URL", robot.webhook_url)
    monkeypatch.setenv("DINGTALK_WEBHOOK_SECRET", robot.webhook_secret)
    monkeypatch.setenv("PROMOPILOT_DINGTALK_WEBHOOK_PLATFORMS", "jd")
    live = LiveServer(create_app(settings), settings).start()
    try:
        assert "dingtalk" in live.container.adapters
        assert "dingtalk_stream" not in live.container.extras  # nothing to listen to
        now = utcnow()
        ingest(seeded, [Notice(platform="jd", external_id="wh-live", title="京东 618 招商",
                               registration_end=now + timedelta(days=2))])
        ingest(seeded, [Notice(platform="tmall", external_id="wh-other", title="不是这个群的",
                               registration_end=now + timedelta(days=2))])
        live.drain()
        [message] = robot.webhook_messages
        assert "京东 618 招商" in message["actionCard"]["title"]
    finally:
        live.stop()
        live.container.db.dispose()
