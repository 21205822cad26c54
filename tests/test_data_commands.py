"""Editing a declaration from the chat (text commands, en + zh) and from the console form,
the declaration card, and document expiry alerts."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

import commands  # noqa: F401
from bot.declarations import doc_alerts
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from cards.builders import BUILDERS
from commands import Inbound, router
from storage.models import AuditEvent, OutboxMessage, Task
from tests.fakes import data_pool as pool


@pytest.fixture
def guarded(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    return seeded


def say(db, who: str, text: str):
    return router.handle_text(db, Inbound("web", "jd-promo", who), text)


def drafted_jd(db) -> tuple[int, str]:
    tid = pool.task(db, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                    state="claimed")
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:
        return tid, current(s, tid)[1][0].sku


def test_edit_in_chinese_and_english_updates_the_line_and_the_cards(guarded):
    db = guarded
    tid, sku = drafted_jd(db)
    with db.session() as s:
        version = s.get(Task, tid).version
    reply = say(db, "li.na", f"改 {tid} {sku} 价格=100 库存=40")
    assert reply.ok, reply.text
    assert reply.text.startswith(f"已修改 #{tid} {sku}:活动价 100.00,活动库存 40")
    reply = say(db, "li.na", f"edit {tid} {sku} stock=45")
    assert reply.ok and "活动库存 45" in reply.text  # li.na reads Chinese
    with db.session() as s:
        line = next(ln for ln in current(s, tid)[1] if ln.sku == sku)
        assert (line.promo_price, line.promo_stock) == (Decimal("100.00"), 45)
        assert s.get(Task, tid).version == version + 2
        edits = s.exec(select(AuditEvent).where(AuditEvent.action == "edit_declaration")).all()
        assert [e.detail["changes"] for e in edits] == [{"price": "100", "stock": "40"}, {"stock": "45"}]
        cards = s.exec(select(OutboxMessage.card_key).where(OutboxMessage.task_id == tid)).all()
    assert f"declaration:{tid}" in cards and f"task:{tid}" in cards


def test_edit_errors_are_clear(guarded):
    db = guarded
    tid, sku = drafted_jd(db)
    bad = say(db, "li.na", f"edit {tid} {sku} price=abc")
    assert not bad.ok and "「活动价」的值「abc」无效:不是数字" in bad.text
    negative = say(db, "li.na", f"改 {tid} {sku} 库存=-3")
    assert not negative.ok and "「活动库存」的值「-3」无效:不能为负数" in negative.text
    unknown = say(db, "li.na", f"edit {tid} NOPE-1 price=10")
    assert not unknown.ok and "申报单里没有 SKU NOPE-1" in unknown.text
    field = say(db, "li.na", f"edit {tid} {sku} colour=red")
    assert not field.ok and "不认识「colour」:可以改 价格=…、库存=…,或写 删除" in field.text
    other = say(db, "wang.fang", f"edit {tid} {sku} price=10")  # not the claimant
    assert not other.ok and "李娜" in other.text
    pool.act(db, tid, "request_approval", "li.na")
    late = say(db, "li.na", f"edit {tid} {sku} price=10")
    assert not late.ok and "需在填报中" in late.text


def test_a_bad_edit_shows_what_is_left_to_fix_and_check_lists_it(guarded):
    db = guarded
    tid, sku = drafted_jd(db)
    with db.session() as s:
        line = next(ln for ln in current(s, tid)[1] if ln.sku == sku)
        ceiling = (line.list_price * Decimal("0.8")).quantize(Decimal("0.01"))
    reply = say(db, "alex", f"edit {tid} {sku} price={line.list_price}")  # alex is not the claimant
    assert not reply.ok
    reply = say(db, "li.na", f"edit {tid} {sku} price={line.list_price} stock=1")
    assert reply.ok and "仍有问题" in reply.text and "活动库存至少 30" in reply.text
    check = say(db, "alex", f"check {tid}")
    assert "failed the compliance pre-check (2 issues" in check.text
    assert f"set the promo price to at most {ceiling}" in check.text
    assert check.card is not None and check.card.color == "red"
    say(db, "li.na", f"改 {tid} {sku} 价格={ceiling} 库存=30")
    assert "合规预检通过" in say(db, "li.na", f"预检 {tid}").text


def test_remove_a_line_and_override_from_chat(guarded):
    db = guarded
    tid, sku = drafted_jd(db)
    assert say(db, "li.na", f"改 {tid} {sku} 删除").text == f"已从 #{tid} 移除 {sku}。"
    with db.session() as s:
        assert sku not in [ln.sku for ln in current(s, tid)[1]]
        other = current(s, tid)[1][0].sku
    say(db, "li.na", f"edit {tid} {other} stock=1")
    blocked = say(db, "li.na", f"送审 {tid}")
    assert not blocked.ok and "未通过合规预检" in blocked.text
    refused = say(db, "li.na", f"override {tid} request_approval customer asked")
    assert not refused.ok and "你的角色(运营)不能放行合规问题" in refused.text
    assert f"经理可执行「强制 {tid} 送审 <原因>」放行" in refused.text  # only what each can do
    assert not say(db, "zhou.qiang", f"强制 {tid} 送审").ok  # no reason
    done = say(db, "zhou.qiang", f"强制 {tid} 送审 库存由仓库另行补足")
    assert done.ok and "审批中" in done.text


def test_excel_command_gives_the_card_with_links(guarded):
    db = guarded
    tid, _ = drafted_jd(db)
    reply = say(db, "alex", f"excel {tid}")
    assert f"/console/declarations/{tid}/bundle" in reply.text
    labels = {b.label: b.url for b in reply.card.buttons}
    assert labels["Download the registration pack (.zip: Excel and documents)"].endswith(
        f"/console/declarations/{tid}/bundle")  # says it is a .zip
    assert labels["Edit"].endswith(f"/console/declarations/{tid}/edit")
    assert "passed" in reply.card.fields[0].value
    assert "declaration v1" in reply.card.text and "Pre-check: passed." in reply.card.text  # template


def test_rules_command_lists_versions_in_both_languages(guarded):
    db = guarded
    zh = say(db, "li.na", "规则")
    assert "天猫:v1,rules-team" in zh.text and "拼多多:v1" in zh.text  # names, not codes
    en = say(db, "alex", "rules jd")
    assert en.text.startswith("JD: v1 by rules-team")


def test_console_form_and_json_edit(settings, seeded):
    from bot.web.app import create_app

    app = create_app(settings)
    with TestClient(app) as client:
        tid, sku = drafted_jd(seeded)
        page = client.get(f"/console/declarations/{tid}/edit", params={"user": "li.na"})
        assert page.status_code == 200 and sku in page.text and "<script" not in page.text
        response = client.post(f"/console/api/declarations/{tid}/lines",
                               json={"user": "li.na", "sku": sku, "stock": "33"})
        assert response.status_code == 200
        body = response.json()
        assert next(ln for ln in body["lines"] if ln["sku"] == sku)["promo_stock"] == 33
        refused = client.post(f"/console/api/declarations/{tid}/lines",
                              json={"user": "zhao.lei", "sku": sku, "stock": "1"})
        assert refused.status_code == 403
        bad = client.post(f"/console/api/declarations/{tid}/lines",
                          json={"user": "li.na", "sku": sku, "price": "1e9999x"})
        assert bad.status_code == 422 and "「活动价」的值「1e9999x」无效" in bad.json()["detail"]["message"]
        with seeded.session() as s:
            lines = current(s, tid)[1]
        form = {"user": "li.na", "sku": [ln.sku for ln in lines],
                "price": [str(ln.promo_price) for ln in lines],
                "stock": [str(ln.promo_stock if ln.sku != sku else 35) for ln in lines]}
        saved = client.post(f"/console/declarations/{tid}/edit", data=form, follow_redirects=False)
        assert saved.status_code == 303 and "msg=" in saved.headers["location"]
        assert "已保存 1 处修改" in client.get(saved.headers["location"]).text
    with seeded.session() as s:
        assert next(ln for ln in current(s, tid)[1] if ln.sku == sku).promo_stock == 35
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    assert card.title.startswith(f"申报单 #{tid} v1") and card.table


def test_documents_expiring_within_30_days_are_alerted_once(guarded):
    db = guarded
    pool.document(db, "quality_report", "过期的质检报告", days=-3)
    assert doc_alerts.run(db) == 2  # 光研 authorisation (20 days) and the expired report
    assert doc_alerts.run(db) == 0
    with db.session() as s:
        texts = [m.payload["text"] for m in s.exec(select(OutboxMessage).where(
            OutboxMessage.kind == "text", OutboxMessage.channel_id == "ops"))]
    assert any("品牌授权书(光研)" in t and "还剩" in t for t in texts)
    assert any("过期的质检报告" in t and "已于" in t for t in texts)
