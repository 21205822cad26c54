"""Text commands in English and Chinese and card clicks, through the one router."""

from __future__ import annotations

from sqlmodel import select

import commands  # noqa: F401
from cards.callback import CallbackData
from commands import Inbound, router
from storage.models import Task


def say(db, who: str, text: str, event: str | None = None):
    return router.handle_text(db, Inbound("web", "tmall-promo", who, event_id=event), text)


def first_task(db) -> Task:
    with db.session() as s:
        return s.exec(select(Task).order_by(Task.id)).first()


def test_help_in_both_languages(seeded):
    zh = say(seeded, "li.na", "帮助")
    assert "认领 <编号>" in zh.text and zh.ok
    en = say(seeded, "alex", "help")
    assert "claim <id>" in en.text


def test_unknown_command_answers_with_help(seeded):
    reply = say(seeded, "alex", "frobnicate 3")
    assert not reply.ok and "frobnicate" in reply.text and "claim <id>" in reply.text
    reply = say(seeded, "li.na", "")
    assert "PromoPilot" in reply.text


def test_list_shows_open_campaigns_by_deadline(seeded):
    text = say(seeded, "li.na", "列表").text
    lines = [line for line in text.splitlines() if line.startswith("#")]
    assert len(lines) == 5
    assert "京东PLUS" in lines[0]  # the earliest deadline first
    assert "待认领" in lines[0]


def test_claim_in_chinese_glued_id_and_mention(seeded):
    task = first_task(seeded)
    reply = say(seeded, "li.na", f"@PromoPilot 认领{task.id}")
    assert reply.ok and "认领了任务" in reply.text
    again = say(seeded, "wang.fang", f"认领 {task.id}")
    assert not again.ok and "已被 李娜(运营) 认领" in again.text
    mine = say(seeded, "li.na", "我的").text
    assert f"#{task.id}" in mine
    assert "no tasks" in say(seeded, "alex", "mine").text


def test_status_returns_the_card(seeded):
    task = first_task(seeded)
    reply = say(seeded, "alex", f"status #{task.id}")
    assert reply.card is not None and reply.card.task_id == task.id
    assert "Claim" in [b.label for b in reply.card.buttons]


def test_bad_arguments_are_explained(seeded):
    assert "不是任务编号" in say(seeded, "li.na", "认领 abc").text
    assert "Usage" in say(seeded, "alex", "claim").text
    assert "9999" in say(seeded, "alex", "claim 9999").text
    skip = say(seeded, "li.na", f"放弃 {first_task(seeded).id}")
    assert not skip.ok and "原因" in skip.text
    ok = say(seeded, "li.na", f"放弃 {first_task(seeded).id} 库存不足")
    assert ok.ok and "已放弃" in ok.text


def test_unknown_person_is_told_how_to_be_added(seeded):
    reply = router.handle_text(seeded, Inbound("slack", "C1", "U999"), "list")
    assert not reply.ok and "U999" in reply.text and "用户 添加" in reply.text


def test_admin_adds_a_person_who_can_then_work(seeded):
    refused = say(seeded, "li.na", "user add bob ops U777")
    assert not refused.ok
    added = router.handle_text(seeded, Inbound("slack", "C1", "U1", lang_hint="en"), "list")
    assert not added.ok
    assert say(seeded, "admin", "用户 添加 bob ops,market").ok
    reply = router.handle_text(seeded, Inbound("web", "tmall-promo", "bob"), "list")
    assert reply.ok


def test_click_uses_packed_callback_and_refuses_stale_cards(seeded):
    task = first_task(seeded)
    value = CallbackData("claim", task.id, task.version).pack()
    inbound = Inbound("web", "tmall-promo", "li.na", event_id="click-1")
    assert router.handle_click(seeded, inbound, value).ok
    dup = router.handle_click(seeded, inbound, value)  # same delivery again
    assert dup.ok and "已处理过" in dup.text
    draft = CallbackData("draft", task.id, task.version).pack()  # card from before the claim
    stale = router.handle_click(seeded, Inbound("web", "tmall-promo", "li.na", event_id="c2"), draft)
    assert not stale.ok and "过期" in stale.text
    garbage = router.handle_click(seeded, Inbound("web", "x", "li.na"), "not-a-button")
    assert not garbage.ok


