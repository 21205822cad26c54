"""The compliance pre-check before approval and submission: every violation listed with
field, value, rule and fix; blocked unless a manager or legal overrides with a reason
(audited); auto-fill produces declarations that pass."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlmodel import select

from bot.core.errors import Forbidden, Invalid
from bot.declarations import compliance, price_history
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from storage.models import AuditEvent, Campaign, QualificationDocument, Task
from storage.types import utcnow
from tests.fakes import data_pool as pool


@pytest.fixture
def guarded(seeded):
    """The demo data with the feature installed as the app installs it."""
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    return seeded


def state(db, task_id: int) -> str:
    with db.session() as s:
        return s.get(Task, task_id).state


def licence(db) -> int:
    with db.session() as s:
        return s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()


def test_every_demo_campaign_is_auto_filled_to_pass(guarded):
    db = guarded
    with db.session() as s:
        tasks = s.exec(select(Task.id, Campaign.platform).join(Campaign, Campaign.id == Task.campaign_id)
                       .order_by(Task.id)).all()
    assert {p for _, p in tasks} == {"tmall", "jd", "douyin", "pdd"}
    for tid, _platform in tasks:
        pool.act(db, tid, "claim", "li.na")
        pool.act(db, tid, "draft", "li.na")
        with db.session() as s:
            declaration, lines = current(s, tid)
            assert lines and declaration.documents
            assert compliance.errors(compliance.check(s, s.get(Task, tid), declaration)) == []
        assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"


def test_request_approval_is_blocked_listing_every_violation(guarded):
    db = guarded
    pool.product(db, "BAD-1", title="最好的面膜 国家级配方", list_price="100.00", stock=100, safety=40)
    tid = pool.task(db, "tmall", {"min_discount": 0.2, "min_stock": 30})
    pool.declare(db, tid, [("BAD-1", "90.00", 80)])
    with pytest.raises(Invalid) as err:
        pool.act(db, tid, "request_approval", "li.na")
    zh, en = err.value.message("zh-CN"), err.value.message("en")
    assert "BAD-1 · 标题=最好的面膜 国家级配方:含广告法/平台禁用词「最、国家级」" in zh
    assert "BAD-1 · promo price = 90.00: must be at least 20% below list (100.00) → set the promo " \
           "price to at most 80.00" in en
    assert "BAD-1 · promo stock = 80: exceeds available stock 60" in en
    assert "documents" in en and "override" in en and "rules Tmall v1" in en
    assert isinstance(err.value, compliance.ComplianceBlocked) and len(err.value.violations) == 4
    assert state(db, tid) == "drafting"


def test_override_needs_an_allowed_role_and_a_reason_and_is_audited(guarded):
    db = guarded
    pool.product(db, "BAD-2", list_price="100.00")
    tid = pool.task(db, "tmall", {"min_discount": 0.2})
    pool.declare(db, tid, [("BAD-2", "95.00", 50)], documents=[licence(db)])
    with pytest.raises(Forbidden) as err:
        pool.act(db, tid, "request_approval", "li.na", payload={"override": True}, comment="急")
    en, zh = err.value.message("en"), err.value.message("zh-CN")
    assert "may not override the pre-check" in en and "Manager may run `override" in en
    assert "经理可执行「强制" in zh and "送审 <原因>」放行" in zh
    assert "法务可执行" not in zh and "法务不能提交审批" in zh  # legal is told what it can do
    with pytest.raises(Invalid):
        pool.act(db, tid, "request_approval", "zhou.qiang", payload={"override": True})
    result = pool.act(db, tid, "request_approval", "zhou.qiang", payload={"override": True},
                      comment="品牌方特批价格")
    assert result.state == "in_approval"
    with db.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.task_id == tid,
                                                AuditEvent.action == "compliance_override")).one()
    assert event.actor == "zhou.qiang" and event.detail["comment"] == "品牌方特批价格"
    assert event.detail["violations"][0]["field"] == "promo_price"
    assert event.detail["violations"][0]["value"] == "95.00"


def test_submission_is_blocked_too_and_a_waiver_covers_only_what_it_saw(guarded):
    db = guarded
    pool.product(db, "BAD-3", list_price="100.00")
    tid = pool.task(db, "jd", {"min_discount": 0.1}, state="approved")
    pool.declare(db, tid, [("BAD-3", "95.00", 50)], documents=[licence(db)])
    with pytest.raises(Invalid) as err:
        pool.act(db, tid, "submit", "li.na")
    assert "submit" in err.value.message("en")
    with pytest.raises(Forbidden):
        pool.act(db, tid, "compliance_override", "li.na", comment="please")
    pool.act(db, tid, "compliance_override", "sun.li", comment="法务确认:价格为官方指导价")
    with db.session() as s:  # a new defect after the waiver
        _, lines = current(s, tid)
        lines[0].promo_stock = 1
        s.add(lines[0])
    with pytest.raises(Invalid) as err:
        pool.act(db, tid, "submit", "li.na")
    assert "promo stock = 1" in err.value.message("en") and "promo price" not in err.value.message("en")
    with db.session() as s:
        _, lines = current(s, tid)
        lines[0].promo_stock = 50
        s.add(lines[0])
    assert pool.act(db, tid, "submit", "li.na").state == "submitting"


def test_autofill_price_under_history_stock_red_line_and_documents(guarded):
    db = guarded
    pool.product(db, "AF-1", category="个护", list_price="200.00", stock=300, safety=100, brand="光研")
    pool.product(db, "AF-2", category="个护", list_price="50.00", stock=300, brand="无授权牌")
    pool.product(db, "AF-3", category="个护", list_price="80.00", stock=40)  # below min stock
    with db.session() as s:
        price_history.record(s, "AF-1", "tmall", Decimal("150.00"), utcnow() - timedelta(days=5))
    tid = pool.task(db, "tmall", {"categories": ["个护"], "min_discount": 0.1, "min_stock": 50,
                                  "required_documents": ["营业执照", "品牌授权书"],
                                  "price_rule": "活动价不得高于近30天最低价的9折"}, state="claimed")
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:
        declaration, lines = current(s, tid)
        docs = [s.get(QualificationDocument, i) for i in declaration.documents]
        assert [line.sku for line in lines] == ["AF-1"]  # no authorisation for AF-2's brand
        assert lines[0].promo_price == Decimal("135.00")  # 90% of the 30-day low 150
        assert 50 <= lines[0].promo_stock <= 200  # within stock minus safety stock
        assert {(d.kind, d.brand) for d in docs} == {("business_licence", ""),
                                                     ("brand_authorisation", "光研")}
        assert compliance.errors(compliance.check(s, s.get(Task, tid), declaration)) == []


def test_a_document_expiring_before_the_campaign_ends_is_a_violation(guarded):
    db = guarded
    pool.product(db, "DOC-1", brand="短期牌")
    short = pool.document(db, "brand_authorisation", "短期授权", days=5, brand="短期牌")
    tid = pool.task(db, "pdd", {"required_documents": ["营业执照", "品牌授权书"]}, event_days=20)
    pool.declare(db, tid, [("DOC-1", "90.00", 50)], documents=[licence(db), short])
    with db.session() as s:
        found = [v for v in compliance.check(s, s.get(Task, tid), current(s, tid)[0])
                 if v.kind == "documents"]
    assert len(found) == 1 and found[0].value == "短期授权"
    assert "expires" in found[0].rule_text("en") and "upload one valid beyond" in found[0].fix_text("en")
