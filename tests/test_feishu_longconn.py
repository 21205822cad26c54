"""The long-connection mode: chosen when there is no public URL, answered like the endpoint.

lark-oapi's own ws client against a fake gateway on 127.0.0.1 (``tests/fakes/feishu_ws.py``:
Feishu's protobuf frames): clicks and messages work and are answered inside Feishu's 3 s,
one slow click does not hold the others, an event that cannot be stored is refused so
Feishu sends it again, and events in odd shapes are refused. Without a gateway the client
keeps asking for one and stops cleanly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

import adapters.chat.feishu as feishu
import adapters.chat.feishu.inbound as inbound_module
from adapters.chat.feishu.longconn import LongConnection
from adapters.chat.feishu.settings import FeishuSettings
from bot.core.i18n import t
from bot.core.settings import Settings
from tests.fakes.feishu import card_action, message_event
from tests.fakes.feishu_ws import FakeFeishuGateway
from tests.test_feishu_contract import (
    CHAT,
    KEY,
    Env,
    _env,
    button,
    card_of,
    new_notice,
    task,
    transitions,
)


@pytest.fixture
def feishu_env(settings, seeded, monkeypatch) -> Iterator[Env]:
    yield from _env(settings, seeded, monkeypatch, KEY)


def _container(public_url: str = "") -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(public_url=public_url, _env_file=None), db=None,
                           adapters={}, extras={})


async def _post(app: FastAPI, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feishu.test") as client:
        return await client.post("/feishu/events", content=body)


def test_install_needs_credentials_and_picks_the_receive_mode():
    empty = _container()
    feishu.install(empty, FastAPI(), FeishuSettings(app_id="", _env_file=None))
    assert "feishu" not in empty.adapters and not empty.extras
    creds = {"app_id": "cli_x", "app_secret": "s", "verification_token": "t",
             "_env_file": None}
    local = _container()
    feishu.install(local, FastAPI(), FeishuSettings(**creds))
    assert "feishu" in local.adapters and isinstance(local.extras["feishu_ws"], LongConnection)
    assert local.extras["feishu_ws"].start in local.extras["on_start"]
    public = _container("https://promo.example.com")
    app = FastAPI()
    feishu.install(public, app, FeishuSettings(**creds))
    assert "feishu_ws" not in public.extras
    answer = asyncio.run(_post(app, b'{"type": "event_callback"}'))
    assert answer.status_code == 401  # the endpoint is there and wants the token


@pytest.fixture
def gateway(feishu_env: Env) -> Iterator[tuple[Env, FakeFeishuGateway]]:
    """The app's Feishu inbound on a long connection to a fake gateway."""
    env = feishu_env
    env.fake.gateway = FakeFeishuGateway().start()
    inbound = env.live.container.extras["feishu"]
    settings = FeishuSettings(app_id=env.fake.app_id, app_secret="app-secret",
                              domain=env.fake.url, _env_file=None)
    connection = LongConnection(settings, inbound)
    asyncio.run(connection.start())
    try:
        env.fake.gateway.wait_connected()
        yield env, env.fake.gateway
    finally:
        asyncio.run(connection.stop())
        connection.thread.join(timeout=10)
        env.fake.gateway.stop()


def _claim_click(env: Env, task_id: int, open_id: str = "ou_lina",
                 event_id: str | None = None) -> dict:
    sent = card_of(env, task_id)
    return card_action(button(sent.card, "认领"), open_id=open_id, chat_id=CHAT,
                       message_id=sent.message_id, token="", event_id=event_id)


def test_long_connection_clicks_and_messages_work_like_the_endpoint(gateway):
    env, ws = gateway
    task_id = new_notice(env)
    click = _claim_click(env, task_id, event_id="ev-claim-1")
    answer = ws.answer(ws.push(click))
    assert answer["code"] == 200 and answer["data"]["toast"]["type"] == "success"
    assert answer["data"]["card"]["type"] == "raw"  # the card as it is now: claimed
    assert "李娜" in json.dumps(answer["data"]["card"]["data"], ensure_ascii=False)
    assert task(env, task_id).state == "claimed"
    again = ws.answer(ws.push(click))  # Feishu delivers the same event again
    assert again["data"]["toast"]["type"] == "info"
    assert transitions(env, task_id, "claim") == 1
    said = ws.answer(ws.push(message_event(f"填报 {task_id}", chat_id=CHAT,
                                           open_id="ou_lina", token="")))
    assert said["code"] == 200 and said["data"] is None
    assert task(env, task_id).state == "drafting"


