"""Malformed chat payloads, the cases the fuzzing found (tests/test_fuzz_inbound.py), each
refused the way its platform expects: Slack 400 with ``X-Slack-No-Retry``; Feishu 200 (an
error toast for a click, ``{}`` for a message); DingTalk a private note to the sender. Always
one log line saying why, never a 500, a traceback, 出错了 or an action, and nothing stored in
the inbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.core.i18n import t
from storage.models import AuditEvent, InboxEvent, OutboxMessage, Task

FEISHU_TOKEN = "malformed-verification-token"


def state(db) -> tuple:
    with db.session() as s:
        tasks = tuple(s.exec(select(Task.id, Task.state, Task.version).order_by(Task.id)))
        audits = s.exec(select(func.count()).select_from(AuditEvent)).one()
        inbox = s.exec(select(func.count()).select_from(InboxEvent)).one()
    return tasks, audits, inbox


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def refusals(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(text)]


@pytest.fixture
def slack(seeded, settings, monkeypatch):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack

    fake = FakeSlack().start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("PROMOPILOT_SLACK_API_URL", fake.api_url)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client
    finally:
        fake.stop()


def _slack_cases() -> list[tuple[str, str, str]]:
    from tests.fakes.slack import form

    click = {"type": "block_actions", "trigger_id": "t1", "user": {"id": "U0ALEX"},
             "channel": {"id": "C0TMALL"},
             "actions": [{"action_id": "pp:claim", "value": "pp1|claim|1|1", "type": "button"}]}
    form_type = "application/x-www-form-urlencoded"
    return [
        ("view null", form_type, form({"type": "view_submission", "view": None})),
        ("payload not JSON", form_type, "payload=%7Bnot-json"),
        ("payload empty", form_type, "payload="),
        ("payload a list", form_type, form([1, 2])),  # type: ignore[arg-type]
        ("user 5", form_type, form({**click, "user": 5})),
        ("user id 5", form_type, form({**click, "user": {"id": 5}})),
        ("actions empty", form_type, form({**click, "actions": []})),
        ("event user 5", "application/json", json.dumps({
            "type": "event_callback", "event_id": "Ev1",
            "event": {"type": "app_mention", "user": 5, "channel": "C0TMALL",
                      "text": "<@UPROMOBOT> 认领 1"}})),
        ("event null", "application/json", json.dumps({"type": "event_callback",
                                                       "event": None})),
        ("modal metadata not JSON", form_type, form({
            "type": "view_submission", "user": {"id": "U0ALEX"},
            "view": {"id": "V1", "callback_id": "pp_comment", "private_metadata": "{x",
                     "state": {"values": {"comment": {"text": {"value": "why"}}}}}})),
    ]


def test_signed_but_malformed_slack_payloads_are_refused_without_retry(slack, seeded, caplog):
    from tests.fakes.slack import SIGNING_SECRET, sign

    before = state(seeded)
    caplog.set_level(logging.INFO)
    for name, content_type, raw in _slack_cases():
        answer = slack.post("/slack/events", content=raw.encode(),
                            headers={"Content-Type": content_type, **sign(raw)})
        assert answer.status_code == 400, (name, answer.status_code, answer.text)
        assert answer.headers.get("x-slack-no-retry") == "1", name
    not_utf8, ts = b"payload=\xff\xfe", str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + not_utf8,
                      hashlib.sha256).hexdigest()
    answer = slack.post("/slack/events", content=not_utf8, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"})
    assert answer.status_code == 400
    refused = refusals(caplog, "slack payload refused")
    assert len(refused) >= len(_slack_cases())
    assert {"user is neither text nor an object", "view is not an object",
            "payload is not JSON", "body is not UTF-8"} <= {r.reason for r in refused}  # type: ignore[attr-defined]
    assert not errors(caplog), errors(caplog)[:3]
    assert state(seeded) == before  # nothing stored, nothing done


def test_unsigned_malformed_slack_payload_is_401_not_400(slack):
    from tests.fakes.slack import sign

    raw = "payload=%7Bnot-json"
    answer = slack.post("/slack/events", content=raw.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", **sign(raw, secret="wrong")})
    assert answer.status_code == 401
    stale = slack.post("/slack/events", content=raw.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"})
    assert stale.status_code == 401


@pytest.fixture
def feishu(seeded, settings, monkeypatch):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    monkeypatch.setenv("FEISHU_APP_ID", "cli_malformed")
    monkeypatch.setenv("FEISHU_APP_SECRET", "malformed-secret")
    monkeypatch.setenv("FEISHU_VERIFICATION_TOKEN", FEISHU_TOKEN)
    monkeypatch.setenv("PROMOPILOT_FEISHU_DOMAIN", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("PROMOPILOT_FEISHU_MODE", "http")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app.state.container.extras["feishu"]


def _feishu(event_type: str, event: object) -> dict:
    return {"schema": "2.0", "header": {"token": FEISHU_TOKEN, "event_type": event_type,
                                        "event_id": f"ev-{abs(hash(repr(event)))}"},
            "event": event}


MESSAGE = {"sender": {"sender_type": "user", "sender_id": {"open_id": "ou_wang"}},
           "message": {"message_id": "om_1", "chat_id": "oc_1", "chat_type": "p2p",
                       "message_type": "text", "content": json.dumps({"text": "认领 1"})}}
CLICK = {"operator": {"open_id": "ou_wang"}, "token": "c-1",
         "action": {"value": {"pp": "pp1|claim|1|1"}, "tag": "button"},
         "context": {"open_chat_id": "oc_1", "open_message_id": "om_card"}}


def test_feishu_events_in_odd_shapes_are_refused_with_feishus_non_retry_answer(feishu, seeded,
                                                                               caplog):
    client, _ = feishu
    before = state(seeded)
    caplog.set_level(logging.INFO)
    messages = [
        {**MESSAGE, "message": 5},
        {**MESSAGE, "sender": {"sender_id": {"open_id": {"id": "ou_wang"}}}},
        {**MESSAGE, "message": {**MESSAGE["message"], "content": "[1, 2]"}},
        {**MESSAGE, "message": {**MESSAGE["message"], "message_type": "post",
                                "content": json.dumps({"content": ["not a paragraph"]})}},
        {**MESSAGE, "message": {**MESSAGE["message"], "mentions": [5]}},
        {**MESSAGE, "message": {**MESSAGE["message"], "chat_id": {"oc": 1}}},
        "a string, not an event",
    ]
    for event in messages:
        answer = client.post("/feishu/events", json=_feishu("im.message.receive_v1", event))
        assert answer.status_code == 200 and answer.json() == {}, (event, answer.text)
    clicks = [
        {**CLICK, "operator": {"open_id": ["ou_wang"]}},
        {**CLICK, "action": {"value": "pp1|claim|1|1"}},
        {**CLICK, "action": {"value": {"pp": 17}}},
        {**CLICK, "action": {**CLICK["action"], "form_value": {"comment": {"x": 1}}}},
        {**CLICK, "context": []},
    ]
    for event in clicks:
        answer = client.post("/feishu/events", json=_feishu("card.action.trigger", event))
        assert answer.status_code == 200, (event, answer.text)
        toast = answer.json()["toast"]
        assert toast == {"type": "error", "content": t("inbound.unreadable_click", "zh-CN")}
    assert len(refusals(caplog, "feishu event refused")) == len(messages) + len(clicks)
    assert not errors(caplog), errors(caplog)[:3]  # no "feishu event handling failed"
    assert state(seeded) == before


def test_dingtalk_frames_in_odd_shapes_are_refused_and_the_sender_told(seeded, caplog):
    from adapters.chat.dingtalk.inbound import Inbox
    from adapters.chat.dingtalk.settings import DingTalkSettings

    inbox = Inbox(seeded, DingTalkSettings(_env_file=None), kick=lambda: None)
    before = state(seeded)
    caplog.set_level(logging.INFO)
    person = {"senderStaffId": "wang.fang", "conversationType": "2", "isInAtList": True,
              "conversationId": "cid-tmall"}
    inbox.handle_message({**person, "msgtype": "text", "text": "认领 1"}, "m1")
    inbox.handle_message({**person, "msgtype": "richText", "content": "认领 1"}, "m2")
    inbox.handle_message({**person, "msgtype": "text", "text": {"content": "认领 1"},
                          "conversationId": {"id": 1}}, "m3")
    inbox.handle_message({**person, "isInAtList": False, "msgtype": "text", "text": 5}, "m4")
    inbox.handle_message(["not", "an", "object"], "m5")  # type: ignore[arg-type]
    value = "pp1|claim|1|1"
    inbox.handle_card({"userId": "wang.fang", "content": json.dumps(
        {"cardPrivateData": {"params": value}})}, "c1")
    inbox.handle_card({"userId": "wang.fang", "content": json.dumps(
        {"cardPrivateData": [value]})}, "c2")
    inbox.handle_card({"userId": "wang.fang", "content": json.dumps(
        {"cardPrivateData": {"params": {"value": 5}}})}, "c3")
    inbox.handle_card({"userId": 5, "content": {"cardPrivateData": {"params": {
        "value": value}}}}, "c4")
    with seeded.session() as s:
        told = {m.key: m.payload for m in s.exec(select(OutboxMessage).where(
            OutboxMessage.chat == "dingtalk"))}
    message, click = (t(k, "zh-CN") for k in ("inbound.unreadable_message",
                                              "inbound.unreadable_click"))
    assert {k: p["text"] for k, p in told.items()} == {
        "dingtalk-refused:m1": message, "dingtalk-refused:m2": message,
        "dingtalk-refused:m3": message, "dingtalk-refused:c1": click,
        "dingtalk-refused:c2": click, "dingtalk-refused:c3": click}
    assert {p["user"] for p in told.values()} == {"wang.fang"}
    assert len(refusals(caplog, "dingtalk frame refused")) == 9
    assert not errors(caplog), errors(caplog)[:3]
    assert state(seeded) == before
