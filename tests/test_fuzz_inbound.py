"""Property-based fuzzing of everything a chat sends us: the commands router's text and
button values, and the Slack, Feishu and DingTalk inbound payloads.

Properties, for at least 1,000 generated cases each:

- no exception escapes (no traceback in the log, no 500): a malformed payload is refused
  and the person (if any) gets an answer, never "something went wrong";
- a malformed payload never acts: no task changes state, no audit event is written.

Slack and Feishu are driven through the app's own HTTP endpoints (signed / token-checked
like the real platforms), so the property holds whatever the inbound pipeline does behind
them. Storage-touching parts run their bulk on SQLite and a smaller pass on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

import commands  # noqa: F401  (registers the text commands)
from cards.callback import BadCallback, CallbackData
from commands.router import Inbound, router
from storage.models import AuditEvent, OutboxMessage, Task

ANY_CHAR = st.characters(exclude_categories=("Cs",))  # chats deliver valid Unicode
WORDS = ["claim", "认领", "status", "状态", "skip", "跳过", "release", "list", "mine", "help",
         "帮助", "draft", "submit", "approve", "reject", "deadline", "截止", "user", "data",
         "export", "rules", "#1", "1", "²", "١٢", "99999999999999999999", "-1", "0x10",
         "<@U123>", "@all", "<!channel>", "/promo", "\n", "\t", "  "]
WORD = st.one_of(st.sampled_from(WORDS), st.text(ANY_CHAR, max_size=12), st.integers().map(str))
TEXT = st.one_of(
    st.lists(WORD, max_size=6).map(" ".join),
    st.tuples(st.sampled_from(WORDS[:20]), st.lists(WORD, max_size=4)).map(  # command-shaped
        lambda c: " ".join([c[0], *c[1]])))
BUTTON_VALUES = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.builds(lambda a, t, v: f"pp1|{a}|{t}|{v}",
              st.one_of(st.sampled_from(["claim", "skip", "approve", "", "x|y"]),
                        st.text(ANY_CHAR, max_size=8)),
              st.one_of(st.integers(), st.text(ANY_CHAR, max_size=6),
                        st.sampled_from(["99999999999999999999", "²", "-0"])),
              st.one_of(st.integers(), st.text(ANY_CHAR, max_size=6))))
INTERNAL = ("出错了", "went wrong")  # err.internal in either language


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))


class Tracebacks(logging.Handler):
    """Every log record that carries an exception: one means something escaped a parser."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture
def tracebacks():
    handler = Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def snapshot(db) -> tuple:
    with db.session() as s:
        states = tuple(s.exec(select(Task.id, Task.state, Task.version).order_by(Task.id)))
        audits = s.exec(select(func.count()).select_from(AuditEvent)).one()
    return states, audits


# -- the commands router -------------------------------------------------------------------


def test_callback_values_unpack_or_are_refused():
    @fuzz(2000)
    @given(value=BUTTON_VALUES)
    def check(value):
        try:
            data = CallbackData.unpack(value)
        except BadCallback:
            return
        assert 0 <= data.task_id < 2**31 and 0 <= data.version < 2**31 and data.action

    check()


def test_router_answers_any_text_and_any_button_value_without_an_internal_error(
        seeded, tracebacks):
    db = seeded
    n = 1000 if db.dialect == "sqlite" else 150
    before = snapshot(db)
    people = ["wang.fang", "zhou.qiang", "admin", "nobody-we-know"]

    @fuzz(n)
    @given(text=TEXT, who=st.sampled_from(people), chat=st.sampled_from(["web", "slack"]))
    def texts(text, who, chat):
        reply = router.handle_text(db, Inbound(chat, "jd-promo", who), text)
        assert reply.text and not any(w in reply.text for w in INTERNAL), reply.text

    @fuzz(n)
    @given(value=BUTTON_VALUES, who=st.sampled_from(people), comment=st.none() | TEXT)
    def clicks(value, who, comment):
        reply = router.handle_click(db, Inbound("web", "jd-promo", who), value, comment)
        assert not any(w in reply.text for w in INTERNAL), reply.text

    clicks()
    assert snapshot(db) == before, "a malformed button acted"
    texts()  # (text commands may be valid ones: "claim 3" by chance is allowed to act)
    assert not tracebacks.records, [r.getMessage() for r in tracebacks.records[:5]]


# -- payload strategies ----------------------------------------------------------------------

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(ANY_CHAR, max_size=12), st.sampled_from(WORDS)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(
                                ["id", "user", "channel", "text", "value", "actions", "type",
                                 "view", "private_metadata", "state", "container", "message",
                                 "event", "content", "trigger_id", "action_id"]) | st.text(
                                    max_size=6), inner, max_size=4)), max_leaves=10)


