"""Time-controlled reminder sweeps: every tier once, late after downtime, escalation of
unclaimed tasks, 催办 of pending approvals, quiet hours, the daily digest, a moved deadline,
two sweeps racing, and the sweep query's index."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.ports import Notice
from bot.watch import cards as _watch_cards  # noqa: F401  (the feature's cards)
from bot.watch.ingest import ingest
from bot.watch.reminders import due_query, sweep
from bot.watch.settings import WatchSettings
from cards.builders import BUILDERS
from commands import Inbound, router
from storage.models import (
    ApprovalStep,
    Campaign,
    ChatBinding,
    OutboxMessage,
    ReminderLog,
    Task,
    User,
)
from storage.models_watch import NoticeBody

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2031, 3, 10, 10, 0, tzinfo=SH)  # far from the demo notices' deadlines
H = timedelta(hours=1)


def plain(**kw) -> WatchSettings:
    base = {"digest_time": "", "quiet_hours": "", "_env_file": None}
    return WatchSettings(**{**base, **kw})


def new_task(db, external_id: str, deadline: datetime, *, known: datetime | None = None,
             platform: str = "tmall", **fields) -> int:
    ingest(db, [Notice(platform=platform, external_id=external_id, title=f"活动 {external_id}",
                       registration_end=deadline, **fields)], now=known or NOW - 10 * 24 * H)
    with db.session() as s:
        return s.exec(select(Task.id).join(Campaign).where(
            Campaign.external_id == external_id)).one()


def user(db, name: str) -> User:
    with db.session() as s:
        return s.exec(select(User).where(User.name == name)).one()


def logs(db, task_id: int) -> list[tuple[str, bool]]:
    with db.session() as s:
        return [(r.tier, r.late) for r in s.exec(select(ReminderLog).where(
            ReminderLog.task_id == task_id).order_by(ReminderLog.id))]


def outbox(db, prefix: str) -> list[OutboxMessage]:
    with db.session() as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.key.like(f"{prefix}%"))
                           .order_by(OutboxMessage.id)))


def test_each_tier_once_to_the_channel_then_the_claimant(seeded):
    db = seeded
    deadline = NOW + 4 * 24 * H
    task_id = new_task(db, "T-1", deadline)
    settings = plain()
    assert sweep(db, now=deadline - 73 * H, settings=settings).sent == []
    assert sweep(db, now=deadline - 72 * H, settings=settings).sent == [(task_id, "72h#0")]
    assert sweep(db, now=deadline - 71 * H, settings=settings).sent == []  # never twice
    cards = outbox(db, f"reminder:{task_id}:72h#0")
    assert [(c.chat, c.channel_id, c.kind) for c in cards] == [("web", "tmall-promo", "card")]
    with db.session() as s:
        card = BUILDERS["reminder"](s, cards[0].payload["params"], "en")
    assert "72 h left until registration closes" in card.text
    assert "Nobody has claimed it yet" in card.text and card.buttons[0].action == "claim"
    assert {"wang.fang", "li.na", "alex"} <= set(card.mentions)  # the bound roles' members

    # 24 h before: the 24 h tier, and — still unclaimed — escalation to the manager.
    report = sweep(db, now=deadline - 24 * H, settings=settings)
    assert sorted(report.sent) == [(task_id, "24h#0"), (task_id, "unclaimed#0")]
    manager = user(db, "zhou.qiang")
    escalation = outbox(db, f"reminder:{task_id}:unclaimed#0")
    assert [(m.kind, m.payload.get("user")) for m in escalation] == [
        ("card", None), ("private", "zhou.qiang")]
    assert "仍无人认领" in escalation[1].payload["text"]
    with db.session() as s:
        card = BUILDERS["reminder"](s, escalation[0].payload["params"], "zh-CN")
    assert "已升级给 周强(经理)" in card.text and card.mentions == ["zhou.qiang"]
    assert manager.id

    # Claimed: the next tiers also go privately to the claimant.
    perform(db, ActionRequest(task_id, "claim", Actor.of(user(db, "li.na"))))
    assert sweep(db, now=deadline - 4 * H, settings=settings).sent == [(task_id, "4h#0")]
    private = [m for m in outbox(db, f"reminder:{task_id}:4h#0") if m.kind == "private"]
    assert [m.payload["user"] for m in private] == ["li.na"]
    assert "4 小时" in private[0].payload["text"] and "补发" not in private[0].payload["text"]
    assert sweep(db, now=deadline - H + timedelta(minutes=2), settings=settings).sent == [
        (task_id, "1h#0")]
    assert logs(db, task_id) == [("72h#0", False), ("24h#0", False), ("unclaimed#0", False),
                                 ("4h#0", False), ("1h#0", False)]


def test_after_downtime_every_passed_tier_is_sent_once_marked_late(seeded):
    db = seeded
    deadline = NOW + 3 * 24 * H
    task_id = new_task(db, "T-down", deadline)
    back = deadline - 30 * 60 * timedelta(seconds=1)  # back up 30 minutes before closing
    report = sweep(db, now=back, settings=plain())
    assert sorted(tier for _, tier in report.sent) == ["1h#0", "24h#0", "4h#0", "72h#0",
                                                      "unclaimed#0"]
    assert report.late == 5 and all(late for _, late in logs(db, task_id))
    assert sweep(db, now=back + timedelta(minutes=1), settings=plain()).sent == []
    with db.session() as s:
        card = BUILDERS["reminder"](s, outbox(db, f"reminder:{task_id}:72h#0")[0]
                                    .payload["params"], "en")
    assert "late: was due at" in card.text and "30 min left" in card.text


def test_tiers_that_fell_due_before_the_notice_arrived_are_not_sent(seeded):
    db = seeded
    deadline = NOW + 10 * H
    task_id = new_task(db, "T-short", deadline, known=NOW)  # found 10 h before closing
    report = sweep(db, now=NOW, settings=plain())
    assert report.sent == [] and report.skipped == 3  # 72 h, 24 h, unclaimed: too late
    assert sweep(db, now=deadline - 4 * H, settings=plain()).sent == [(task_id, "4h#0")]


def test_a_moved_deadline_gets_fresh_reminders(seeded):
    db = seeded
    deadline = NOW + 4 * 24 * H
    task_id = new_task(db, "T-move", deadline)
    sweep(db, now=deadline - 72 * H, settings=plain())
    moved_at = deadline - 60 * H
    later = deadline + 2 * 24 * H
    ingest(db, [Notice(platform="tmall", external_id="T-move", title="活动 T-move",
                       registration_end=later)], now=moved_at)
    with db.session() as s:
        task = s.get(Task, task_id)
        body = s.get(NoticeBody, task.campaign_id)
        assert task.deadline == later and body.deadline_rev == 1
    assert sweep(db, now=deadline - 30 * H, settings=plain()).sent == []  # old deadline: gone
    assert sweep(db, now=later - 72 * H, settings=plain()).sent == [(task_id, "72h#1")]
    assert [tier for tier, _ in logs(db, task_id)] == ["72h#0", "72h#1"]


def test_quiet_hours_defer_what_can_wait(seeded):
    db = seeded
    settings = plain(quiet_hours="22:00-08:00")
    night = NOW.replace(hour=23, minute=0)
    found = night - 2 * H  # both notices arrived at 21:00
    urgent = new_task(db, "Q-urgent", night.replace(minute=30) + 3 * H, known=found)  # 02:30
    patient = new_task(db, "Q-patient", night + 23 * H, known=found)  # 22:00 tomorrow
    report = sweep(db, now=night, settings=settings)
    assert report.sent == [(urgent, "4h#0")]  # due 22:30 in quiet hours, but can't wait
    assert report.deferred == 2  # patient's 24 h tier and its unclaimed escalation
    assert logs(db, urgent) == [("4h#0", False)]
    assert sweep(db, now=night + 2.5 * H, settings=settings).sent == [(urgent, "1h#0")]
    morning = (night + 9 * H).replace(hour=8, minute=0)
    report = sweep(db, now=morning, settings=settings)
    assert sorted(report.sent) == [(patient, "24h#0"), (patient, "unclaimed#0")]
    assert logs(db, patient) == [("24h#0", False), ("unclaimed#0", False)]  # deferred ≠ late


def test_pending_approvals_are_nagged_at_half_and_ninety_percent_of_sla(seeded):
    db = seeded
    task_id = new_task(db, "A-1", NOW + 3 * 24 * H)
    requester = user(db, "li.na")
    with db.session() as s:
        task = s.get(Task, task_id)
        task.state, task.claimed_by = "in_approval", requester.id
        s.add(task)
        s.add(ApprovalStep(task_id=task_id, role="manager", requested_by=requester.id,
                           created_at=NOW, due_at=NOW + 4 * H))
    settings = plain(reminder_tiers="")
    assert sweep(db, now=NOW + H, settings=settings).nags == 0
    assert sweep(db, now=NOW + 2 * H, settings=settings).nags == 1
    assert sweep(db, now=NOW + 2.5 * H, settings=settings).nags == 0
    assert sweep(db, now=NOW + 3.7 * H, settings=settings).nags == 1
    assert sweep(db, now=NOW + 5 * H, settings=settings).nags == 0  # overdue: approvals escalates
    nags = outbox(db, f"reminder:{task_id}:nag")
    channels = [(m.chat, m.channel_id) for m in nags if m.kind == "card"]
    private = [m.payload["user"] for m in nags if m.kind == "private"]
    assert channels == [("web", "approvals")] * 2 and private == ["zhou.qiang"] * 2
    with db.session() as s:
        card = BUILDERS["reminder"](s, nags[0].payload["params"], "zh-CN")
    assert card.title.startswith("催办审批") and "第 1 次催办" in card.text
    assert card.mentions == ["zhou.qiang"]


def test_daily_digest_once_per_channel_and_day(seeded):
    db = seeded
    settings = plain(digest_time="09:00")
    morning = NOW.replace(hour=8, minute=59)
    today = new_task(db, "D-today", NOW.replace(hour=18))
    new_task(db, "D-later", NOW + 5 * 24 * H)
    waiting = new_task(db, "D-approval", NOW + 2 * 24 * H, platform="jd")
    with db.session() as s:
        task = s.get(Task, waiting)
        task.state = "in_approval"
        s.add(task)
    assert sweep(db, now=morning, settings=settings).digests == 0
    report = sweep(db, now=morning + timedelta(minutes=1), settings=settings)
    assert report.digests == 3  # tmall-promo, jd-promo, douyin-pdd
    assert sweep(db, now=morning + 5 * H, settings=settings).digests == 0
    rows = {m.channel_id: m for m in outbox(db, "digest:")}
    assert sorted(rows) == ["douyin-pdd", "jd-promo", "tmall-promo"]
    with db.session() as s:
        tmall = BUILDERS["digest"](s, rows["tmall-promo"].payload["params"], "en")
        jd = BUILDERS["digest"](s, rows["jd-promo"].payload["params"], "en")
    assert tmall.title == "Daily digest · 2031-03-10"
    assert tmall.fields[0].label == "Closing today (1)" and f"#{today} " in tmall.fields[0].value
    assert jd.fields[1].label == "Awaiting approval (1)" and f"#{waiting} " in jd.fields[1].value
    tomorrow = morning + 24 * H + timedelta(minutes=1)
    assert sweep(db, now=tomorrow, settings=settings).digests == 3


def test_two_sweeps_at_once_send_each_reminder_once(seeded):
    db = seeded
    deadline = NOW + 2 * H
    ids = [new_task(db, f"R-{i}", deadline) for i in range(12)]
    barrier = threading.Barrier(2)
    reports = []

    def run() -> None:
        barrier.wait()
        reports.append(sweep(db, now=NOW, settings=plain()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    sent = [item for r in reports for item in r.sent]
    assert sorted(sent) == sorted((i, tier) for i in ids for tier in
                                  ("72h#0", "24h#0", "4h#0", "unclaimed#0"))
    with db.session() as s:
        assert len(s.exec(select(ReminderLog)).all()) == 48
        cards = s.exec(select(OutboxMessage).where(OutboxMessage.key.like("reminder:%"),
                                                   OutboxMessage.kind == "card")).all()
        assert len(cards) == 48


def test_set_an_unclear_deadline_by_command_and_button(seeded):
    db = seeded
    ingest(db, [Notice(platform="tmall", external_id="U-1", title="天猫会员日",
                       text="具体报名时间另行通知")])
    with db.session() as s:
        task = s.exec(select(Task).join(Campaign).where(Campaign.external_id == "U-1")).one()
        card = BUILDERS["task"](s, {"task_id": task.id}, "zh-CN")
    [button] = [b for b in card.buttons if b.action == "set_deadline"]  # among the others
    assert button.label == "设置截止时间" and button.needs_input
    web = Inbound(chat="web", channel_id="tmall-promo", user_ref="chen.jing")
    refused = router.handle_text(db, web, f"截止 {task.id} 2031-12-03 18:00")
    assert not refused.ok and "不能执行" in refused.text  # design may not
    ops = Inbound(chat="web", channel_id="tmall-promo", user_ref="li.na")
    bad = router.handle_text(db, ops, f"截止 {task.id} 下周吧")
    assert not bad.ok and "看不懂时间" in bad.text
    done = router.handle_text(db, ops, f"截止 {task.id} 2031-12-03 18:00")
    assert done.ok and "2031-12-03 18:00" in done.text
    with db.session() as s:
        task = s.get(Task, task.id)
        body = s.get(NoticeBody, task.campaign_id)
        assert task.deadline == datetime(2031, 12, 3, 18, 0, tzinfo=SH)
        assert not body.unclear and body.deadline_rev == 1
        card = BUILDERS["task"](s, {"task_id": task.id}, "en")
    assert "set_deadline" not in [b.action for b in card.buttons]
    # The notice is re-published, still without a date: the set deadline stays.
    ingest(db, [Notice(platform="tmall", external_id="U-1", title="天猫会员日",
                       text="具体报名时间另行通知,敬请关注")])
    with db.session() as s:
        assert s.get(Task, task.id).deadline == datetime(2031, 12, 3, 18, 0, tzinfo=SH)
    # The button path: a click carries the typed time as its comment.
    ingest(db, [Notice(platform="tmall", external_id="U-2", title="天猫品类日")])
    with db.session() as s:
        other = s.exec(select(Task).join(Campaign).where(Campaign.external_id == "U-2")).one()
        [value] = [b.value for b in BUILDERS["task"](s, {"task_id": other.id}, "en").buttons
                   if b.action == "set_deadline"]
    clicked = router.handle_click(db, Inbound(chat="web", channel_id="tmall-promo",
                                              user_ref="wang.fang", event_id="ev-1"),
                                  value, "12月5日 20:00")
    assert clicked.ok, clicked.text
    with db.session() as s:
        assert s.get(Task, other.id).deadline.astimezone(SH).strftime("%m-%d %H:%M") == \
            "12-05 20:00"


def test_routing_by_category_and_mentions(seeded):
    db = seeded
    with db.session() as s:
        s.add(ChatBinding(chat="web", channel_id="beauty", platform="tmall", purpose="notices",
                          category="美妆个护", roles=["design"]))
    beauty = new_task(db, "C-beauty", NOW + 5 * 24 * H,
                      requirements={"categories": ["美妆个护"]})
    food = new_task(db, "C-food", NOW + 5 * 24 * H, requirements={"categories": ["食品"]})
    with db.session() as s:
        def channels(task_id: int) -> list[str]:
            return sorted(m.channel_id for m in s.exec(select(OutboxMessage).where(
                OutboxMessage.card_key == f"task:{task_id}")))

        assert channels(beauty) == ["beauty", "tmall-promo"]
        assert channels(food) == ["tmall-promo"]
        card = BUILDERS["task"](s, {"task_id": beauty}, "en")
    assert {"chen.jing", "li.na", "wang.fang"} <= set(card.mentions)
    # Later changes of the food task's card stay out of the beauty channel too.
    from bot.core import lifecycle
    from bot.core import outbox as outbox_module

    lifecycle.on_transition(outbox_module.task_card_listener)  # as the app wires it
    perform(db, ActionRequest(food, "claim", Actor.of(user(db, "li.na"))))
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.card_key == f"task:{food}")).all()
        assert sorted(r.channel_id for r in rows) == ["tmall-promo", "tmall-promo"]


def test_sweep_query_uses_the_state_deadline_index(db):
    if db.dialect != "sqlite":
        pytest.skip("the PostgreSQL plan is shown by bench/sweep.py on 100,000 tasks")
    compiled = due_query(plain(), NOW).compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "SEARCH tasks USING INDEX ix_tasks_state_deadline" in plan
    assert "SEARCH reminder_log USING INDEX" in plan  # the unique (task_id, tier) index
