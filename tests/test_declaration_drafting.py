"""Drafting on a real team's data: a 20,000-SKU pool is scoped to the campaign's categories
and brands and capped, with every SKU left out counted under its reason; drafting again
refills and says what changed; documents are attached by command and button; every
pre-check hint is listable; a price below cost is flagged; and the declaration card stays
inside each chat's limits however large the declaration."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlmodel import select

import commands  # noqa: F401
from adapters.chat.dingtalk import render as dingtalk
from adapters.chat.feishu import render as feishu
from adapters.chat.slack import render as slack
from bot.declarations import draft_settings
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current, last_fill
from cards.builders import BUILDERS
from commands import Inbound, router
from storage.models import AuditEvent, Declaration, DeclarationLine, Product, QualificationDocument, Task
from storage.types import utcnow
from tests.fakes import data_pool as pool
from tests.fakes.slack import block_kit_problems


@pytest.fixture
def guarded(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    return seeded


@pytest.fixture
def cap(monkeypatch):
    """Set ``PROMOPILOT_DRAFT_MAX_LINES`` for one test."""
    def set_cap(n: int) -> None:
        monkeypatch.setenv("PROMOPILOT_DRAFT_MAX_LINES", str(n))
        draft_settings.get_draft_settings.cache_clear()

    yield set_cap
    monkeypatch.delenv("PROMOPILOT_DRAFT_MAX_LINES", raising=False)
    draft_settings.get_draft_settings.cache_clear()


def say(db, who: str, text: str):
    return router.handle_text(db, Inbound("web", "douyin-pdd", who), text)


def bulk_products(db, rows: list[dict]) -> None:
    now = utcnow()
    defaults = {"barcode": "", "safety_stock": 0, "image_path": "", "image_width": 750,
                "image_height": 1000, "image_format": "JPEG", "updated_at": now}
    with db.session() as s:
        s.execute(insert(Product.__table__), [{**defaults, **r} for r in rows])


def big_pool(db) -> None:
    """19,990 more SKUs: beauty of two brands (and a few traps), food and electronics."""
    rows = []
    for i in range(19_990):
        if i < 600:
            brand, category = ("水润坊", "美妆个护/面膜") if i % 2 else ("光研", "美妆个护")
        else:
            brand, category = f"品牌{i % 40}", "食品" if i % 2 else "家电数码"
        cost = Decimal("95.00") if i in (1, 3, 5) else Decimal("30.00")  # 3 lose money at 88 %
        stock = 5 if i in (7, 9) else 300  # 2 too few to declare 20
        rows.append({"sku": f"P{i:05d}", "title": f"测试商品 {i} 标准装", "brand": brand,
                     "category": category, "list_price": Decimal("100.00"), "cost": cost,
                     "stock": stock})
    bulk_products(db, rows)


def test_a_20000_sku_pool_draft_is_scoped_capped_and_says_what_was_left_out(settings, guarded, cap):
    db = guarded
    big_pool(db)
    cap(40)
    tid = pool.task(db, "douyin", {"min_discount": 0.12, "min_stock": 20,
                                   "required_documents": ["营业执照", "品牌授权书"],
                                   "categories": ["美妆个护"], "brands": ["水润坊", "光研"]},
                    state="claimed", event_days=25)  # 光研's authorisation lasts 20 days
    reply = say(db, "li.na", f"填报 {tid}")
    assert reply.ok, reply.text
    with db.session() as s:
        declaration, lines = current(s, tid)
        products = {p.sku: p for p in s.exec(select(Product).where(
            Product.sku.in_([ln.sku for ln in lines])))}
        fill = last_fill(s, tid)
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
        en = BUILDERS["declaration"](s, {"task_id": tid}, "en")
    assert len(lines) == 40  # capped: 300 水润坊 beauty SKUs qualified
    assert {products[ln.sku].brand for ln in lines} == {"水润坊"}
    assert all(products[ln.sku].category.startswith("美妆个护") for ln in lines)
    assert all(products[ln.sku].cost <= ln.promo_price <= ln.list_price * Decimal("0.88")
               for ln in lines), [(ln.sku, ln.list_price, ln.promo_price) for ln in lines]
    assert fill["pool"] == 20_000 and fill["taken"] == 40 and fill["left_out"] == 19_960
    reasons = {g["reason"]: g for g in fill["dropped"]}
    assert reasons["out_of_category"]["n"] == 19_390 + 6  # food and electronics (+ 6 demo SKUs)
    assert reasons["authorisation_ends"]["n"] == 300 + 2  # 光研: 300 in the pool, MZ-003/004
    assert "MZ-003" in reasons["authorisation_ends"]["skus"]
    assert reasons["below_cost"]["n"] == 3 and reasons["low_stock"]["n"] == 2
    assert reasons["over_cap"]["n"] == 300 - 3 - 2 + 2 - 40  # the rest of 水润坊 (+ MZ-001/002)
    assert sum(g["n"] for g in fill["dropped"]) == fill["left_out"]
    # the reply says what was taken, from what, and why the rest was left out
    assert f"已填报 #{tid} v1:从数据池 20000 个 SKU 中收录 40 个" in reply.text
    assert "MZ-003" in reply.text and "光研的品牌授权书" in reply.text and "早于活动结束" in reply.text
    assert "19396 个 SKU 不在活动类目(美妆个护)内" in reply.text
    assert "超出每单 40 行的上限" in reply.text and "低于成本" in reply.text
    # the card: a summary with the reasons, the first lines, totals with cost and margin
    left = next(f for f in card.fields if f.label.startswith("未收录 19960 个 SKU"))
    assert "MZ-003" in left.value and "光研" in left.value
    left_en = next(f for f in en.fields if f.label.startswith("19960 SKUs left out"))
    assert "authorisation ends" in left_en.value and "before the event ends" in left_en.value
    assert len(card.table) == 10 and any("共 40 行" in f.value for f in card.fields)
    assert "毛利率" in next(f.value for f in card.fields if f.label == "合计")
    assert len(json.dumps(card.model_dump(mode="json"), ensure_ascii=False)) < 12_000
    from bot.web.app import create_app  # the full list of reasons is on the console page

    with TestClient(create_app(settings)) as client:
        page = client.get(f"/console/declarations/{tid}/edit", params={"user": "li.na"})
    assert page.status_code == 200
    left_out = page.text.split('id="left-out"')[1]
    assert "MZ-003" in left_out and "P00001 (88.00 &lt; 95.00)" in left_out


def test_the_line_cap_has_a_sensible_default_for_chat_cards(guarded):
    db = guarded
    bulk_products(db, [{"sku": f"D{i:04d}", "title": f"数码 {i} 号", "brand": "声域",
                        "category": "家电数码", "list_price": Decimal("199.00"),
                        "cost": Decimal("50.00"), "stock": 500} for i in range(300)])
    tid = pool.task(db, "jd", {"categories": ["家电数码"]}, state="claimed")
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:
        assert len(current(s, tid)[1]) == draft_settings.DraftSettings().draft_max_lines == 50


def test_a_campaign_without_categories_is_scoped_by_what_its_title_names(guarded):
    db = guarded
    tid = pool.task(db, "tmall", state="claimed")
    with db.session() as s:
        task = s.get(Task, tid)
        from storage.models import Campaign

        campaign = s.get(Campaign, task.campaign_id)
        campaign.title = "天猫年货节·食品生鲜频道报名"
        s.add(campaign)
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:
        skus = {ln.sku for ln in current(s, tid)[1]}
        fill = last_fill(s, tid)
    assert skus and all(sku.startswith("SP-") for sku in skus)
    assert fill["scope"]["categories"] == ["食品"]


def test_draft_again_refills_and_says_what_changed(guarded):
    db = guarded
    tid = pool.task(db, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                    state="claimed")
    first = router.handle_text(db, Inbound("web", "jd-promo", "li.na"), f"填报 {tid}")
    assert "已填报" in first.text
    assert router.handle_text(db, Inbound("web", "jd-promo", "li.na"),
                              f"改 {tid} JD-201 价格=500").ok
    pool.product(db, "JD-299", title="蓝牙音箱 迷你款", brand="声域", category="家电数码",
                 list_price="299.00")
    again = router.handle_text(db, Inbound("web", "jd-promo", "li.na"), f"填报 {tid}")
    assert again.ok, again.text
    assert f"#{tid}" in again.text and "填报中 → 填报中" in again.text
    assert f"已重新填报 #{tid} v2(与 v1 相比)" in again.text
    assert "新增 1 个:JD-299" in again.text and "改价 1 个:JD-201 500.00 → 559.20" in again.text
    with db.session() as s:
        declaration, lines = current(s, tid)
        assert declaration.version == 2 and "JD-299" in {ln.sku for ln in lines}
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    refilled = next(f for f in card.fields if f.label.startswith("重新填报"))
    assert "JD-299" in refilled.value and "JD-201" in refilled.value
    same = router.handle_text(db, Inbound("web", "jd-promo", "alex"), f"draft {tid}")
    assert not same.ok  # alex is not the claimant
    same = router.handle_text(db, Inbound("web", "jd-promo", "li.na"), f"draft {tid}")
    assert "与 v2 相同,没有新版本" in same.text
    with db.session() as s:
        assert current(s, tid)[0].version == 2
        fills = s.exec(select(AuditEvent).where(AuditEvent.action == "autofill")).all()
    assert [f.detail["declaration"] for f in fills] == [1, 2, 2]
    assert sum("draft" in spec.names for spec in router.specs) == 1  # one line in the help


def test_attach_a_document_by_command_and_by_the_cards_button(guarded):
    db = guarded
    pool.product(db, "AT-1", title="修护面霜 50g")
    tid = pool.task(db, "tmall")
    pool.declare(db, tid, [("AT-1", "85.00", 60)])  # no documents attached
    with db.session() as s:
        licence = s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()
    check = say(db, "li.na", f"预检 {tid}")
    assert f"附上资质 #{licence}" in check.text
    with db.session() as s:
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    button = next(b for b in card.buttons if b.action == "attach_document")
    assert f"#{licence}" in button.label
    bad = say(db, "li.na", f"附上 {tid} 99999")
    assert not bad.ok and "没有编号为 99999 的资质" in bad.text
    old = pool.document(db, "business_licence", "旧营业执照", days=3)
    expired = say(db, "li.na", f"attach {tid} {old}")
    assert not expired.ok and "早于活动结束" in expired.text
    other = say(db, "wang.fang", f"附上 {tid} {licence}")
    assert not other.ok and "李娜" in other.text  # only the claimant (or a manager)
    done = say(db, "li.na", f"附上 {tid} {licence}")
    assert done.ok and f"已附上 #{licence}「营业执照」 到 #{tid}" in done.text
    again = say(db, "li.na", f"附上 {tid} {licence}")
    assert not again.ok and "已经附在" in again.text
    assert "合规预检通过" in say(db, "li.na", f"预检 {tid}").text
    # the button: a new version without documents, then one click attaches what is suggested
    pool.declare(db, tid, [("AT-1", "85.00", 60)])
    with db.session() as s:
        stale = next(b for b in BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN").buttons
                     if b.action == "attach_document")
    say(db, "li.na", f"改 {tid} AT-1 库存=61")  # the card changes: its button is now stale
    refused = router.handle_click(db, Inbound("web", "tmall-promo", "li.na", "at-1"), stale.value)
    assert not refused.ok and "过期" in refused.text
    with db.session() as s:
        fresh = next(b for b in BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN").buttons
                     if b.action == "attach_document")
    clicked = router.handle_click(db, Inbound("web", "tmall-promo", "li.na", "at-2"), fresh.value)
    assert clicked.ok, clicked.text
    with db.session() as s:
        assert current(s, tid)[0].documents == [licence]
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "attach_document")).all()
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    assert len(events) == 2 and not any(b.action == "attach_document" for b in card.buttons)


def test_every_hint_is_listable_from_chat_the_card_and_the_console(settings, guarded):
    db = guarded
    for i in range(3):
        pool.product(db, f"HT-{i}", title=f"保湿乳液 {i} 号", image=None)  # no image: a hint
    tid = pool.task(db, "tmall", state="claimed")
    pool.declare(db, tid, [(f"HT-{i}", "85.00", 60) for i in range(3)])
    with db.session() as s:
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    status = card.fields[0].value
    assert "另有" in status and "条提示" in status
    hints_button = next(b for b in card.buttons if b.url and b.url.endswith("#hints"))
    reply = say(db, "li.na", f"提示 {tid}")
    assert reply.ok and reply.text.count("⚠") >= 3
    assert all(f"HT-{i}" in reply.text for i in range(3))
    english = say(db, "alex", f"hints {tid}")
    assert "hints" in english.text.splitlines()[0]
    from bot.web.app import create_app

    with TestClient(create_app(settings)) as client:
        page = client.get(urlsplit(hints_button.url).path, params={"user": "li.na"})
    assert page.status_code == 200 and 'id="hints"' in page.text
    assert all(f"HT-{i}" in page.text.split('id="hints"')[1] for i in range(3))


def test_a_price_below_cost_is_flagged_on_the_card_the_edit_reply_and_check(guarded):
    db = guarded
    tid = pool.task(db, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                    state="claimed")
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    assert card.table_header[4:6] == ["成本", "毛利"]
    row = next(r for r in card.table if r.cells[0] == "JD-201")
    assert row.cells[4] == "310.00" and row.cells[5].endswith("%") and "⚠" not in row.cells[5]
    reply = router.handle_text(db, Inbound("web", "jd-promo", "li.na"), f"改 {tid} JD-201 价格=300")
    assert reply.ok and "⚠" in reply.text and "低于成本 310.00(每件亏 10.00)" in reply.text
    check = router.handle_text(db, Inbound("web", "jd-promo", "alex"), f"check {tid}")
    assert "below cost 310.00" in check.text
    with db.session() as s:
        card = BUILDERS["declaration"](s, {"task_id": tid}, "zh-CN")
    row = next(r for r in card.table if r.cells[0] == "JD-201")
    assert row.cells[5].startswith("⚠-")
    assert "JD-201" in next(f.value for f in card.fields if f.label == "低于成本")


def huge_declaration(db, n: int = 2000) -> int:
    bulk_products(db, [{"sku": f"H{i:05d}-" + "长" * 20, "title": f"超大申报 {i} <b>@all</b>",
                        "brand": "水润坊", "category": "美妆个护", "list_price": Decimal("129.00"),
                        "cost": Decimal("38.00"), "stock": 900} for i in range(n)])
    tid = pool.task(db, "tmall", state="drafting")
    with db.session() as s:
        declaration = Declaration(task_id=tid, version=1, documents=[])
        s.add(declaration)
        s.flush()
        s.execute(insert(DeclarationLine.__table__), [
            {"declaration_id": declaration.id, "sku": f"H{i:05d}-" + "长" * 20,
             "list_price": Decimal("129.00"), "promo_price": Decimal("99.00"), "promo_stock": 100}
            for i in range(n)])
    return tid


@pytest.mark.parametrize("builder", ["declaration", "task"])
def test_a_2000_line_declaration_renders_inside_every_chats_limits(guarded, builder):
    db = guarded
    tid = huge_declaration(db)
    with db.session() as s:
        card = BUILDERS[builder](s, {"task_id": tid}, "zh-CN")
    assert len(json.dumps(card.model_dump(mode="json"), ensure_ascii=False).encode()) < 20_000
    assert any("共 2000 行" in f.value for f in card.fields)  # summarised, with where the rest is
    # Slack: Block Kit's documented limits (50 blocks, 3,000 per section …), text ≤ 3,000
    message = slack.render(card, "zh-CN")
    assert block_kit_problems(message["blocks"]) == [] and len(message["text"]) <= 3000
    assert len(message["blocks"]) <= 50
    # Feishu: a card's content ≤ 30 KB
    body = feishu.render(card, "zh-CN")
    assert feishu.size(body) <= 30 * 1024
    # DingTalk: the interactive card's markdown and the robot / webhook messages
    params = dingtalk.interactive(card, "zh-CN")
    assert len(params["markdown"]) <= dingtalk.BODY_MAX and len(params["title"]) <= dingtalk.TITLE_MAX
    _, robot = dingtalk.robot_message(card, "zh-CN")
    hook = dingtalk.webhook_card(card, "zh-CN")
    for payload in (params, robot, hook):
        assert len(json.dumps(payload, ensure_ascii=False).encode()) <= 20_000
        assert "@all" not in json.dumps(payload, ensure_ascii=False)
