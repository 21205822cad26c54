"""What each chat adapter does with the outbox's key, against the local fakes with the real
SDKs: a retry of a post whose outcome is unknown shows the message once; and a slow Slack
click gets "working on it" first, then the result."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlmodel import select

from adapters.chat.dingtalk import build_adapter
from adapters.chat.dingtalk.settings import DingTalkSettings
from adapters.chat.feishu.adapter import FeishuAdapter
from adapters.chat.feishu.settings import FeishuSettings
from adapters.chat.slack.client import SlackChatAdapter
from adapters.chat.slack.settings import SlackSettings
from bot.core.leases import get_lease_settings
from bot.core.users import add_user
from cards.callback import CallbackData
from cards.model import Button, Card
from storage.models import Task
from storage.types import utcnow
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, block_actions, form, post


def card(subtitle: str = "待认领") -> Card:
    return Card(kind="task", title="#7 [天猫] 年货节", subtitle=subtitle, task_id=7, version=1,
                buttons=[Button(label="认领", action="claim", value="pp1|claim|7|1")])


@pytest.fixture
def slack():
    server = FakeSlack().start()
    yield server
    server.stop()


def slack_adapter(fake: FakeSlack) -> SlackChatAdapter:
    return SlackChatAdapter(SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                                          api_url=fake.api_url, _env_file=None))


async def test_slack_retry_finds_the_earlier_post_by_its_metadata(slack):
    adapter = slack_adapter(slack)
    started = utcnow()
    ts = await adapter.post_card("C0TMALL", card(), key="k-1")
    again = await adapter.post_card("C0TMALL", card(), key="k-1", unsure_since=started)
    assert again == ts and len(slack.messages("C0TMALL")) == 1
    history = slack.calls("conversations.history")[0].body
    assert history["channel"] == "C0TMALL" and float(history["oldest"]) < started.timestamp()
    # another key is another message; a retry of a DM looks in the person's DM
    await adapter.post_card("C0TMALL", card(), key="k-2", unsure_since=started)
    assert len(slack.messages("C0TMALL")) == 2
    await adapter.send_private("U0BOB", "你好", key="k-dm")
    await adapter.send_private("U0BOB", "你好", key="k-dm", unsure_since=started)
    assert len(slack.messages("U0BOB")) == 1 and slack.calls("conversations.open")


async def test_slack_posts_again_when_it_may_not_look(slack):
    adapter = slack_adapter(slack)
    slack.fail_next("conversations.history", 200, body={"ok": False, "error": "missing_scope"})
    await adapter.post_card("C0TMALL", card(), key="k-1")
    await adapter.post_card("C0TMALL", card(), key="k-1", unsure_since=utcnow())
    assert len(slack.messages("C0TMALL")) == 2  # logged: it may show twice without the scope


async def test_feishu_retry_with_the_same_key_is_one_message():
    fake = FakeFeishu("cli_keys", "app-secret").start()
    try:
        adapter = FeishuAdapter(FeishuSettings(app_id=fake.app_id, app_secret="app-secret",
                                               domain=fake.url, _env_file=None))
        first = await adapter.post_card("oc_1", card(), key="k-1")
        again = await adapter.post_card("oc_1", card("已认领"), key="k-1",
                                        unsure_since=utcnow())
        assert again == first and len(fake.in_chat("oc_1")) == 1
        other = await adapter.post_card("oc_1", card(), key="k-2")
        assert other != first  # same content, another post: shown
        fake.uuid_window = 0  # Feishu forgets a uuid after an hour
        late = await adapter.post_card("oc_1", card(), key="k-1",
                                       unsure_since=utcnow() - timedelta(hours=2))
        assert late != first  # the documented limit: logged as a possible duplicate
    finally:
        fake.stop()


async def test_dingtalk_retry_updates_the_card_it_already_made():
    fake = FakeDingTalk().start()
    try:
        adapter = build_adapter(DingTalkSettings(
            client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
            card_template_id="promopilot-card.schema", _env_file=None), None)
        ref = await adapter.post_card("cidGROUP", card(), key="k-1")
        again = await adapter.post_card("cidGROUP", card("已认领"), key="k-1",
                                        unsure_since=utcnow())
        assert again == ref and len(fake.creates) == 1
        [shown] = fake.card_in("cidGROUP")
        assert shown["params"]["subtitle"] == "已认领"
        fresh = await adapter.post_card("cidGROUP", card(), key="k-2", unsure_since=utcnow())
        assert fresh != ref and len(fake.card_in("cidGROUP")) == 2  # not there: created
    finally:
        fake.stop()


@pytest.fixture
def slow_slack(monkeypatch, slack, settings, seeded):
    from bot.web.app import create_app
    from tests.conftest import LiveServer

    for name, value in {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                        "PROMOPILOT_SLACK_API_URL": slack.api_url,
                        "PROMOPILOT_INBOX_PAUSE_MS": "2500"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    get_lease_settings.cache_clear()
    server = LiveServer(create_app(settings), settings).start()
    yield server
    server.stop()
    get_lease_settings.cache_clear()


def test_a_slow_slack_click_hears_working_on_it_then_the_result(slow_slack, slack):
    db = slow_slack.container.db
    with db.session() as s:
        add_user(s, "bob", ["ops"], display_name="Bob", chat="slack", external_id="U0BOB",
                 lang="en")
        task_id = s.exec(select(Task.id).order_by(Task.id)).first()
    payload = block_actions(user="U0BOB", channel="C0TMALL", message_ts="1.0",
                            action_id="pp:claim", value=CallbackData("claim", task_id, 1).pack(),
                            trigger_id="trig-slow")
    assert post(f"{slow_slack.url}/slack/events", form(payload)).status_code == 200
    note = slack.wait_for("chat.postEphemeral", timeout=10)[0].body
    assert note["user"] == "U0BOB" and "working on it" in json.dumps(note).lower()
    deadline = utcnow() + timedelta(seconds=15)
    while utcnow() < deadline:
        with db.session() as s:
            if s.get(Task, task_id).state == "claimed":
                break
        time.sleep(0.1)
    with db.session() as s:
        assert s.get(Task, task_id).state == "claimed"  # the work was done after all
