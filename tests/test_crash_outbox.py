"""A card is shown once even when the process dies mid-send (SIGKILL, real processes).

The fake platform carries out the post and holds its answer; the app is killed while it
waits; the answer is let go into a closed socket; a new process starts. It must take the row
over within a short lease (not two minutes), see that the earlier attempt's outcome is
unknown, and end with exactly one message in the chat — Slack by finding its message
metadata in ``conversations.history``, Feishu by the create ``uuid``, DingTalk by the card's
``outTrackId`` — with that message's reference stored for later updates.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.ports import Notice
from bot.core.settings import Settings
from bot.demo import seed
from bot.watch.ingest import ingest
from storage.db import Database, upgrade
from storage.models import ChatBinding, ChatMessage, OutboxMessage, Task, User
from storage.types import utcnow
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.procs import App, empty_database, wait_for

CHANNEL = {"slack": "C0TMALL", "feishu": "oc_tmall_group", "dingtalk": "cidGROUPtmall"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from empty_database(request.param, tmp_path)


def prepare(url: str, chat: str) -> tuple[Database, int]:
    """A seeded database with one new notice whose card waits in the outbox for ``chat``."""
    upgrade(url)
    db = Database(url)
    seed(db, Settings(database_url=url, _env_file=None), notices=False)
    with db.session() as s:
        s.add(ChatBinding(chat=chat, channel_id=CHANNEL[chat], platform="tmall",
                          purpose="notices"))
    now = utcnow()
    report = ingest(db, [Notice(platform="tmall", external_id="CRASH-1", title="双12 会场招商",
                                registration_end=now + timedelta(days=10))])
    with db.session() as s:
        task_id = s.exec(select(Task.id).where(Task.campaign_id == report.new[0])).one()
    return db, task_id


def row(db: Database, chat: str) -> OutboxMessage:
    """The outbox row posting the task's card to ``chat``."""
    with db.session() as s:
        return s.exec(select(OutboxMessage).where(
            OutboxMessage.chat == chat, OutboxMessage.card_key.like("task:%"))
            .order_by(OutboxMessage.id)).first()


def shown(db: Database, chat: str, task_id: int) -> ChatMessage:
    with db.session() as s:
        return s.exec(select(ChatMessage).where(ChatMessage.chat == chat,
                                                ChatMessage.card_key == f"task:{task_id}")).one()


def kill_mid_post(db: Database, tmp_path, chat: str, env: dict, held) -> None:
    """First life: the post reaches the platform, the answer is held, SIGKILL."""
    first = App(db.url, tmp_path, "first", env)
    try:
        wait_for(held, 40, "the platform to hold the post", [first])
        time.sleep(0.3)
    finally:
        first.kill()
    task_id = shown_task(db)
    card = shown(db, chat, task_id)
    assert card.message_ref == "" and card.post_key  # attempt recorded, outcome unknown
    assert row(db, chat).status == "sending"
    # Meanwhile someone claims the task: the card to show is no longer the one posted.
    with db.session() as s:
        lina = Actor.of(s.exec(select(User).where(User.name == "li.na")).one())
    perform(db, ActionRequest(task_id=task_id, action="claim", actor=lina))


def unsent(db: Database, chat: str) -> list[OutboxMessage]:
    with db.session() as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.chat == chat,
                                                       OutboxMessage.status != "sent")))


def shown_task(db: Database) -> int:
    with db.session() as s:
        return s.exec(select(Task.id)).one()


def restart_and_deliver(db: Database, tmp_path, chat: str, env: dict) -> float:
    """Second life: takes the row over and finishes it; seconds from start to sent."""
    second = App(db.url, tmp_path, "second", env)
    started = time.time()
    try:
        wait_for(lambda: not unsent(db, chat), 40, "the rows to be sent", [second])
        took = time.time() - started
        time.sleep(1.5)  # more outbox rounds: nothing more may happen
    finally:
        second.stop()
    return took


def test_slack_card_shown_once_after_sigkill_mid_post(url, tmp_path):
    db, task_id = prepare(url, "slack")
    fake = FakeSlack().start()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "PROMOPILOT_SLACK_API_URL": fake.api_url}
    try:
        fake.hold("chat.postMessage")
        kill_mid_post(db, tmp_path, "slack", env, lambda: fake.held)
        fake.release()
        took = restart_and_deliver(db, tmp_path, "slack", env)
    finally:
        fake.release()
        fake.stop()
    cards = [m for m in fake.messages(CHANNEL["slack"])
             if "双12 会场招商" in str(m["blocks"])]
    assert len(cards) == 1  # once, not twice
    assert cards[0]["metadata"]["event_type"] == "promopilot_outbox"
    assert "已认领" in str(cards[0]["blocks"])  # brought up to date, in place
    assert shown(db, "slack", task_id).message_ref == cards[0]["ts"]  # updates go there
    assert fake.calls("conversations.history")  # it looked before posting again
    assert len(fake.calls("chat.postMessage")) == 1
    assert took < 30  # the dead process's lease ran out in seconds, not 120 s
    db.dispose()


def test_feishu_card_shown_once_after_sigkill_mid_post(url, tmp_path):
    db, task_id = prepare(url, "feishu")
    fake = FakeFeishu("cli_crashtest", "app-secret").start()
    env = {"FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": "app-secret",
           "FEISHU_VERIFICATION_TOKEN": "vtoken", "PROMOPILOT_FEISHU_DOMAIN": fake.url,
           "PROMOPILOT_FEISHU_MODE": "http"}
    try:
        fake.hold()
        kill_mid_post(db, tmp_path, "feishu", env, lambda: fake.held)
        fake.release()
        restart_and_deliver(db, tmp_path, "feishu", env)
    finally:
        fake.release()
        fake.stop()
    cards = [s for s in fake.in_chat(CHANNEL["feishu"]) if s.msg_type == "interactive"]
    assert len(cards) == 1  # the retry's uuid named the first post, though the card changed
    assert "已认领" in json.dumps(cards[0].card, ensure_ascii=False)  # patched to now
    creates = [c for c in fake.creates if c["msg_type"] == "interactive"]
    assert len(creates) == 2 and creates[0]["uuid"] == creates[1]["uuid"]  # same key again
    assert shown(db, "feishu", task_id).message_ref == cards[0].message_id
    db.dispose()


def test_dingtalk_card_shown_once_after_sigkill_mid_post(url, tmp_path):
    db, task_id = prepare(url, "dingtalk")
    fake = FakeDingTalk().start()
    env = {"DINGTALK_CLIENT_ID": fake.client_id, "DINGTALK_CLIENT_SECRET": fake.client_secret,
           "DINGTALK_CARD_TEMPLATE_ID": "promopilot-card.schema",
           "PROMOPILOT_DINGTALK_API_URL": fake.url, "PROMOPILOT_DINGTALK_STREAM": "false"}
    try:
        fake.hold("/v1.0/card/instances/createAndDeliver")
        kill_mid_post(db, tmp_path, "dingtalk", env, lambda: fake.held)
        fake.release()
        restart_and_deliver(db, tmp_path, "dingtalk", env)
    finally:
        fake.release()
        fake.stop()
    cards = fake.card_in(CHANNEL["dingtalk"])
    assert len(cards) == 1 and len(fake.creates) == 1  # found and updated, not created again
    assert cards[0]["params"]["subtitle"] == "已认领"  # refreshed in place
    out_track_id = cards[0]["create"]["outTrackId"]
    assert shown(db, "dingtalk", task_id).message_ref == f"card:{out_track_id}"
    db.dispose()
