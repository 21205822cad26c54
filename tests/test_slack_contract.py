"""Slack contract tests: the real app (slack-bolt + slack_sdk) under uvicorn, a fake Slack Web
API on 127.0.0.1, and signed payloads in Slack's documented shapes."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from bot.core.i18n import t
from bot.core.ports import Notice
from bot.core.users import add_user
from bot.watch.ingest import ingest
from storage.models import AuditEvent, Campaign, ChatBinding, ChatMessage, Task, User
from storage.types import utcnow
from tests.fakes.slack import (
    BOT_TOKEN,
    BOT_USER,
    SIGNING_SECRET,
    FakeSlack,
    app_mention,
    block_actions,
    form,
    post,
    slash_command,
    view_submission,
)

CHANNEL = "C0TMALL"


@pytest.fixture
def fake():
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def slack_env(monkeypatch, fake):
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("PROMOPILOT_SLACK_API_URL", fake.api_url)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)


def bind(db, channel: str = CHANNEL, platform: str = "tmall") -> None:
    with db.session() as s:
        s.add(ChatBinding(chat="slack", channel_id=channel, platform=platform, purpose="notices"))


def slack_user(db, name: str, uid: str, roles=("ops",), display: str | None = None,
               lang: str = "en") -> None:
    with db.session() as s:
        add_user(s, name, list(roles), display_name=display or name, chat="slack",
                 external_id=uid, lang=lang)


def publish(db, title: str, ext: str = "SL-1", platform: str = "tmall") -> int:
    now = utcnow()
    report = ingest(db, [Notice(platform=platform, external_id=ext, title=title, type="大促",
                                registration_start=now, registration_end=now + timedelta(days=5),
                                event_start=now + timedelta(days=7),
                                event_end=now + timedelta(days=9))])
    assert not report.failed, report.failed
    with db.session() as s:
        campaign = s.exec(select(Campaign).where(Campaign.external_id == ext)).one()
        return s.exec(select(Task.id).where(Task.campaign_id == campaign.id)).one()


def card_post(fake: FakeSlack, task_id: int):
    """The chat.postMessage that showed this task's card in Slack."""
    calls = fake.wait_for("chat.postMessage", where=lambda c: f"#{task_id} " in
                          json.dumps(c.body.get("blocks") or [], ensure_ascii=False))
    assert len(calls) == 1, "one message per task per channel"
    return calls[0]


def button(call, action: str) -> dict:
    for block in call.body["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id", "").startswith(f"pp:{action}"):
                return element
    raise AssertionError(f"no {action} button in {call.body['blocks']}")


def click(live, fake, post_call, action: str, user: str, trigger: str, **kw) -> httpx.Response:
    element = button(post_call, action)
    payload = block_actions(user=user, channel=post_call.body["channel"],
                            message_ts="?", action_id=element["action_id"],
                            value=element["value"], trigger_id=trigger,
                            blocks=post_call.body["blocks"])
    payload["container"]["message_ts"] = payload["message"]["ts"] = post_call.ts
    return post(f"{live.url}/slack/events", form(payload), **kw)


def posted(live, fake, task_id: int):
    """Deliver the outbox; return the card's postMessage call with its ``ts`` attached."""
    live.drain()
    call = card_post(fake, task_id)
    with live.container.db.session() as s:
        msg = s.exec(select(ChatMessage).where(ChatMessage.chat == "slack",
                                               ChatMessage.card_key == f"task:{task_id}")).one()
    call.ts = msg.message_ref
    return call


