"""What a team lead found on the cards and in the chats, each class fixed: the rejection
reason where the claimant looks, 我的 with an accepted task still ahead, a result line at the
bottom of the channel, Slack's formatting characters in a title, Feishu's mention limit, a
person's click arriving twice."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from adapters.chat.feishu.render import MAX_MENTIONS
from adapters.chat.feishu.render import render as feishu_render
from adapters.chat.slack.render import render as slack_render
from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.errors import Conflict
from bot.core.settings import get_settings
from bot.core.views import BUILDERS
from cards.callback import CallbackData
from cards.model import Card, CardField
from commands import Inbound
from commands import router as chat
from storage.models import Campaign, OutboxMessage, Task
from storage.types import utcnow
from tests.fakes import data_pool as pool


def in_approval(db) -> int:
    tid = pool.task(db, "jd", {"categories": ["家电数码"], "min_discount": 0.2,
                               "min_stock": 30}, state="claimed")
    pool.act(db, tid, "draft", "li.na")
    pool.act(db, tid, "request_approval", "li.na")
    return tid


def say(db, who: str, text: str):
    return chat.handle_text(db, Inbound("web", "jd-promo", who), text)


def test_the_claimants_card_shows_why_it_was_rejected(seeded):
    tid = in_approval(seeded)
    reason = "折扣太深,毛利不够;请把 JD-201 调到 599 以上" + "长" * 2000
    pool.act(seeded, tid, "reject", "zhou.qiang", comment=reason)
    with seeded.session() as s:
        card = BUILDERS["task"](s, {"task_id": tid}, "zh-CN")
    field = next(f for f in card.fields if f.label.startswith("驳回原因"))
    assert "周强(经理)" in field.label and not field.short
    assert field.value.startswith("折扣太深,毛利不够") and len(field.value) <= 500  # cut, not lost
    assert "最近:周强(经理) 驳回" in card.footer
    pool.act(seeded, tid, "request_approval", "li.na")  # asked again: the reason has done its job
    with seeded.session() as s:
        again = BUILDERS["task"](s, {"task_id": tid}, "en")
    assert not [f for f in again.fields if f.label.startswith(("Rejected", "Changes"))]


def test_changes_requested_are_shown_in_english_too(seeded):
    tid = in_approval(seeded)
    pool.act(seeded, tid, "request_changes", "zhou.qiang", comment="库存再加 20")
    with seeded.session() as s:
        card = BUILDERS["task"](s, {"task_id": tid}, "en")
    field = next(f for f in card.fields if f.label.startswith("Changes asked by"))
    assert field.value == "库存再加 20"


def test_mine_lists_an_accepted_task_whose_event_is_still_ahead(seeded):
    tid = pool.task(seeded, "jd", state="claimed", event_days=10)
    with seeded.session() as s:
        s.get(Task, tid).state = "accepted"  # 报名成功, the event in ten days
    mine = say(seeded, "li.na", "我的")
    assert mine.text != "你目前没有负责的任务。" and f"#{tid}" in mine.text and "报名成功" in mine.text
    with seeded.session() as s:  # once the event is over it is history, not a task
        task = s.get(Task, tid)
        s.get(Campaign, task.campaign_id).event_end = utcnow() - timedelta(days=1)
    assert f"#{tid}" not in say(seeded, "li.na", "我的").text


def test_a_result_posts_a_line_at_the_bottom_of_the_channel_with_a_link(live):
    db = live.container.db
    live.drain()  # the notice cards are in the console's channels
    with db.session() as s:
        task = s.exec(select(Task).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == "jd")).first()
        task.state = "in_review"
        tid = task.id
    with db.session() as s:
        lifecycle.apply(s, tid, "accept", Actor.system("review"))
    live.drain()
    with db.session() as s:
        lines = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "text",
                                                   OutboxMessage.key.startswith(f"result:{tid}:"))
                       ).all()
    assert [(m.chat, m.channel_id) for m in lines] == [("web", "jd-promo")]
    text = lines[0].payload["text"]
    assert text.startswith(f"✅ #{tid} ") and "报名成功" in text
    assert f"{get_settings().base_url}/console?channel=jd-promo&task={tid}" in text  # as cards
    said = httpx.get(f"{live.url}/console/api/channels/jd-promo/messages?user=li.na").json()
    assert said["messages"][-1]["text"] == text  # the last message of the channel
    with pytest.raises(Conflict), db.session() as s:  # the verdict again: refused, no line
        lifecycle.apply(s, tid, "accept", Actor.system("review"))
    live.drain()
    with db.session() as s:
        assert len(s.exec(select(OutboxMessage.id).where(
            OutboxMessage.key.startswith(f"result:{tid}:"))).all()) == 1


def test_slack_shows_a_titles_formatting_characters_literally():
    card = Card(kind="notice", title="*限时* 秒杀 _新品_ ~满减~ `码` MZ_001",
                fields=[CardField(label="*要求*", value="价格*须*低于 a*b")], footer="by *x*")
    blocks = slack_render(card, "zh-CN")["blocks"]
    title = blocks[0]["text"]["text"]
    inner = title.split(" ", 1)[1]
    assert inner.startswith("*") and inner.endswith("*")  # bold, once
    assert inner[1:-1].count("*") == 0 and "∗限时∗" in inner  # its own stars are look-alikes
    assert "ˍ新品ˍ" in inner and "∼满减∼" in inner and "ˋ码ˋ" in inner
    assert "MZ_001" in inner  # an underscore inside a code is left alone (Slack ignores it)
    field = blocks[1]["fields"][0]["text"]
    assert field == "*∗要求∗*\n价格∗须∗低于 a∗b"


def test_feishu_says_how_many_more_people_a_card_meant_to_mention():
    ids = [f"ou_{i:03d}" for i in range(27)]
    body = feishu_render(Card(kind="notice", title="t"), "zh-CN", mention_ids=ids)
    content = body["elements"][0]["text"]["content"]
    assert content.count("<at id=") == MAX_MENTIONS
    assert content.endswith("另有 7 人未能在卡片上提醒")
    few = feishu_render(Card(kind="notice", title="t"), "en", mention_ids=ids[:3])
    assert "more" not in few["elements"][0]["text"]["content"]


def test_a_persons_second_claim_click_says_it_is_theirs_already(seeded):
    tid = pool.task(seeded, "jd", state="new")
    with seeded.session() as s:
        task = s.get(Task, tid)
        task.claimed_by = None
        version = task.version
    value = CallbackData("claim", tid, version).pack()
    first = chat.handle_click(seeded, Inbound("web", "jd-promo", "li.na", "cb-1"), value)
    second = chat.handle_click(seeded, Inbound("web", "jd-promo", "li.na", "cb-2"), value)
    assert first.ok and not second.ok
    assert "已经由你认领" in second.text and "已被" not in second.text
    other = chat.handle_click(seeded, Inbound("web", "jd-promo", "wang.fang", "cb-3"), value)
    assert "已被 李娜(运营) 认领" in other.text  # someone else still hears who has it


def test_a_published_sandbox_notice_arrives_on_the_next_watch_pass(live):
    """README: a notice published on the sandbox shows up on the next poll, within the watch
    interval (PROMOPILOT_WATCH_INTERVAL_SECONDS, a minute), not five minutes later."""
    watcher = live.container.extras["watcher"]
    assert watcher.respect_schedule  # the server polls each source when it is due
    start = utcnow()
    watcher.clock = lambda: start
    watcher.run_once()  # every sandbox feed polled now
    published = httpx.post(f"{live.url}/sandbox/jd/notices", json={
        "id": "JD-README-1", "title": "京东新品试用招商", "type": "日常",
        "registration": {"start": start.isoformat(),
                         "end": (start + timedelta(days=5)).isoformat()}})
    assert published.status_code == 201
    # the next pass, one interval later — reaching this feed a second sooner than the last did
    watcher.clock = lambda: start + timedelta(seconds=live.settings.watch_interval_seconds - 1)
    watcher.run_once()
    with live.container.db.session() as s:
        assert s.exec(select(Campaign).where(Campaign.external_id == "JD-README-1")).first()