def test_a_slow_click_does_not_hold_the_others_on_the_connection(gateway, monkeypatch):
    """The SDK calls its handler on its one loop: a click waiting for a slow result held
    every event behind it. Now the next person's click is answered while it waits."""
    env, ws = gateway
    slow_task, quick_task = new_notice(env, "慢 报名"), new_notice(env, "快 报名")
    handle = inbound_module.router.handle_click

    def handle_click(db, inbound, packed, comment):
        if f"|{slow_task}|" in packed:
            time.sleep(1.5)
        return handle(db, inbound, packed, comment)

    monkeypatch.setattr(inbound_module.router, "handle_click", handle_click)
    slow = ws.push(_claim_click(env, slow_task))
    quick = ws.push(_claim_click(env, quick_task, open_id="ou_alex"))
    quick_answer = ws.answer(quick)
    assert quick_answer["data"]["toast"]["type"] == "success"
    assert quick_answer["seconds"] < 1.0, quick_answer["seconds"]
    assert slow not in ws.answers  # still working on the slow one
    slow_answer = ws.answer(slow)
    assert slow_answer["data"]["toast"]["type"] == "success"
    assert slow_answer["seconds"] < 2.5
    assert task(env, slow_task).state == task(env, quick_task).state == "claimed"


def test_a_click_past_the_answer_time_says_working_on_it_and_its_card_follows(
        gateway, monkeypatch):
    env, ws = gateway
    task_id = new_notice(env)
    handle = inbound_module.router.handle_click

    def handle_click(db, inbound, packed, comment):
        time.sleep(3)
        return handle(db, inbound, packed, comment)

    monkeypatch.setattr(inbound_module.router, "handle_click", handle_click)
    answer = ws.answer(ws.push(_claim_click(env, task_id)))
    assert answer["seconds"] < 2.6, answer["seconds"]  # Feishu's limit is 3 s
    assert answer["data"] == {"toast": {"type": "info",
                                        "content": t("inbox.working", "zh-CN")}}
    sent = card_of(env, task_id)
    deadline = time.monotonic() + 15
    while not any("李娜" in patch for patch in sent.patches):  # the outbox updates it
        assert time.monotonic() < deadline, "the claimed card never came"
        env.drain()
        time.sleep(0.1)
    assert task(env, task_id).state == "claimed"


def test_an_event_that_cannot_be_stored_is_refused_for_feishu_to_send_again(
        gateway, monkeypatch, caplog):
    env, ws = gateway
    task_id = new_notice(env)
    inbox = env.live.container.extras["feishu"].inbox

    def away(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("the database went away"))

    monkeypatch.setattr(inbox, "accept", away)
    caplog.set_level(logging.ERROR)
    click = _claim_click(env, task_id, event_id="ev-retry")
    assert ws.answer(ws.push(click))["code"] == 500
    assert any("not stored" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    answer = ws.answer(ws.push(click))  # Feishu's retry, once the database is back
    assert answer["code"] == 200 and answer["data"]["toast"]["type"] == "success"
    assert task(env, task_id).state == "claimed"


def test_long_connection_events_in_odd_shapes_are_refused_and_the_clicker_told(
        gateway, caplog):
    env, ws = gateway
    task_id = new_notice(env)
    caplog.set_level(logging.INFO)
    bad_click = _claim_click(env, task_id)
    bad_click["event"]["operator"]["open_id"] = 7
    answer = ws.answer(ws.push(bad_click))
    assert answer["data"]["toast"] == {"type": "error",
                                       "content": t("inbound.unreadable_click", "zh-CN")}
    bad_message = message_event(f"认领 {task_id}", chat_id=CHAT, open_id="ou_lina", token="")
    bad_message["event"]["message"]["chat_id"] = 42
    assert ws.answer(ws.push(bad_message))["data"] is None
    assert ws.answer(ws.push(b"\x00 not json"))["code"] == 200
    refusals = [r for r in caplog.records if "feishu event refused" in r.getMessage()]
    assert len(refusals) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert task(env, task_id).state == "new"


def test_without_a_gateway_the_connection_keeps_asking_and_stops(feishu_env: Env):
    env = feishu_env
    inbound = env.live.container.extras["feishu"]
    settings = FeishuSettings(app_id=env.fake.app_id, app_secret="app-secret",
                              domain=env.fake.url, _env_file=None)
    connection = LongConnection(settings, inbound)
    asyncio.run(connection.start())
    deadline = time.monotonic() + 15
    while ("POST", "/callback/ws/endpoint") not in env.fake.requests:
        assert time.monotonic() < deadline, "the long connection never asked for an endpoint"
        time.sleep(0.05)
    assert connection.thread.is_alive() and connection.client is not None  # retrying
    asyncio.run(connection.stop())
    connection.thread.join(timeout=10)
    assert not connection.thread.is_alive()
