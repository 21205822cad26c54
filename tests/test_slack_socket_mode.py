"""Socket Mode (SLACK_APP_TOKEN set): the real slack-bolt socket client connects out to a
local fake of Slack's websocket, acks each envelope and does the same work as over HTTP."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from storage.models import ChatMessage, Task
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack, block_actions
from tests.test_slack_contract import CHANNEL, bind, button, publish, slack_user


@pytest.fixture
def fake():
    server = FakeSlack().start()
    server.start_socket_mode()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def slack_env(monkeypatch, fake):
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("PROMOPILOT_SLACK_API_URL", fake.api_url)


def test_socket_mode_click_and_slash_command(live, fake):
    db = live.container.db
    socket = fake.socket
    socket.wait_connected()
    assert fake.calls("apps.connections.open")[0].headers["Authorization"] == \
        f"Bearer {APP_TOKEN}"
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob Socket")
    task_id = publish(db, "Socket Mode 测试")
    live.drain()
    call = fake.wait_for("chat.postMessage", where=lambda c: f"#{task_id} " in json.dumps(
        c.body.get("blocks") or [], ensure_ascii=False))[0]
    with db.session() as s:
        ts = s.exec(select(ChatMessage.message_ref).where(ChatMessage.chat == "slack")).one()

    element = button(call, "claim")
    socket.push("interactive", block_actions(
        user="U0BOB", channel=CHANNEL, message_ts=ts, action_id=element["action_id"],
        value=element["value"], trigger_id="sock-trig-1"), envelope_id="env-1")
    socket.wait_ack("env-1")
    update = fake.wait_for("chat.update", where=lambda c: "Bob Socket" in json.dumps(
        c.body.get("blocks"), ensure_ascii=False))[0]
    assert update.body["ts"] == ts
    with db.session() as s:
        assert s.get(Task, task_id).state == "claimed"

    command = {"token": "x", "team_id": "T0FAKE", "channel_id": CHANNEL, "user_id": "U0BOB",
               "command": "/promo", "text": "mine", "trigger_id": "sock-cmd-1",
               "response_url": fake.response_url("sock")}
    socket.push("slash_commands", command, envelope_id="env-2")
    socket.wait_ack("env-2")
    assert f"#{task_id}" in fake.wait_for("response/sock")[0].body["text"]