def test_notice_card_claim_acked_then_updated_in_place(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob Builder")
    task_id = publish(db, "天猫 双12 预热")
    call = posted(live, fake, task_id)
    assert call.body["channel"] == CHANNEL
    assert "天猫 双12 预热" in json.dumps(call.body["blocks"], ensure_ascii=False)

    started = time.perf_counter()
    response = click(live, fake, call, "claim", "U0BOB", "trig-claim-1")
    assert response.status_code == 200
    assert time.perf_counter() - started < 3.0  # acknowledged inside Slack's budget

    update = fake.wait_for("chat.update", where=lambda c: "Bob Builder" in json.dumps(
        c.body.get("blocks"), ensure_ascii=False))[0]
    assert update.body["ts"] == call.ts and update.body["channel"] == CHANNEL
    assert not fake.calls("chat.postEphemeral")  # the winner sees the card, not a refusal
    with db.session() as s:
        assert s.get(Task, task_id).state == "claimed"
    assert len([c for c in fake.calls("chat.postMessage")
                if f"#{task_id} " in json.dumps(c.body.get("blocks") or [])]) == 1


def test_bad_signature_and_stale_timestamp_are_refused(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB")
    task_id = publish(db, "签名测试")
    call = posted(live, fake, task_id)
    bad = click(live, fake, call, "claim", "U0BOB", "trig-x", secret="not-the-secret")
    assert bad.status_code == 401
    old = click(live, fake, call, "claim", "U0BOB", "trig-y",
                timestamp=int(time.time()) - 6 * 60)
    assert old.status_code == 401
    unsigned = httpx.post(f"{live.url}/slack/events", content="payload=%7B%7D",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    time.sleep(0.5)
    with db.session() as s:
        assert s.get(Task, task_id).state == "new"
    assert not fake.calls("chat.update") and not fake.calls("chat.postEphemeral")


def test_same_payload_three_times_transitions_once(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB")
    task_id = publish(db, "重复投递")
    call = posted(live, fake, task_id)
    element = button(call, "claim")
    payload = block_actions(user="U0BOB", channel=CHANNEL, message_ts=call.ts,
                            action_id=element["action_id"], value=element["value"],
                            trigger_id="trig-same", action_ts="1700000001.000001")
    body = form(payload)
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda n: post(f"{live.url}/slack/events", body,
                                                 retry_num=n or None), range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    fake.wait_for("chat.update")
    time.sleep(1.0)
    with db.session() as s:
        claims = s.exec(select(AuditEvent).where(AuditEvent.task_id == task_id,
                                                 AuditEvent.action == "claim")).all()
        assert len(claims) == 1
    assert not fake.calls("chat.postEphemeral")  # re-deliveries are silent


def test_fifty_concurrent_claims_one_winner_49_ephemerals(live, fake):
    db = live.container.db
    bind(db)
    users = [(f"clerk{i}", f"U0CLERK{i:02d}") for i in range(50)]
    with db.session() as s:
        for name, uid in users:
            add_user(s, name, ["ops"], display_name=name.title(), chat="slack",
                     external_id=uid, lang="en")
    task_id = publish(db, "五十人抢单")
    call = posted(live, fake, task_id)
    gate = threading.Barrier(50)
    client = httpx.Client(timeout=30)

    def one(user: tuple[str, str]) -> int:
        gate.wait()
        return click(live, fake, call, "claim", user[1], f"trig-{user[1]}",
                     client=client).status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, users))
    assert statuses == [200] * 50
    ephemerals = fake.wait_for("chat.postEphemeral", count=49, timeout=60)
    time.sleep(0.5)
    assert len(fake.calls("chat.postEphemeral")) == 49
    with db.session() as s:
        task = s.get(Task, task_id)
        assert task.state == "claimed"
        winner = dict(users)[s.get(User, task.claimed_by).name]
    refused = {c.body["user"] for c in ephemerals}
    assert winner not in refused and len(refused) == 49
    assert all(c.body["channel"] == CHANNEL and "already claimed" in c.body["text"]
               for c in ephemerals)
    client.close()


def test_untrusted_title_renders_as_literal_text(live, fake):
    db = live.container.db
    bind(db)
    task_id = publish(db, "<!channel> 限时 & <@U123>")
    call = posted(live, fake, task_id)
    wire = json.dumps({"text": call.body["text"], "blocks": call.body["blocks"]},
                      ensure_ascii=False)
    for live_token in ("<!channel>", "<@U123>", "<!here>", "<!everyone>"):
        assert live_token not in wire
    assert "&lt;!channel&gt; 限时 &amp; &lt;@U123&gt;" in call.body["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt; 限时 &amp; &lt;@U123&gt;" in call.body["text"]
    assert call.body.get("link_names") in (None, False, "0", "false")


def test_429_waits_for_retry_after_then_posts(live, fake):
    db = live.container.db
    bind(db)
    fake.fail_next("chat.postMessage", 429, {"Retry-After": "1"})
    task_id = publish(db, "限流测试")
    live.drain()
    calls = fake.wait_for("chat.postMessage", count=2)
    refused, delivered = calls[0], calls[1]
    assert delivered.at - refused.at >= 1.0
    assert f"#{task_id} " in json.dumps(delivered.body["blocks"], ensure_ascii=False)
    with db.session() as s:
        msg = s.exec(select(ChatMessage).where(ChatMessage.chat == "slack")).one()
        assert msg.message_ref  # stored: later updates go to the same message


def test_long_retry_after_goes_back_to_outbox_and_nothing_is_dropped(live, fake):
    from storage.models import OutboxMessage

    db = live.container.db
    bind(db)
    fake.fail_next("chat.postMessage", 429, {"Retry-After": "30"})
    task_id = publish(db, "长限流")
    live.drain()
    with db.session() as s:
        row = s.exec(select(OutboxMessage).where(OutboxMessage.chat == "slack")).one()
        assert row.status == "pending" and "ratelimited" in (row.last_error or "")
        row.next_attempt_at = utcnow()  # time passes
        s.add(row)
    adapter = live.container.adapters["slack"]
    adapter.limiter.pause(CHANNEL, 0)
    adapter.limiter._buckets[CHANNEL].paused_until = 0
    live.drain()
    assert any(f"#{task_id} " in json.dumps(c.body.get("blocks") or [], ensure_ascii=False)
               for c in fake.calls("chat.postMessage"))


def test_slash_commands_en_and_zh_and_unknown_user(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob")
    task_id = publish(db, "命令测试")
    url = f"{live.url}/slack/events"

    r = post(url, slash_command(user="U0BOB", channel=CHANNEL, text=f"claim {task_id}",
                                response_url=fake.response_url("one"), trigger_id="t-cmd-1"))
    assert r.status_code == 200
    answer = fake.wait_for("response/one")[0].body
    assert f"task #{task_id}" in answer["text"]
    with db.session() as s:
        assert s.get(Task, task_id).state == "claimed"

    post(url, slash_command(user="U0BOB", channel=CHANNEL, text="我的",
                            response_url=fake.response_url("two"), trigger_id="t-cmd-2"))
    mine = fake.wait_for("response/two")[0].body
    assert mine["response_type"] == "ephemeral" and f"#{task_id}" in mine["text"]



def test_unknown_user_hears_the_admin_command_that_adds_them(live, fake):
    db = live.container.db
    slack_user(db, "root", "U0ADMIN", roles=("admin",))
    fake.users["U0NOBODY"] = {"id": "U0NOBODY", "name": "nbody",
                              "profile": {"display_name": "Nora Body"}}
    url = f"{live.url}/slack/events"
    post(url, slash_command(user="U0NOBODY", channel=CHANNEL, text="list",
                            response_url=fake.response_url("who"), trigger_id="t-who"))
    unknown = fake.wait_for("response/who")[0].body["text"]
    assert "/promo 用户 添加 nora.body &lt;" in unknown and "&gt; --slack U0NOBODY`" in unknown
    assert fake.calls("users.info")[0].body["user"] == "U0NOBODY"

    post(url, slash_command(user="U0ADMIN", channel=CHANNEL,
                            text="user add nora.body ops --slack U0NOBODY",
                            response_url=fake.response_url("add"), trigger_id="t-add"))
    assert "nora.body" in fake.wait_for("response/add")[0].body["text"]
    post(url, slash_command(user="U0NOBODY", channel=CHANNEL, text="mine",
                            response_url=fake.response_url("again"), trigger_id="t-again"))
    assert "用户 添加" not in fake.wait_for("response/again")[0].body["text"]


def test_admin_adds_a_slack_user_by_mention(live, fake):
    db = live.container.db
    slack_user(db, "root", "U0ADMIN", roles=("admin",))
    url = f"{live.url}/slack/events"
    post(url, slash_command(user="U0ADMIN", channel=CHANNEL,
                            text="user add carol ops <@U0CAROL|carol>",
                            response_url=fake.response_url("add"), trigger_id="t-add"))
    assert "carol" in fake.wait_for("response/add")[0].body["text"]
    post(url, slash_command(user="U0CAROL", channel=CHANNEL, text="mine",
                            response_url=fake.response_url("carol"), trigger_id="t-carol"))
    assert "用户 添加" not in fake.wait_for("response/carol")[0].body["text"]


def test_app_mention_claims_and_replies(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob")
    task_id = publish(db, "提及测试")
    call = posted(live, fake, task_id)
    body = app_mention(user="U0BOB", channel=CHANNEL, text=f"<@{BOT_USER}> 认领 {task_id}",
                       event_id="Ev0MENTION1")
    first = post(f"{live.url}/slack/events", body, json_body=True)
    again = post(f"{live.url}/slack/events", body, json_body=True, retry_num=1)
    assert first.status_code == 200 and again.status_code == 200
    fake.wait_for("chat.update", where=lambda c: c.body["ts"] == call.ts)
    replies = fake.wait_for("chat.postEphemeral")
    time.sleep(0.5)
    assert len(fake.calls("chat.postEphemeral")) == 1  # the retry was not answered twice
    assert "认领" in replies[0].body["text"] and replies[0].body["user"] == "U0BOB"
    with db.session() as s:
        assert s.get(Task, task_id).state == "claimed"


def test_skip_opens_modal_and_submission_carries_the_reason(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob")
    task_id = publish(db, "放弃测试")
    call = posted(live, fake, task_id)
    assert click(live, fake, call, "skip", "U0BOB", "trig-skip").status_code == 200
    opened = fake.wait_for("views.open")[0].body
    assert opened["trigger_id"] == "trig-skip"
    view = opened["view"]
    assert view["callback_id"] == "pp_comment" and view["blocks"][-1]["type"] == "input"

    empty = view_submission(user="U0BOB", view_id="V1", trigger_id="trig-v0",
                            private_metadata=view["private_metadata"], comment="  ")
    refused = post(f"{live.url}/slack/events", form(empty))
    assert refused.json()["response_action"] == "errors"

    filled = view_submission(user="U0BOB", view_id="V1", trigger_id="trig-v1",
                             private_metadata=view["private_metadata"],
                             comment="库存不足 <!here>")
    assert post(f"{live.url}/slack/events", form(filled)).status_code == 200
    update = fake.wait_for("chat.update", where=lambda c: c.body["ts"] == call.ts)[0]
    wire = json.dumps(update.body["blocks"], ensure_ascii=False)
    assert "库存不足 &lt;!here&gt;" in wire and "<!here>" not in wire
    with db.session() as s:
        task = s.get(Task, task_id)
        assert task.state == "skipped" and task.skip_reason == "库存不足 <!here>"


def test_not_configured_installs_nothing(monkeypatch, settings, db):
    from bot.web.app import create_app

    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    app = create_app(settings)
    assert "slack" not in app.state.container.adapters
    assert not [r for r in app.routes if getattr(r, "path", "") == "/slack/events"]


def test_card_beyond_block_kit_limits_still_posts(live, fake):
    db = live.container.db
    bind(db)
    now = utcnow()
    notice = Notice(platform="tmall", external_id="SL-HUGE", title="超长活动标题 & <x> " * 600,
                    registration_start=now, registration_end=now + timedelta(days=5),
                    event_start=now + timedelta(days=7), event_end=now + timedelta(days=9),
                    requirements={"categories": [f"类目{i}" for i in range(3000)],
                                  "price_rule": "规则 " * 3000})
    assert not ingest(db, [notice]).failed
    live.drain()
    call = fake.wait_for("chat.postMessage", where=lambda c: c.body.get("blocks"))[0]
    replies = [c for c in fake.calls("chat.postMessage")]
    assert len(replies) == 1  # accepted first time: the fake refuses blocks over the limits
    wire = json.dumps(call.body["blocks"], ensure_ascii=False)
    assert "/console?task=" in wire and "…" in wire
    with db.session() as s:
        assert s.exec(select(ChatMessage).where(ChatMessage.chat == "slack")).one().message_ref


def test_blocks_refused_by_slack_fall_back_to_text(live, fake):
    db = live.container.db
    bind(db)
    fake.fail_next("chat.postMessage", 200, body={"ok": False, "error": "invalid_blocks"})
    task_id = publish(db, "降级测试")
    live.drain()
    refused, fallback = fake.wait_for("chat.postMessage", count=2)[:2]
    assert refused.body.get("blocks") and not fallback.body.get("blocks")
    assert f"#{task_id} " in fallback.body["text"] and "/console?task=" in fallback.body["text"]


def test_approval_card_wrong_role_refused_and_manager_rejects_with_reason(live, fake):
    from bot.core.actions import ActionRequest, perform
    from bot.core.actors import Actor
    from bot.core.users import by_chat

    db = live.container.db
    bind(db)
    bind(db, channel="C0APPROVE", platform="*")
    with db.session() as s:
        s.exec(select(ChatBinding).where(ChatBinding.channel_id == "C0APPROVE")).one() \
            .purpose = "approvals"
    slack_user(db, "bob", "U0BOB", display="Bob")
    slack_user(db, "mia", "U0MIA", roles=("manager",), display="Mia Manager")
    now = utcnow()
    assert not ingest(db, [Notice(
        platform="tmall", external_id="SL-APPROVAL", title="审批测试 美妆节",
        registration_start=now, registration_end=now + timedelta(days=5),
        event_start=now + timedelta(days=7), event_end=now + timedelta(days=9),
        requirements={"min_discount": 0.2, "categories": ["美妆个护"]})]).failed
    with db.session() as s:
        campaign = s.exec(select(Campaign).where(Campaign.external_id == "SL-APPROVAL")).one()
        task_id = s.exec(select(Task.id).where(Task.campaign_id == campaign.id)).one()
        bob = Actor.of(by_chat(s, "slack", "U0BOB"))
    for action in ("claim", "draft", "request_approval"):
        perform(db, ActionRequest(task_id=task_id, action=action, actor=bob))
    live.drain()
    card = fake.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == "C0APPROVE")[0]
    with db.session() as s:
        card.ts = s.exec(select(ChatMessage.message_ref).where(
            ChatMessage.channel_id == "C0APPROVE")).one()
    approve = button(card, "approve")
    assert button(card, "reject")["action_id"] == "pp:reject:input"

    assert click(live, fake, card, "approve", "U0BOB", "trig-bob-approves").status_code == 200
    refusal = fake.wait_for("chat.postEphemeral")[0].body
    assert refusal["user"] == "U0BOB" and refusal["channel"] == "C0APPROVE"
    assert approve["value"]  # the clicker alone hears why; the card is unchanged

    assert click(live, fake, card, "reject", "U0MIA", "trig-mia-rejects").status_code == 200
    view = fake.wait_for("views.open")[0].body["view"]
    submit = view_submission(user="U0MIA", view_id="V-REJ", trigger_id="trig-rej-submit",
                             private_metadata=view["private_metadata"],
                             comment="折扣太深 & 毛利不够")
    assert post(f"{live.url}/slack/events", form(submit)).status_code == 200
    locked = fake.wait_for("chat.update", where=lambda c: c.body["ts"] == card.ts and
                           "折扣太深 &amp; 毛利不够" in json.dumps(c.body["blocks"],
                                                               ensure_ascii=False))[-1]
    assert not [b for b in locked.body["blocks"] if b["type"] == "actions" and any(
        e["action_id"].startswith("pp:approve") for e in b["elements"])]
    with db.session() as s:
        assert s.get(Task, task_id).state == "drafting"


def test_stale_card_click_is_refused_privately(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob")
    slack_user(db, "carol", "U0CAROL", display="Carol")
    task_id = publish(db, "过期卡片")
    call = posted(live, fake, task_id)  # the claim button carries version v
    assert click(live, fake, call, "claim", "U0BOB", "trig-stale-1").status_code == 200
    fake.wait_for("chat.update")
    post(f"{live.url}/slack/events", app_mention(user="U0BOB", channel=CHANNEL,
                                                 text=f"<@{BOT_USER}> release {task_id}",
                                                 event_id="Ev0RELEASE"), json_body=True)
    fake.wait_for("chat.update", count=2)
    with db.session() as s:
        assert s.get(Task, task_id).state == "new"
    assert click(live, fake, call, "claim", "U0CAROL", "trig-stale-2").status_code == 200
    refusal = fake.wait_for("chat.postEphemeral", where=lambda c: c.body["user"] == "U0CAROL")
    assert "out of date" in refusal[0].body["text"] or "过期" in refusal[0].body["text"]
    with db.session() as s:
        assert s.get(Task, task_id).state == "new"  # the old button changed nothing


def test_refusal_survives_a_slack_outage_through_the_outbox(live, fake):
    from storage.models import OutboxMessage

    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob")
    slack_user(db, "carol", "U0CAROL", display="Carol")
    task_id = publish(db, "宕机测试")
    call = posted(live, fake, task_id)
    click(live, fake, call, "claim", "U0BOB", "trig-out-1")
    fake.wait_for("chat.update")
    fake.fail_next("chat.postEphemeral", 503, body={"ok": False, "error": "service_unavailable"},
                   times=3)  # slack_sdk retries a 503 twice; the third failure reaches us
    click(live, fake, call, "claim", "U0CAROL", "trig-out-2")
    fake.wait_for("chat.postEphemeral", count=3)
    deadline = time.time() + 10
    while time.time() < deadline:
        with db.session() as s:
            queued = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "private")).all()
        if queued:
            break
        time.sleep(0.1)
    assert queued and queued[0].payload["user"] == "U0CAROL"
    time.sleep(2.2)
    live.drain()
    delivered = fake.wait_for("chat.postEphemeral", count=4)[-1].body
    assert delivered["user"] == "U0CAROL" and "Bob" in delivered["text"]


def test_direct_message_to_the_app_is_answered_in_the_dm(live, fake):
    db = live.container.db
    slack_user(db, "bob", "U0BOB", display="Bob")
    task_id = publish(db, "私信测试")
    event = json.loads(app_mention(user="U0BOB", channel="D0BOBDM", text="list",
                                   event_id="Ev0DM1"))
    event["event"].update(type="message", channel_type="im")
    bot_echo = json.loads(app_mention(user=BOT_USER, channel="D0BOBDM", text="echo",
                                      event_id="Ev0DM2"))
    bot_echo["event"].update(type="message", channel_type="im", bot_id="B0FAKE")
    for body in (event, bot_echo):
        assert post(f"{live.url}/slack/events", json.dumps(body), json_body=True) \
            .status_code == 200
    answer = fake.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == "D0BOBDM")
    time.sleep(0.5)
    assert len([c for c in fake.calls("chat.postMessage")
                if c.body["channel"] == "D0BOBDM"]) == 1  # our own messages are not commands
    assert f"#{task_id}" in answer[0].body["text"]


def test_deleted_card_message_is_posted_again_on_the_next_update(live, fake):
    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob Builder")
    task_id = publish(db, "有人删掉了这张卡片")
    first = posted(live, fake, task_id)
    fake.fail_next("chat.update", 200, {}, {"ok": False, "error": "message_not_found"})
    click(live, fake, first, "claim", "U0BOB", "trig-gone-1")
    again = fake.wait_for("chat.postMessage", where=lambda c: "Bob Builder" in json.dumps(
        c.body.get("blocks"), ensure_ascii=False))[0]
    assert again.body["channel"] == CHANNEL

    def ref() -> str:  # stored once the app has Slack's answer (just after the fake saw it)
        with db.session() as s:
            return s.exec(select(ChatMessage).where(
                ChatMessage.chat == "slack", ChatMessage.card_key == f"task:{task_id}")
            ).one().message_ref
    deadline = time.monotonic() + 10
    while not ref() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ref() and ref() != first.ts


def test_slow_work_says_working_on_it_once_a_minute_per_person(live, fake, monkeypatch):
    """Work still running after SLOW seconds: the clicker hears "working on it" privately,
    but at a peak (every click slow) only once a minute — each note cost the API calls the
    work needed."""
    from adapters.chat.slack import inbound as slack_inbound

    db = live.container.db
    bind(db)
    slack_user(db, "bob", "U0BOB", display="Bob Builder")
    monkeypatch.setattr(slack_inbound, "SLOW", 0.3)
    handle_click = slack_inbound.router.handle_click

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return handle_click(*args, **kwargs)

    monkeypatch.setattr(slack_inbound.router, "handle_click", slow)
    first, second = publish(db, "天猫 慢 1", "SL-SLOW-1"), publish(db, "天猫 慢 2", "SL-SLOW-2")
    calls = [posted(live, fake, first), posted(live, fake, second)]
    for n, call in enumerate(calls):
        assert click(live, fake, call, "claim", "U0BOB", f"trig-slow-{n}").status_code == 200
    fake.wait_for("chat.update", count=2, where=lambda c: "Bob Builder" in json.dumps(
        c.body.get("blocks"), ensure_ascii=False))
    working = [c for c in fake.calls("chat.postEphemeral")
               if c.body.get("text") in {t("inbox.working", lang) for lang in ("en", "zh-CN")}]
    assert len(working) == 1 and working[0].body["user"] == "U0BOB"
    with db.session() as s:
        assert {s.get(Task, first).state, s.get(Task, second).state} == {"claimed"}
