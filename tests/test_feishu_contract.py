"""Feishu end to end: the real lark-oapi client against a local fake open API, and events
and card callbacks posted to ``/feishu/events`` in Feishu's shapes (encrypted + signed, and
plain with a verification token)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from bot.core.ports import Notice
from bot.core.settings import Settings
from bot.watch.ingest import ingest
from storage.db import Database
from storage.models import (
    AuditEvent,
    Campaign,
    ChatBinding,
    ChatIdentity,
    OutboxMessage,
    Task,
    User,
)
from storage.types import utcnow
from tests.conftest import LiveServer
from tests.fakes.feishu import (
    FakeFeishu,
    card_action,
    encrypt,
    message_event,
    signed,
)

TOKEN = "vtoken-test"
KEY = "encrypt-key-test"
CHAT = "oc_tmall_group"
PEOPLE = {"ou_lina": "li.na", "ou_alex": "alex", "ou_wang": "wang.fang", "ou_admin": "admin"}


@dataclass
class Env:
    fake: FakeFeishu
    live: LiveServer
    db: Database
    key: str | None

    def post(self, payload: dict, *, headers: dict | None = None,
             raw: bytes | None = None) -> httpx.Response:
        body = raw if raw is not None else self.wire(payload)
        hdrs = headers if headers is not None else self.headers(body)
        return httpx.post(f"{self.live.url}/feishu/events", content=body, headers=hdrs,
                          timeout=10)

    def wire(self, payload: dict) -> bytes:
        text = json.dumps(payload, ensure_ascii=False)
        if self.key:
            return json.dumps({"encrypt": encrypt(self.key, text)}).encode()
        return text.encode()

    def headers(self, body: bytes) -> dict:
        return signed(body, self.key) if self.key else {"Content-Type": "application/json"}

    def drain(self) -> None:
        self.live.drain()


def _env(settings: Settings, seeded: Database, monkeypatch: pytest.MonkeyPatch,
         key: str | None) -> Iterator[Env]:
    fake = FakeFeishu(f"cli_{secrets.token_hex(6)}", "app-secret").start()
    for name, value in {"FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": "app-secret",
                        "FEISHU_VERIFICATION_TOKEN": TOKEN, "FEISHU_ENCRYPT_KEY": key or "",
                        "PROMOPILOT_FEISHU_DOMAIN": fake.url,
                        "PROMOPILOT_FEISHU_MODE": "http"}.items():
        monkeypatch.setenv(name, value)
    with seeded.session() as session:
        session.add(ChatBinding(chat="feishu", channel_id=CHAT, channel_name="天猫群",
                                platform="tmall", purpose="notices"))
        for open_id, name in PEOPLE.items():
            user = session.exec(select(User).where(User.name == name)).one()
            session.add(ChatIdentity(user_id=user.id or 0, chat="feishu", external_id=open_id))
    from bot.web.app import create_app

    live = LiveServer(create_app(settings), settings).start()
    try:
        yield Env(fake, live, seeded, key)
    finally:
        live.stop()
        live.container.db.dispose()  # give the app's PostgreSQL connections back
        fake.stop()


@pytest.fixture
def env(settings, seeded, monkeypatch) -> Iterator[Env]:
    yield from _env(settings, seeded, monkeypatch, KEY)


@pytest.fixture
def plain_env(settings, seeded, monkeypatch) -> Iterator[Env]:
    yield from _env(settings, seeded, monkeypatch, None)


def new_notice(env: Env, title: str = "天猫 年货节 报名") -> int:
    now = utcnow()
    notice = Notice(platform="tmall", external_id=f"fs-{secrets.token_hex(4)}", title=title,
                    type="大促", registration_start=now, registration_end=now + timedelta(days=3),
                    event_start=now + timedelta(days=5), event_end=now + timedelta(days=8))
    report = ingest(env.db, [notice])
    assert report.new, report.failed
    env.drain()
    with env.db.session() as session:
        campaign = session.get(Campaign, report.new[0])
        return session.exec(select(Task).where(Task.campaign_id == campaign.id)).one().id


def card_of(env: Env, task_id: int):
    sent = [s for s in env.fake.in_chat(CHAT) if s.msg_type == "interactive"
            and s.card["header"]["title"]["content"].startswith(f"#{task_id} ")]
    assert len(sent) == 1, f"expected one card for task {task_id}, got {len(sent)}"
    return sent[0]


def button(card: dict, label: str) -> dict:
    def walk(node):
        if isinstance(node, dict):
            if node.get("tag") == "button" and node["text"]["content"] == label:
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return next(walk(card))["value"]


def task(env: Env, task_id: int) -> Task:
    with env.db.session() as session:
        return session.get(Task, task_id)


def transitions(env: Env, task_id: int, action: str) -> int:
    with env.db.session() as session:
        return len(session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action == action)).all())


# -- notice → card; click → toast + updated card ------------------------------------------

def test_notice_posts_a_card_and_a_claim_updates_it_in_place(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    assert sent.receive_id_type == "chat_id" and sent.uuid  # idempotent create
    assert sent.card["header"]["template"] == "blue"
    value = button(sent.card, "认领")
    response = env.post(card_action(value, open_id="ou_lina", chat_id=CHAT,
                                    message_id=sent.message_id, token=TOKEN))
    assert response.status_code == 200
    body = response.json()
    assert body["toast"]["type"] == "success" and "认领了任务" in body["toast"]["content"]
    new_card = body["card"]["data"]
    assert body["card"]["type"] == "raw"
    assert "李娜(运营)" in json.dumps(new_card, ensure_ascii=False)
    assert task(env, task_id).state == "claimed"
    env.drain()  # later updates go out as a message patch of the same message
    assert len(card_of(env, task_id).patches) >= 1
    assert "认领" not in [b["text"]["content"] for b in _buttons(card_of(env, task_id).card)]


def _buttons(card: dict) -> list[dict]:
    out = []
    for element in card["elements"]:
        out += element.get("actions", []) + [e for e in element.get("elements", [])
                                             if e.get("tag") == "button"]
    return out


def test_repeated_event_id_changes_state_once(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    event = card_action(button(sent.card, "认领"), open_id="ou_lina", chat_id=CHAT,
                        message_id=sent.message_id, token=TOKEN, event_id="evt-same")
    first, second = env.post(event).json(), env.post(event).json()
    assert first["toast"]["type"] == "success"
    assert second["toast"]["type"] == "info" and "已处理过" in second["toast"]["content"]
    assert transitions(env, task_id, "claim") == 1


def test_fifty_concurrent_claims_one_winner(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    value = button(sent.card, "认领")
    with env.db.session() as session:
        for i in range(50):
            user = User(name=f"ops{i}", display_name=f"运营{i}", roles=["ops"])
            session.add(user)
            session.flush()
            session.add(ChatIdentity(user_id=user.id or 0, chat="feishu",
                                     external_id=f"ou_ops{i}"))
    bodies = [env.wire(card_action(value, open_id=f"ou_ops{i}", chat_id=CHAT,
                                   message_id=sent.message_id, token=TOKEN))
              for i in range(50)]

    async def storm() -> list[dict]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*[
                client.post(f"{env.live.url}/feishu/events", content=b,
                            headers=env.headers(b)) for b in bodies])
        return [a.json() for a in answers]

    answers = asyncio.run(storm())
    wins = [a for a in answers if a.get("toast", {}).get("type") == "success"]
    assert len(wins) == 1, [a.get("toast") for a in answers]
    losers = [a["toast"]["content"] for a in answers if a not in wins]
    assert all("已被" in text or "过期" in text for text in losers), losers[:3]
    assert transitions(env, task_id, "claim") == 1


def test_needs_input_button_asks_for_a_reason_then_uses_the_form(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    value = button(sent.card, "放弃")
    bare = env.post(card_action(value, open_id="ou_wang", chat_id=CHAT,
                                message_id=sent.message_id, token=TOKEN)).json()
    assert bare["toast"]["type"] == "error" and "原因" in bare["toast"]["content"]
    done = env.post(card_action(value, open_id="ou_wang", chat_id=CHAT,
                                message_id=sent.message_id, token=TOKEN,
                                form_value={"comment": "库存不足"})).json()
    assert done["toast"]["type"] == "success", done
    assert task(env, task_id).state == "skipped"
    assert task(env, task_id).skip_reason == "库存不足"


def test_unknown_clicker_is_told_how_to_be_added(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    body = env.post(card_action(button(sent.card, "认领"), open_id="ou_stranger",
                                chat_id=CHAT, message_id=sent.message_id, token=TOKEN)).json()
    assert body["toast"]["type"] == "error"
    assert "用户 添加" in body["toast"]["content"] and "ou_stranger" in body["toast"]["content"]
    assert task(env, task_id).state == "new"


# -- security -------------------------------------------------------------------------------

def test_bad_token_signature_and_stale_timestamp_are_rejected(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    value = button(sent.card, "认领")
    good = card_action(value, open_id="ou_lina", chat_id=CHAT, message_id=sent.message_id,
                       token=TOKEN)
    wrong_token = card_action(value, open_id="ou_lina", chat_id=CHAT,
                              message_id=sent.message_id, token="forged")
    assert env.post(wrong_token).status_code == 401
    body = env.wire(good)
    tampered = dict(env.headers(body), **{"X-Lark-Signature": "0" * 64})
    assert env.post(good, raw=body, headers=tampered).status_code == 401
    stale = signed(body, KEY, timestamp=int(utcnow().timestamp()) - 3600)
    assert env.post(good, raw=body, headers=stale).status_code == 401
    no_headers = {"Content-Type": "application/json"}
    assert env.post(good, raw=body, headers=no_headers).status_code == 401
    other_key = json.dumps({"encrypt": encrypt("not-our-key", json.dumps(good))}).encode()
    assert env.post(good, raw=other_key, headers=signed(other_key, KEY)).status_code == 400
    plain = json.dumps(good).encode()
    assert env.post(good, raw=plain, headers=signed(plain, KEY)).status_code == 401
    assert task(env, task_id).state == "new"  # nothing got through
    assert env.post(good).json()["toast"]["type"] == "success"


def test_url_verification_challenge_encrypted(env):
    payload = {"challenge": "ch-123", "token": TOKEN, "type": "url_verification"}
    assert env.post(payload, headers={"Content-Type": "application/json"}).json() == {
        "challenge": "ch-123"}
    forged = {"challenge": "ch-123", "token": "nope", "type": "url_verification"}
    assert env.post(forged).status_code == 401


def test_plain_mode_checks_the_verification_token(plain_env):
    env = plain_env
    challenge = {"challenge": "abc", "token": TOKEN, "type": "url_verification"}
    assert env.post(challenge).json() == {"challenge": "abc"}
    assert env.post(dict(challenge, token="x")).status_code == 401
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    answer = env.post(card_action(button(sent.card, "认领"), open_id="ou_alex", chat_id=CHAT,
                                  message_id=sent.message_id, token=TOKEN)).json()
    assert answer["toast"]["type"] == "success" and "claimed task" in answer["toast"]["content"]


def test_untrusted_notice_title_renders_as_literal_text(env):
    evil = '<at user_id="all"></at>"}]}, {"tag": "x"} **粗体** [链接](https://evil.example)'
    task_id = new_notice(env, title=evil)
    sent = card_of(env, task_id)
    raw = sent.content  # what went over the wire, as Feishu would parse it
    card = json.loads(raw)
    ours = [e for e in card["elements"] if e.get("text", {}).get("tag") == "lark_md"]
    assert all(re.fullmatch(r"(<at id=ou_\w+></at> ?)+", e["text"]["content"]) for e in ours)
    rest = json.dumps({**card, "elements": [e for e in card["elements"] if e not in ours]},
                      ensure_ascii=False)
    assert "<at" not in rest.lower()  # the title's tag is neutralised
    title = card["header"]["title"]
    assert title["tag"] == "plain_text"
    assert title["content"].replace("\u200b", "") == f"#{task_id} [天猫] {evil}"
    assert '"tag": "x"' not in json.dumps(card["elements"], ensure_ascii=False)


# -- text commands -------------------------------------------------------------------------

def test_text_commands_in_the_group_zh_and_en(env):
    task_id = new_notice(env)
    answer = env.post(message_event(f"认领 {task_id}", chat_id=CHAT, open_id="ou_lina",
                                    token=TOKEN))
    assert answer.status_code == 200
    assert task(env, task_id).state == "claimed"
    listed = env.post(message_event("list", chat_id=CHAT, open_id="ou_alex", token=TOKEN))
    assert listed.status_code == 200
    env.drain()
    to_lina = [json.loads(s.content) for s in env.fake.to_user("ou_lina")]
    assert any("认领了任务" in json.dumps(m, ensure_ascii=False) for m in to_lina)
    to_alex = json.dumps([json.loads(s.content) for s in env.fake.to_user("ou_alex")],
                         ensure_ascii=False)
    assert f"#{task_id}" in to_alex
    assert all(s.msg_type == "post" for s in env.fake.to_user("ou_alex"))
    assert env.fake.to_user("ou_alex")[0].receive_id_type == "open_id"


def test_status_command_answers_with_the_task_card(env):
    task_id = new_notice(env)
    other = "oc_other_group"
    env.post(message_event(f"status {task_id}", chat_id=other, open_id="ou_alex", token=TOKEN))
    env.drain()
    brought = [s for s in env.fake.in_chat(other) if s.msg_type == "interactive"]
    assert len(brought) == 1  # the task's card, now kept up to date in this chat too
    assert brought[0].card["header"]["title"]["content"].startswith(f"#{task_id} ")
    assert "Claim" in json.dumps(brought[0].card) or "认领" in json.dumps(
        brought[0].card, ensure_ascii=False)
    env.post(message_event(f"状态 {task_id}", chat_id=CHAT, open_id="ou_lina", token=TOKEN))
    env.drain()
    assert len([s for s in env.fake.in_chat(CHAT) if s.msg_type == "interactive"]) == 1
    answer = env.fake.to_user("ou_lina")[-1]
    assert answer.msg_type == "post" and "待认领" in answer.content


def test_group_message_without_bot_mention_is_ignored_and_redelivery_answered_once(env):
    task_id = new_notice(env)
    env.post(message_event(f"认领 {task_id}", chat_id=CHAT, open_id="ou_lina", token=TOKEN,
                           mention_bot=False))
    assert task(env, task_id).state == "new"
    event = message_event("我的", chat_id=CHAT, open_id="ou_lina", token=TOKEN,
                          message_id="om_once")
    for _ in range(3):  # Feishu re-delivers
        assert env.post(event).status_code == 200
    env.drain()
    assert len(env.fake.to_user("ou_lina")) == 1


def test_unknown_user_is_told_how_to_be_added_and_admin_can_add_by_mention(env):
    env.post(message_event("列表", chat_id=CHAT, open_id="ou_newbie", token=TOKEN))
    env.drain()
    told = env.fake.to_user("ou_newbie")
    assert len(told) == 1 and "用户 添加" in told[0].content and "ou_newbie" in told[0].content
    env.post(message_event("user add xiao.ming ops @_user_2", chat_id=CHAT,
                           open_id="ou_admin", token=TOKEN,
                           others=[("ou_newbie", "小明")]))
    with env.db.session() as session:
        ident = session.exec(select(ChatIdentity).where(
            ChatIdentity.chat == "feishu", ChatIdentity.external_id == "ou_newbie")).one()
        assert session.get(User, ident.user_id).name == "xiao.ming"


def test_person_added_by_employee_id_is_found_through_the_contact_api(env):
    with env.db.session() as session:
        user = session.exec(select(User).where(User.name == "chen.jing")).one()
        session.add(ChatIdentity(user_id=user.id or 0, chat="feishu", external_id="e1001"))
    env.fake.add_user("ou_chenjing", "陈静", user_id="e1001")
    env.post(message_event("mine", chat_id=CHAT, open_id="ou_chenjing", token=TOKEN))
    with env.db.session() as session:
        linked = session.exec(select(ChatIdentity).where(
            ChatIdentity.chat == "feishu", ChatIdentity.external_id == "ou_chenjing")).one()
        assert linked.user_id == user.id
    env.drain()
    assert "用户 添加" not in env.fake.to_user("ou_chenjing")[0].content


# -- outbound failures ----------------------------------------------------------------------

def test_rate_limit_answers_are_waited_out_nothing_dropped(env):
    env.fake.rate_limit(2, reset_seconds="1")
    task_id = new_notice(env)
    assert len(env.fake.rate_limited) == 2
    sent = card_of(env, task_id)  # exactly one card despite the retries
    assert sent.receive_id == CHAT
    env.fake.rate_limit(1, reset_seconds="0", status=400)  # Feishu's 400 + code 99991400
    env.post(card_action(button(sent.card, "认领"), open_id="ou_lina", chat_id=CHAT,
                         message_id=sent.message_id, token=TOKEN))
    env.drain()
    assert len(env.fake.rate_limited) == 3
    assert card_of(env, task_id).patches  # the update arrived after the limit


def test_expired_token_is_fetched_again(env):
    new_notice(env)
    env.fake.token = "t-rotated"  # Feishu invalidated the cached tenant token
    task_id = new_notice(env, "京东 秒杀")
    assert card_of(env, task_id)
    assert env.fake.requests.count(
        ("POST", "/open-apis/auth/v3/tenant_access_token/internal")) == 2


def test_gateway_errors_retry_and_long_limits_wait_in_the_outbox(env):
    env.fake.fail_next = 1  # a bare 500 from the gateway
    task_id = new_notice(env)
    assert len(env.fake.failures) == 1
    sent = card_of(env, task_id)  # retried, posted once
    env.fake.rate_limit(1, reset_seconds="30")  # too long to wait inline
    env.post(card_action(button(sent.card, "认领"), open_id="ou_lina", chat_id=CHAT,
                         message_id=sent.message_id, token=TOKEN))
    env.drain()
    assert not card_of(env, task_id).patches
    with env.db.session() as session:
        row = session.exec(select(OutboxMessage).where(
            OutboxMessage.chat == "feishu", OutboxMessage.task_id == task_id,
            OutboxMessage.status == "pending")).one()
        assert "rate limit" in (row.last_error or "")
        assert row.next_attempt_at >= utcnow() + timedelta(seconds=25)  # Feishu's reset
        row.next_attempt_at = utcnow()  # time passes …
        session.add(row)
    env.live.container.adapters["feishu"].limiter.release(CHAT)  # … for the limiter too
    env.drain()
    assert card_of(env, task_id).patches  # nothing dropped


def test_refused_direct_message_falls_back_to_the_chat_and_others_mentions_are_ignored(env):
    env.fake.closed_to.add("ou_outsider")
    env.post(message_event("列表", chat_id=CHAT, open_id="ou_outsider", token=TOKEN))
    env.drain()
    said = [s for s in env.fake.in_chat(CHAT) if s.msg_type == "post"]
    assert len(said) == 1 and "用户 添加" in said[0].content
    env.post(message_event("列表", chat_id=CHAT, open_id="ou_lina", token=TOKEN,
                           mention_bot=False, others=[("ou_alex", "Alex")]))
    env.drain()
    assert env.fake.to_user("ou_lina") == []  # talking to Alex, not to the bot



def test_later_system_update_patches_the_same_feishu_card(env):
    """The marketplace changes the notice (a system-side update, like a review result):
    the card already in the chat is patched, no second message."""
    now = utcnow()
    notice = Notice(platform="tmall", external_id="fs-later", title="天猫 美妆节", type="大促",
                    registration_start=now, registration_end=now + timedelta(days=3),
                    event_start=now + timedelta(days=5), event_end=now + timedelta(days=8))
    ingest(env.db, [notice])
    env.drain()
    with env.db.session() as session:
        task_id = session.exec(select(Task).join(Campaign, Task.campaign_id == Campaign.id)
                               .where(Campaign.external_id == "fs-later")).one().id
    before = card_of(env, task_id).card
    notice.registration_end = now + timedelta(days=9)
    assert ingest(env.db, [notice]).updated
    env.drain()
    sent = card_of(env, task_id)  # still exactly one message for the task
    assert sent.patches and sent.card != before
    assert "通知已更新" in json.dumps(sent.card, ensure_ascii=False)  # footer: notice updated
    others = [s for s in env.fake.in_chat(CHAT) if s.message_id != sent.message_id]
    assert all(s.card["header"]["title"]["tag"] == "plain_text" for s in others)


def test_card_mentions_become_feishu_mentions_of_known_people(env):
    from cards.model import Card

    adapter = env.live.container.adapters["feishu"]
    card = Card(kind="reminder", title="催办 <at id=all></at>", color="orange",
                mentions=["li.na", "wang.fang", "chen.jing", "all"])
    loop = env.live.container.extras["loop"]
    ref = asyncio.run_coroutine_threadsafe(adapter.post_card(CHAT, card), loop).result(10)
    posted = env.fake.messages[ref].card
    mention = posted["elements"][0]["text"]
    assert mention["tag"] == "lark_md"
    assert mention["content"] == "<at id=ou_lina></at> <at id=ou_wang></at>"
    raw = json.dumps(posted, ensure_ascii=False)
    assert raw.count("<at ") == 2  # ours; the title's tag is neutralised
    assert posted["header"]["title"]["content"].replace("\u200b", "") == card.title


def test_slow_work_is_still_acknowledged_inside_feishus_three_seconds(env):
    task_id = new_notice(env)
    sent = card_of(env, task_id)
    env.fake.contact_delay = 4.0  # looking up the unknown clicker takes too long
    started = time.monotonic()
    answer = env.post(card_action(button(sent.card, "认领"), open_id="ou_slow", chat_id=CHAT,
                                  message_id=sent.message_id, token=TOKEN))
    assert time.monotonic() - started < 3.0
    assert answer.status_code == 200
    assert answer.json()["toast"]["type"] == "info"  # "working on it", not silence
    assert "正在处理" in answer.json()["toast"]["content"]
    # when the work is done the clicker hears the result privately
    deadline = time.monotonic() + 15
    while not env.fake.to_user("ou_slow") and time.monotonic() < deadline:
        env.drain()
        time.sleep(0.2)
    told = env.fake.to_user("ou_slow")
    assert len(told) == 1 and "ou_slow" in told[0].content  # how to be added
    env.fake.contact_delay = 0.0


def test_a_slow_card_read_still_answers_in_time_with_the_toast(env, monkeypatch):
    """The claim is done inside the budget but reading the card back is slow (a busy
    database): the answer still leaves before Feishu's 3 s, with the result's toast and
    without the card, whose update follows as a message patch."""
    from adapters.chat.feishu import inbound

    task_id = new_notice(env)
    sent = card_of(env, task_id)
    read = inbound.current_card

    def slow(*args, **kwargs):
        time.sleep(3.5)
        return read(*args, **kwargs)

    monkeypatch.setattr(inbound, "current_card", slow)
    started = time.monotonic()
    answer = env.post(card_action(button(sent.card, "认领"), open_id="ou_lina", chat_id=CHAT,
                                  message_id=sent.message_id, token=TOKEN))
    assert time.monotonic() - started < 3.0
    assert answer.status_code == 200
    body = answer.json()
    assert body["toast"]["type"] == "success" and "认领了任务" in body["toast"]["content"]
    assert "card" not in body
    monkeypatch.setattr(inbound, "current_card", read)
    assert task(env, task_id).state == "claimed"
    env.drain()
    assert "认领" not in [b["text"]["content"] for b in _buttons(card_of(env, task_id).card)]


def test_untrusted_titles_in_text_answers_cannot_mention_anyone(env):
    new_notice(env, title='<at user_id="all">所有人</at> 限时 **抢购**')
    env.post(message_event("列表", chat_id=CHAT, open_id="ou_lina", token=TOKEN))
    env.drain()
    answer = env.fake.to_user("ou_lina")[-1]
    assert answer.msg_type == "post"
    runs = [run for para in json.loads(answer.content)["zh_cn"]["content"] for run in para]
    assert all(run["tag"] == "text" for run in runs)  # no "at" element, no markdown
    assert "<at" not in answer.content
    assert any('<at user_id="all">所有人</at> 限时 **抢购**' in run["text"].replace("\u200b", "")
               for run in runs)  # shown literally


def test_cards_go_out_over_kept_alive_connections(env):
    """lark-oapi's transport opened a TCP connection for every call; ten cards and their
    updates now share a connection or two (one per worker thread), as a client of
    Feishu's HTTPS API should."""
    before = len(env.fake.connections)
    tasks = [new_notice(env, f"天猫 会场 {n} 报名") for n in range(10)]
    calls = len(env.fake.requests)
    assert all(card_of(env, t) for t in tasks) and calls >= 10
    opened = len(env.fake.connections) - before
    assert opened <= 3, f"{opened} connections for {calls} calls"