def maybe(value: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(value, JSONISH)


# -- Slack, through /slack/events -------------------------------------------------------------


def slack_bodies() -> st.SearchStrategy[tuple[str, str]]:
    """(content type, body) in Slack's shapes with fuzzed parts, and plain garbage."""
    from tests.fakes.slack import form

    action = st.fixed_dictionaries({}, optional={
        "action_id": maybe(st.sampled_from(["pp:claim", "pp:skip:input", "pp:", "pp-link",
                                            "pp:approve"])),
        "value": maybe(BUTTON_VALUES), "action_ts": maybe(st.just("1700000000.1")),
        "type": st.just("button")})
    block_actions = st.fixed_dictionaries({"type": st.just("block_actions")}, optional={
        "user": maybe(st.fixed_dictionaries({"id": maybe(st.just("U0ALEX"))})),
        "channel": maybe(st.fixed_dictionaries({"id": maybe(st.just("C0TMALL"))})),
        "container": JSONISH, "message": JSONISH, "trigger_id": maybe(st.text(max_size=8)),
        "actions": st.one_of(st.lists(action, max_size=2), JSONISH)})
    view = st.fixed_dictionaries({"type": st.just("view_submission")}, optional={
        "user": JSONISH, "view": maybe(st.fixed_dictionaries({
            "callback_id": st.just("pp_comment"), "id": maybe(st.text(max_size=6)),
            "private_metadata": maybe(st.one_of(st.text(ANY_CHAR, max_size=20), JSONISH.map(
                json.dumps))), "state": JSONISH}))})
    event = st.fixed_dictionaries({"type": st.just("event_callback")}, optional={
        "event_id": maybe(st.text(max_size=8)), "event": maybe(st.fixed_dictionaries(
            {"type": st.sampled_from(["app_mention", "message"])}, optional={
                "user": JSONISH, "channel": JSONISH, "text": maybe(TEXT),
                "channel_type": maybe(st.just("im")), "ts": JSONISH, "thread_ts": JSONISH}))})
    command = st.fixed_dictionaries({"command": st.just("/promo")}, optional={
        "text": TEXT, "user_id": st.text(max_size=8), "channel_id": st.text(max_size=8),
        "trigger_id": st.text(max_size=8), "response_url": st.just("http://127.0.0.1:9/x")})
    return st.one_of(
        st.one_of(block_actions, view).map(lambda p: ("application/x-www-form-urlencoded",
                                                      form(p))),
        event.map(lambda p: ("application/json", json.dumps(p))),
        command.map(lambda p: ("application/x-www-form-urlencoded",
                               urllib.parse.urlencode(p))),
        st.text(ANY_CHAR, max_size=60).map(lambda t: ("application/x-www-form-urlencoded",
                                                      "payload=" + urllib.parse.quote(t))),
        JSONISH.map(lambda p: ("application/json", json.dumps(p))))


def test_slack_payloads_are_refused_or_answered_never_a_500_never_an_action(
        seeded, settings, monkeypatch, tracebacks):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, sign

    fake = FakeSlack().start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("PROMOPILOT_SLACK_API_URL", fake.api_url)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    db = seeded
    before = snapshot(db)
    try:
        with TestClient(create_app(settings)) as client:
            @fuzz(1000 if db.dialect == "sqlite" else 100)
            @given(body=slack_bodies(), signed=st.booleans() | st.just(True))
            def post(body, signed):
                content_type, raw = body
                headers = {"Content-Type": content_type}
                headers.update(sign(raw) if signed else sign(raw, secret="wrong"))
                answer = client.post("/slack/events", content=raw.encode(), headers=headers)
                assert answer.status_code < 500, (answer.status_code, raw[:200])
                if not signed:
                    assert answer.status_code == 401

            post()
            time.sleep(1.0)  # listeners run after the ack
    finally:
        fake.stop()
    assert snapshot(db) == before, "a malformed Slack payload acted"
    assert not tracebacks.records, [r.getMessage()[:300] for r in tracebacks.records[:5]]


# -- Feishu, through /feishu/events -------------------------------------------------------------

FEISHU_TOKEN = "fuzz-verification-token"


def feishu_bodies() -> st.SearchStrategy[dict]:
    message = st.fixed_dictionaries({}, optional={
        "message_id": maybe(st.text(max_size=8)), "chat_id": JSONISH,
        "chat_type": maybe(st.sampled_from(["group", "p2p"])),
        "message_type": maybe(st.sampled_from(["text", "post", "image"])),
        "content": maybe(st.one_of(TEXT.map(lambda t: json.dumps({"text": t})),
                                   JSONISH.map(json.dumps), st.text(max_size=20))),
        "mentions": JSONISH})
    sender = st.fixed_dictionaries({}, optional={
        "sender_type": maybe(st.just("user")),
        "sender_id": maybe(st.fixed_dictionaries({}, optional={"open_id": JSONISH}))})
    action = st.fixed_dictionaries({}, optional={
        "value": maybe(st.fixed_dictionaries({"pp": maybe(BUTTON_VALUES)})),
        "form_value": JSONISH, "input_value": JSONISH, "tag": JSONISH})
    event = st.one_of(
        st.fixed_dictionaries({}, optional={"message": maybe(message), "sender": maybe(sender)}),
        st.fixed_dictionaries({}, optional={
            "action": maybe(action), "operator": maybe(st.fixed_dictionaries(
                {}, optional={"open_id": JSONISH})), "token": JSONISH,
            "context": JSONISH}),
        JSONISH)
    header = st.fixed_dictionaries({"token": st.just(FEISHU_TOKEN)}, optional={
        "event_type": maybe(st.sampled_from(["im.message.receive_v1", "card.action.trigger"])),
        "event_id": maybe(st.text(max_size=8))})
    return st.one_of(
        st.fixed_dictionaries({"schema": st.just("2.0"), "header": header},
                              optional={"event": event}),
        st.fixed_dictionaries({"type": st.just("url_verification"),
                               "token": st.just(FEISHU_TOKEN)},
                              optional={"challenge": JSONISH}),
        JSONISH.map(lambda p: {"header": {"token": FEISHU_TOKEN}, "event": p}))


def test_feishu_payloads_are_refused_or_answered_never_a_500_never_an_action(
        seeded, settings, monkeypatch, tracebacks):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    monkeypatch.setenv("FEISHU_APP_ID", "cli_fuzz")
    monkeypatch.setenv("FEISHU_APP_SECRET", "fuzz-secret")
    monkeypatch.setenv("FEISHU_VERIFICATION_TOKEN", FEISHU_TOKEN)
    monkeypatch.setenv("PROMOPILOT_FEISHU_DOMAIN", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("PROMOPILOT_FEISHU_MODE", "http")
    db = seeded
    before = snapshot(db)
    with TestClient(create_app(settings)) as client:
        @fuzz(1000 if db.dialect == "sqlite" else 100)
        @given(payload=feishu_bodies(), garbage=st.none() | st.binary(max_size=40))
        def post(payload, garbage):
            raw = garbage if garbage is not None else json.dumps(payload).encode()
            answer = client.post("/feishu/events", content=raw,
                                 headers={"Content-Type": "application/json"})
            assert answer.status_code < 500, (answer.status_code, raw[:200])

        post()
    assert snapshot(db) == before, "a malformed Feishu payload acted"
    assert not tracebacks.records, [r.getMessage()[:300] for r in tracebacks.records[:5]]


# -- DingTalk, the stream frames' data -----------------------------------------------------------


def dingtalk_data() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({}, optional={
        "msgtype": maybe(st.sampled_from(["text", "richText", "picture"])),
        "text": maybe(st.fixed_dictionaries({}, optional={"content": maybe(TEXT)})),
        "content": maybe(st.one_of(
            st.fixed_dictionaries({}, optional={"richText": JSONISH}),
            st.fixed_dictionaries({}, optional={"cardPrivateData": maybe(
                st.fixed_dictionaries({}, optional={
                    "params": maybe(st.fixed_dictionaries({}, optional={
                        "value": maybe(BUTTON_VALUES), "comment": JSONISH})),
                    "actionIds": JSONISH}))}).map(json.dumps))),
        "conversationType": JSONISH, "conversationId": JSONISH, "isInAtList": JSONISH,
        "senderStaffId": maybe(st.sampled_from(["wang.fang", "staff-x"])), "senderId": JSONISH,
        "robotCode": JSONISH, "userId": maybe(st.sampled_from(["wang.fang", "u-1"])),
        "outTrackId": JSONISH, "spaceId": JSONISH})


def test_dingtalk_frames_are_refused_or_answered_never_an_action(seeded, tracebacks):
    from adapters.chat.dingtalk.inbound import Inbox
    from adapters.chat.dingtalk.settings import DingTalkSettings

    db = seeded
    inbox = Inbox(db, DingTalkSettings(_env_file=None), kick=lambda: None)
    before = snapshot(db)
    count = iter(range(10**9))

    @fuzz(1000 if db.dialect == "sqlite" else 100)
    @given(data=dingtalk_data(), card=st.booleans())
    def frame(data, card):
        delivery = f"fuzz-{next(count)}"
        (inbox.handle_card if card else inbox.handle_message)(data, delivery)

    frame()
    assert snapshot(db) == before, "a malformed DingTalk frame acted"
    with db.session() as s:  # refusals and answers, never "something went wrong"
        said = [str(m.payload.get("text", "")) for m in s.exec(select(OutboxMessage))]
    assert not [t for t in said if any(w in t for w in INTERNAL)], said[:3]
    assert not tracebacks.records, [r.getMessage()[:300] for r in tracebacks.records[:5]]
