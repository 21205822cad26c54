"""Contract tests: the real dingtalk-stream client, inside the real app, against a local
DingTalk (gateway handshake + websocket + open API) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.core.i18n import t
from bot.core.ports import Notice
from bot.core.users import add_user, link
from bot.watch.ingest import ingest
from cards.callback import CallbackData
from storage.models import AuditEvent, ChatBinding, OutboxMessage, Task, User
from storage.types import utcnow
from tests.conftest import LiveServer
from tests.fakes.dingtalk import FakeDingTalk

GROUP = "cidGROUPtmall"
STAFF = {"li.na": "staff-lina", "wang.fang": "staff-wangfang", "admin": "staff-admin",
         "alex": "staff-alex"}


@pytest.fixture
def fake():
    server = FakeDingTalk().start()
    yield server
    server.stop()


@pytest.fixture
def dingtalk(settings, seeded, fake, monkeypatch):
    from bot.web.app import create_app

    monkeypatch.setenv("DINGTALK_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("DINGTALK_CARD_TEMPLATE_ID", "promopilot-card.schema")
    monkeypatch.setenv("PROMOPILOT_DINGTALK_API_URL", fake.url)
    monkeypatch.delenv("DINGTALK_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("DINGTALK_ROBOT_CODE", raising=False)
    with seeded.session() as session:
        for name, staff in STAFF.items():
            link(session, session.exec(select(User).where(User.name == name)).one(),
                 "dingtalk", staff)
        session.add(ChatBinding(chat="dingtalk", channel_id=GROUP, channel_name="天猫活动群",
                                platform="tmall", purpose="notices"))
    server = LiveServer(create_app(settings), settings).start()
    fake.wait_connected()
    yield server
    server.stop()
    server.container.db.dispose()  # the app's own pool: give PostgreSQL its connections back


def new_notice(db, title: str = "双11 预热会场招商", external_id: str = "dt-1") -> Task:
    now = utcnow()
    report = ingest(db, [Notice(platform="tmall", external_id=external_id, title=title,
                                type="大促", registration_start=now,
                                registration_end=now + timedelta(days=3),
                                event_start=now + timedelta(days=10),
                                event_end=now + timedelta(days=12))])
    assert report.new, report
    with db.session() as session:
        return session.exec(select(Task).where(Task.campaign_id == report.new[0])).one()


def posted_card(live, fake, db, **kw) -> tuple[Task, str, dict]:
    task = new_notice(db, **kw)
    live.drain()
    cards = fake.card_in(GROUP)
    assert len(cards) == 1
    return task, cards[0]["create"]["outTrackId"], cards[0]


def button_value(card: dict, action: str) -> str:
    buttons = json.loads(card["params"]["buttons"])
    return next(b["value"] for b in buttons if b["action"] == action)


def test_stream_handshake_subscribes_to_messages_and_card_callbacks(dingtalk, fake):
    topics = {s["topic"] for s in fake.connections[0]["subscriptions"]}
    assert topics == {"/v1.0/im/bot/messages/get", "/v1.0/card/instances/callback"}


def test_notice_becomes_interactive_card_in_bound_group(dingtalk, fake, seeded):
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    body = card["create"]
    assert body["callbackType"] == "STREAM"
    assert body["cardTemplateId"] == "promopilot-card.schema"
    assert body["imGroupOpenDeliverModel"]["robotCode"] == fake.client_id
    at = body["imGroupOpenDeliverModel"].get("atUserIds", {})
    assert set(at) <= set(STAFF.values())  # only linked people the card names, by staff id
    params = card["params"]
    assert params["title"] == f"#{task.id} [天猫] 双11 预热会场招商"
    assert params["subtitle"] == "待认领" and params["locked"] == "false"
    assert f"console?task={task.id}" in params["link"]
    assert CallbackData.unpack(button_value(card, "claim")) == CallbackData("claim", task.id,
                                                                             task.version)
    dingtalk.drain()  # nothing new: posted once
    assert len(fake.cards) == 1


def test_mention_command_gets_an_answer(dingtalk, fake):
    message_id = fake.push_message("@PromoPilot 列表", STAFF["li.na"], GROUP)
    ack = fake.wait_ack(message_id, timeout=5)
    assert ack["code"] == 200 and fake.ack_seconds(message_id) < 1.5  # DingTalk's budget
    fake.wait_until(lambda: fake.private_texts(STAFF["li.na"]), what="the list reply")
    reply = fake.private_texts(STAFF["li.na"])[0]
    assert "京东PLUS" in reply and "待认领" in reply
    # English, public command: an admin binds the group; the answer is said in the group
    fake.push_message("@PromoPilot bind jd", STAFF["admin"], GROUP)
    fake.wait_until(lambda: fake.group_messages, what="the bind answer")
    said = fake.group_messages[0]
    assert said["openConversationId"] == GROUP and said["msgKey"] == "sampleText"
    assert "京东" in said["param"]["content"]  # the platform by its name


def test_unknown_person_is_told_how_to_be_added(dingtalk, fake):
    fake.push_message("@PromoPilot 认领 1", "staff-stranger", GROUP)
    fake.wait_until(lambda: fake.private_texts("staff-stranger"), what="the stranger's reply")
    text = fake.private_texts("staff-stranger")[0]
    assert "staff-stranger" in text and "用户 添加" in text and "--dingtalk" in text


def test_claim_click_updates_the_card_with_the_claimant(dingtalk, fake, seeded):
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    message_id = fake.push_click(out_track_id, STAFF["li.na"], button_value(card, "claim"))
    assert fake.wait_ack(message_id)["code"] == 200
    fake.wait_until(lambda: card["updates"], what="the card update")
    params = card["params"]
    assert "李娜(运营)" in params["markdown"] and params["subtitle"] == "已认领"
    actions = [b["action"] for b in json.loads(params["buttons"])]
    assert "claim" not in actions and "draft" in actions
    assert card["updates"][-1]["outTrackId"] == out_track_id
    with seeded.session() as session:
        assert session.get(Task, task.id).state == "claimed"
    assert not fake.private_texts(STAFF["li.na"])  # success needs no extra message


def test_button_that_needs_a_reason_asks_for_one(dingtalk, fake, seeded):
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    skip = button_value(card, "skip")
    fake.push_click(out_track_id, STAFF["li.na"], skip)
    fake.wait_until(lambda: fake.private_texts(STAFF["li.na"]), what="the reason prompt")
    assert "原因" in fake.private_texts(STAFF["li.na"])[0]
    fake.push_click(out_track_id, STAFF["li.na"], skip, comment="库存不足 @所有人")
    fake.wait_until(lambda: card["params"]["locked"] == "true", what="the locked card")
    assert card["params"]["subtitle"] == "已放弃" and card["params"]["buttons"] == "[]"
    assert "库存不足" in card["params"]["markdown"] and "@所有人" not in card["params"]["markdown"]


def test_same_callback_twice_changes_state_once(dingtalk, fake, seeded):
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    value = button_value(card, "claim")
    first = fake.push_click(out_track_id, STAFF["li.na"], value, message_id="cb-dup-1")
    fake.push_click(out_track_id, STAFF["li.na"], value, message_id="cb-dup-1")  # redelivery
    fake.wait_until(lambda: len(fake.acks.get(first, [])) == 2, what="both acks")
    fake.wait_until(lambda: card["updates"], what="the card update")
    # a double click (a second, distinct callback) is refused, not applied again
    fake.push_click(out_track_id, STAFF["wang.fang"], value, message_id="cb-dup-2")
    fake.wait_until(lambda: fake.private_texts(STAFF["wang.fang"]), what="the refusal")
    assert "李娜(运营)" in fake.private_texts(STAFF["wang.fang"])[0]
    dingtalk.drain()
    with seeded.session() as session:
        claims = session.exec(select(AuditEvent).where(AuditEvent.task_id == task.id,
                                                       AuditEvent.action == "claim")).all()
        assert len(claims) == 1
    assert len(card["updates"]) == 1
    assert not fake.private_texts(STAFF["li.na"])


def test_fifty_concurrent_claims_one_winner(dingtalk, fake, seeded):
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    value = button_value(card, "claim")
    with seeded.session() as session:
        for i in range(50):
            add_user(session, f"clerk{i}", ["ops"], display_name=f"店员{i}",
                     chat="dingtalk", external_id=f"staff-clerk{i}")
    start = threading.Barrier(50)

    def click(i: int) -> str:
        start.wait()
        return fake.push_click(out_track_id, f"staff-clerk{i}", value)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fake.wait_until(lambda: len(fake.acks) >= 50, timeout=30, what="50 acks")
    working = {t("inbox.working", lang) for lang in ("zh-CN", "en")}

    def answers() -> list[dict]:  # "working on it" notes (a slow, loaded box) come first
        return [m for m in fake.private_messages if m["param"]["content"] not in working]

    fake.wait_until(lambda: len(answers()) >= 49, timeout=60, what="49 refusals")
    with seeded.session() as session:
        task = session.get(Task, task.id)
        winner = session.get(User, task.claimed_by)
        claims = session.exec(select(AuditEvent).where(AuditEvent.task_id == task.id,
                                                       AuditEvent.action == "claim")).all()
    assert task.state == "claimed" and len(claims) == 1
    refusals = [m["param"]["content"] for m in answers()]
    assert len(refusals) == 49
    assert all(winner.display_name in text for text in refusals)
    assert {m["userIds"][0] for m in answers()} == \
        {f"staff-clerk{i}" for i in range(50)} - {STAFF.get(winner.name, f"staff-{winner.name}")}
    fake.wait_until(lambda: winner.display_name in card["params"]["markdown"],
                    what="the card showing the winner")


def test_at_all_in_a_title_renders_as_text_and_mentions_nobody(dingtalk, fake, seeded):
    title = "@所有人 紧急 <font color=red>加急</font> [点我](http://evil.example) @all"
    _, _, card = posted_card(dingtalk, fake, seeded, title=title, external_id="dt-atall")
    raw = json.dumps(card["create"], ensure_ascii=False)
    assert "@所有人" not in raw and "@all" not in raw and "@ALL" not in raw
    assert "所有人" in card["params"]["title"] and "加急" in card["params"]["title"]
    at = card["create"]["imGroupOpenDeliverModel"].get("atUserIds", {})
    assert set(at) <= set(STAFF.values()) and "@ALL" not in at
    assert "<font" not in card["params"]["markdown"]


def test_open_api_outage_is_retried_and_nothing_is_lost(dingtalk, fake, seeded):
    fake.fail("/v1.0/card/instances/createAndDeliver", 503, times=5)
    new_notice(seeded, external_id="dt-outage")
    dingtalk.drain()
    assert not fake.cards
    with seeded.session() as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.chat == "dingtalk")).one()
        assert row.status == "pending" and "503" in row.last_error
        row.next_attempt_at = utcnow()
        session.add(row)
    dingtalk.drain()
    assert len(fake.card_in(GROUP)) == 1


def test_admin_adds_the_stranger_who_can_then_claim(dingtalk, fake, seeded):
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    value = button_value(card, "claim")
    fake.push_click(out_track_id, "staff-newbie", value)
    fake.wait_until(lambda: fake.private_texts("staff-newbie"), what="the stranger's answer")
    assert "staff-newbie" in fake.private_texts("staff-newbie")[0]
    fake.push_message("@PromoPilot 用户 添加 newbie ops staff-newbie", STAFF["admin"], GROUP)
    fake.wait_until(lambda: any("newbie" in t for t in fake.private_texts(STAFF["admin"])),
                    what="the admin's confirmation")
    fake.push_click(out_track_id, "staff-newbie", value)
    fake.wait_until(lambda: card["params"]["subtitle"] == "已认领", what="the claim")
    with seeded.session() as session:
        claimant = session.get(User, session.get(Task, task.id).claimed_by)
    assert claimant.name == "newbie"


def test_card_follows_the_platform_result(dingtalk, fake, seeded):
    from bot.core import lifecycle
    from bot.core.actors import Actor

    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    with seeded.session() as session:  # the pipeline got it to review (tested elsewhere)
        row = session.get(Task, task.id)
        row.state = "in_review"
        session.add(row)
    with seeded.session() as session:
        lifecycle.apply(session, task.id, "accept", Actor.system("sandbox"))
    dingtalk.drain()
    assert card["params"]["subtitle"] == "报名成功" and card["params"]["color"] == "green"
    assert len(fake.cards) == 1  # the same card, updated in place


def test_one_to_one_chat_and_malformed_frames(dingtalk, fake):
    fake.push_message("help", STAFF["alex"], "cidPRIVATEalex", conversation_type="1")
    fake.wait_until(lambda: fake.private_texts(STAFF["alex"]), what="the 1:1 answer")
    assert "claim <id>" in fake.private_texts(STAFF["alex"])[0]
    garbage = fake.push(
        "/v1.0/card/instances/callback",
        {"outTrackId": "nope", "userId": STAFF["li.na"], "content": "{not json"})
    assert fake.wait_ack(garbage)["code"] == 200
    fake.wait_until(lambda: fake.private_texts(STAFF["li.na"]), what="the stale-card answer")
    assert "过期" in fake.private_texts(STAFF["li.na"])[0]
    picture = fake.push("/v1.0/im/bot/messages/get", {
        "conversationId": GROUP, "conversationType": "2", "msgId": "pic-1",
        "senderStaffId": STAFF["wang.fang"], "msgtype": "picture", "isInAtList": True,
        "robotCode": fake.client_id, "content": {"downloadCode": "x"}})
    assert fake.wait_ack(picture)["code"] == 200
    fake.wait_until(lambda: fake.private_texts(STAFF["wang.fang"]), what="text-only answer")
    assert "文字命令" in fake.private_texts(STAFF["wang.fang"])[0]
    assert not fake.group_messages


def test_a_persons_click_arriving_twice_is_not_claimed_by_themselves(dingtalk, fake, seeded):
    """Two distinct callbacks for one person's click (DingTalk redelivering under a new id):
    the second is no change and says so, never "already claimed by" that same person."""
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    value = button_value(card, "claim")
    fake.push_click(out_track_id, STAFF["li.na"], value, message_id="cb-twice-1")
    fake.wait_until(lambda: card["updates"], what="the card update")
    fake.push_click(out_track_id, STAFF["li.na"], value, message_id="cb-twice-2")
    fake.wait_until(lambda: fake.private_texts(STAFF["li.na"]), what="the answer")
    said = fake.private_texts(STAFF["li.na"])[0]
    assert "已经由你认领" in said and "已被" not in said
    with seeded.session() as session:
        assert len(session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task.id, AuditEvent.action == "claim")).all()) == 1


def test_slow_work_tells_the_clicker_it_is_working_once(dingtalk, fake, seeded, monkeypatch):
    """The ACK goes at once; work still running after SLOW seconds gets a private "working
    on it" (a timer on the stream's loop), once a minute per person at most."""
    import time

    from adapters.chat.dingtalk import inbound as dingtalk_inbound

    monkeypatch.setattr(dingtalk_inbound, "SLOW", 0.3)
    task, out_track_id, card = posted_card(dingtalk, fake, seeded)
    handle_click = dingtalk_inbound.router.handle_click

    def slow(*args, **kwargs):
        time.sleep(1.5)
        return handle_click(*args, **kwargs)

    monkeypatch.setattr(dingtalk_inbound.router, "handle_click", slow)
    message_id = fake.push_click(out_track_id, STAFF["li.na"], button_value(card, "claim"))
    assert fake.wait_ack(message_id)["code"] == 200
    assert fake.ack_seconds(message_id) < 1.0
    working = t("inbox.working", "zh-CN")
    fake.wait_until(lambda: working in fake.private_texts(STAFF["li.na"]), 10,
                    "the working-on-it note")
    fake.wait_until(lambda: card["updates"], 10, "the card update")
    assert fake.private_texts(STAFF["li.na"]).count(working) == 1
    with seeded.session() as session:
        assert session.get(Task, task.id).state == "claimed"
    # a second slow click by the same person a moment later: no second note (a peak)
    other = new_notice(seeded, "双12 招商", "dt-2")
    dingtalk.drain()
    second = next(c for c in fake.card_in(GROUP) if c is not card)
    message_id = fake.push_click(second["create"]["outTrackId"], STAFF["li.na"],
                                 button_value(second, "claim"))
    assert fake.wait_ack(message_id)["code"] == 200
    fake.wait_until(lambda: second["updates"], 10, "the second card's update")
    dingtalk.drain()
    assert fake.private_texts(STAFF["li.na"]).count(working) == 1
    with seeded.session() as session:
        assert session.get(Task, other.id).state == "claimed"