def _claim_click(env: Env, task_id: int, open_id: str = "ou_lina") -> dict:
    sent = card_of(env, task_id)
    return card_action(button(sent.card, "认领"), open_id=open_id, chat_id=CHAT,
                       message_id=sent.message_id, token=TOKEN)


def test_time_before_the_endpoint_counts_toward_feishus_three_seconds(env, monkeypatch):
    """A click that waited 1.6 s before reaching us (a peak's accept queue) has ~1.4 s of
    Feishu's 3 s left: a slow result is not waited for the full 2 s but answered "working on
    it" at once, and the click is still done. The same click sent just now waits for it."""
    from adapters.chat.feishu import inbound as feishu_inbound
    from bot.core.i18n import t

    handle = feishu_inbound.router.handle_click

    def handle_click(db, inbound, packed, comment):
        time.sleep(1.0)
        return handle(db, inbound, packed, comment)

    monkeypatch.setattr(feishu_inbound.router, "handle_click", handle_click)
    late, fresh = new_notice(env, "晚到 报名"), new_notice(env, "准时 报名")
    click = _claim_click(env, late)
    click["header"]["create_time"] = str(int((time.time() - 1.6) * 1000))
    started = time.monotonic()
    answer = env.post(click).json()
    assert time.monotonic() - started < 0.9
    assert answer == {"toast": {"type": "info", "content": t("inbox.working", "zh-CN")}}
    on_time = env.post(_claim_click(env, fresh, open_id="ou_alex")).json()
    assert on_time["toast"]["type"] == "success"  # waited for the 1 s result
    deadline = time.monotonic() + 10
    while task(env, late).state != "claimed":
        assert time.monotonic() < deadline, "the late click was never done"
        time.sleep(0.05)