def test_user_add_with_chat_flag_as_the_hint_says(seeded):
    assert not say(seeded, "admin", "user add carol ops --dingtalk").ok  # id missing
    assert not say(seeded, "admin", "user add carol ops --icq 123").ok
    assert say(seeded, "admin", "user add carol ops --slack U42").ok
    reply = router.handle_text(seeded, Inbound("slack", "C1", "U42"), "list")
    assert reply.ok


def test_people_added_and_channels_bound_from_chat_are_in_the_settings_history(settings,
                                                                             seeded):
    """Who gave whom which roles, and who bound a channel, from a chat: the same audit as
    the dashboard's settings edits, shown in its recent changes."""
    from fastapi.testclient import TestClient

    from bot.web.app import create_app
    from storage.models import AuditEvent, ChatBinding

    assert say(seeded, "admin", "user add dora finance --slack U0DORA").ok
    assert say(seeded, "admin", "绑定 jd 审批").ok
    assert say(seeded, "admin", "绑定 jd 审批").ok  # already bound: nothing new to record
    with seeded.session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action.startswith("settings_"))
                        .order_by(AuditEvent.id)).all()
        binding = s.exec(select(ChatBinding).where(ChatBinding.platform == "jd",
                                                   ChatBinding.purpose == "approvals")).one()
    assert [(e.actor, e.action) for e in events] == [("admin", "settings_user_add"),
                                                      ("admin", "settings_bind")]
    assert events[0].detail["user"] == "dora" and events[0].detail["roles"] == ["finance"]
    assert events[0].detail["chat"] == "slack" and events[0].detail["external_id"] == "U0DORA"
    assert events[1].detail["after"]["id"] == binding.id
    with TestClient(create_app(settings)) as client:
        page = client.get("/dash/settings?as=admin").text
    assert "添加了成员" in page and "添加了频道绑定" in page and "U0DORA" in page


def test_a_platform_may_be_named_as_people_say_it_and_an_unknown_one_binds_nothing(seeded):
    """绑定 天猫 binds the group to tmall (a binding to "天猫" would never hear a notice), the
    answer names the marketplace in the reader's words, and a platform PromoPilot does not
    know is refused with the ones it does, nothing bound."""
    from storage.models import ChatBinding

    def bindings() -> set[tuple[str, str]]:
        with seeded.session() as s:
            return {(b.platform, b.purpose) for b in s.exec(select(ChatBinding).where(
                ChatBinding.channel_id == "tmall-promo"))}

    before = bindings()
    zh = say(seeded, "admin", "绑定 天猫 审批")
    assert zh.ok and "天猫" in zh.text and "tmall" not in zh.text, zh.text
    en = say(seeded, "admin", "bind Pinduoduo approvals")
    assert en.ok and "pdd" not in en.text, en.text
    assert bindings() - before == {("tmall", "approvals"), ("pdd", "approvals")}
    refused = say(seeded, "admin", "绑定 淘宝")
    assert not refused.ok and "淘宝" in refused.text and "tmall" in refused.text, refused.text
    assert bindings() - before == {("tmall", "approvals"), ("pdd", "approvals")}
    rules = say(seeded, "li.na", "规则 天猫")
    assert rules.ok and rules.text.startswith("天猫:v"), rules.text


def test_a_marketplace_is_named_in_the_readers_language_on_cards_and_lists(seeded):
    task = first_task(seeded)
    en, zh = say(seeded, "alex", f"status {task.id}"), say(seeded, "li.na", f"状态 {task.id}")
    assert "[Tmall]" in en.card.title and "[天猫]" not in en.card.title, en.card.title
    assert "[天猫]" in zh.card.title, zh.card.title
    assert "Tmall" in {f.value for f in en.card.fields}
    listed = say(seeded, "alex", "list").text
    assert "[JD]" in listed and "[京东]" not in listed, listed
