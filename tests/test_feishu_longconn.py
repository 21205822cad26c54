"""The long-connection mode: chosen when there is no public URL, wired to the same handlers.

There is no fake websocket gateway, so this checks construction, handler wiring through the
SDK's own long-connection dispatch path, and that the client's own thread asks the open
platform for an endpoint, survives the refusal (the SDK keeps reconnecting) and stops.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from lark_oapi.core.json import JSON

import adapters.chat.feishu as feishu
from adapters.chat.feishu.longconn import LongConnection
from adapters.chat.feishu.settings import FeishuSettings
from bot.core.settings import Settings
from tests.fakes.feishu import card_action, message_event
from tests.test_feishu_contract import CHAT, KEY, Env, _env, button, card_of, new_notice, task


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


def test_long_connection_events_reach_the_same_handlers(feishu_env: Env):
    env = feishu_env
    inbound = env.live.container.extras["feishu"]
    settings = FeishuSettings(app_id=env.fake.app_id, app_secret="app-secret",
                              domain=env.fake.url, _env_file=None)
    connection = LongConnection(settings, inbound)
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    click = card_action(button(sent.card, "认领"), open_id="ou_lina", chat_id=CHAT,
                        message_id=sent.message_id, token="")
    result = json.loads(JSON.marshal(
        connection.handler._do_without_validation(json.dumps(click).encode())))
    assert result["toast"]["type"] == "success" and result["card"]["type"] == "raw"
    assert task(env, task_id).state == "claimed"
    connection.handler._do_without_validation(json.dumps(
        message_event(f"填报 {task_id}", chat_id=CHAT, open_id="ou_lina", token="")).encode())
    assert task(env, task_id).state == "drafting"

    asyncio.run(connection.start())
    deadline = time.monotonic() + 15
    while ("POST", "/callback/ws/endpoint") not in env.fake.requests:
        assert time.monotonic() < deadline, "the long connection never asked for an endpoint"
        time.sleep(0.05)
    assert connection.thread.is_alive() and connection.client is not None  # retrying
    asyncio.run(connection.stop())
    connection.thread.join(timeout=10)
    assert not connection.thread.is_alive()
