"""DingTalk rendering: every card kind fits DingTalk's shapes, untrusted text stays text,
and the webhook limiter never lets more than the limit through in any window."""

from __future__ import annotations

import json
import re

import pytest

from adapters.chat.dingtalk import escape, render
from adapters.chat.dingtalk.webhook import SlotLimiter, sign
from cards.builders import BUILDERS
from cards.model import Button, Card, CardField, Line

KINDS = ["notice", "task", "approval", "reminder", "digest", "result", "error", "report"]
HOSTILE = "@所有人 ＠all <font color=red>红</font> **粗** [点](javascript:alert(1)) # 标题\n> 引用"


@pytest.mark.parametrize("kind", KINDS)
def test_every_card_kind_renders_to_all_three_shapes(kind):
    card = Card(kind=kind, title=f"{kind} {HOSTILE}", subtitle="状态",
                fields=[CardField(label="说明", value=HOSTILE, short=False)], text=HOSTILE,
                table_header=["SKU", "价"], table=[Line(cells=["MZ-001", "99.00"])] * 30,
                buttons=[Button(label="批准", action="approve", value="pp1|approve|1|1"),
                         Button(label="看规则", action="open", url="https://example.com/r")],
                footer="最近:@所有人", link="http://127.0.0.1:8000/console?task=1",
                task_id=1, version=1)
    params = render.interactive(card, "zh-CN")
    assert all(isinstance(v, str) for v in params.values())
    msg_key, msg_param = render.robot_message(card, "zh-CN")
    hook = render.webhook_card(card, "zh-CN")
    for payload in (json.dumps(params, ensure_ascii=False),
                    json.dumps(msg_param, ensure_ascii=False),
                    json.dumps(hook, ensure_ascii=False)):
        assert "@所有人" not in payload and "＠all" not in payload
        assert "<font" not in payload
    for markdown in (params["markdown"], msg_param["text"], hook["actionCard"]["text"]):
        assert not re.search(r"(?<!\\)\]\(", markdown)  # no live link
        assert not re.search(r"\n#", markdown) and not re.search(r"(?<!\\)\*\*粗", markdown)
    assert len(params["title"]) <= render.TITLE_MAX
    assert "另有 10 行" in params["markdown"]  # 30 rows → 20 shown, a pointer to the rest
    assert len(params["markdown"]) <= render.BODY_MAX
    buttons = json.loads(params["buttons"])
    assert buttons[0]["value"] == "pp1|approve|1|1" and buttons[1]["url"].startswith("https://")
    assert msg_key == "sampleActionCard2" and hook["at"]["isAtAll"] is False


def test_markdown_escape_keeps_the_words_and_loses_the_markup():
    out = escape.markdown(HOSTILE)
    assert "红" in out and "粗" in out and "所有人" in out
    assert "<" not in out and "[" not in out and "\\*\\*" in out and "［点］" in out
    assert "\n>" not in out and "＜font" in out  # no quote, no tag: shown as typed
    assert escape.plain("a\nb\u202ec") == "a bc"
    assert escape.safe_url("javascript:alert(1)") == "" and escape.safe_url("https://x.cn/a")


def test_locked_card_has_no_buttons_and_says_so():
    card = Card(kind="approval", title="审批", locked=True,
                buttons=[Button(label="批准", action="approve", value="pp1|approve|1|1")])
    params = render.interactive(card, "en")
    assert params["buttons"] == "[]" and params["locked"] == "true"
    assert params["status"].startswith("Decided")


def test_real_task_card_renders(seeded):
    from sqlmodel import select

    from storage.models import Task

    with seeded.session() as session:
        task = session.exec(select(Task).order_by(Task.id)).first()
        card = BUILDERS["task"](session, {"task_id": task.id}, "zh-CN")
    params = render.interactive(card, "zh-CN")
    assert params["subtitle"] == "待认领" and "平台" in params["markdown"]


def test_limiter_never_exceeds_the_limit_in_any_window_and_defers_each_message_once():
    now = [0.0]
    limiter = SlotLimiter(20, 60, clock=lambda: now[0])
    sends: list[float] = []
    pending = {f"m{i}": 0.0 for i in range(75)}
    deferrals = dict.fromkeys(pending, 0)
    while pending:
        for key, due in sorted(pending.items(), key=lambda kv: kv[1]):
            if due > now[0]:
                continue
            wait = limiter.acquire(key)
            if wait == 0:
                sends.append(now[0])
                del pending[key]
            else:
                deferrals[key] += 1
                pending[key] = now[0] + wait
        now[0] += 1.0
    assert len(sends) == 75
    assert all(sum(1 for s in sends if start <= s < start + 60) <= 20 for s0 in sends
               for start in (s0,))
    assert max(deferrals.values()) == 1


def test_webhook_signature_matches_dingtalk_algorithm():
    import base64
    import hashlib
    import hmac
    from urllib.parse import unquote_plus

    expected = base64.b64encode(hmac.new(b"SECabc", b"1700000000000\nSECabc",
                                         hashlib.sha256).digest()).decode()
    assert unquote_plus(sign("SECabc", 1700000000000)) == expected
