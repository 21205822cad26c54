"""Learning from platform rejections: a reason seen 3 times becomes a proposed rule on a
card; a rules owner accepts it with one button; the next declaration with the same defect is
stopped before submission. Plus the top-reasons report and prices from accepted lines."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlmodel import select

import commands  # noqa: F401
from bot.core.errors import Invalid
from bot.core.ports import ItemResult, ReviewStatus
from bot.declarations import learning, rules
from bot.declarations import plugin as data_plugin
from bot.submissions.review import apply_review
from cards.builders import BUILDERS
from commands import Inbound, router
from storage.models import AuditEvent, OutboxMessage, Task
from storage.models_data import PriceRecord, RejectionRecord, RuleProposal
from tests.fakes import data_pool as pool

CODE, TEXT = "TITLE_BANNED_WORD", "商品标题含广告法禁用词「神器」,请修改后重新报名"


@pytest.fixture
def guarded(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    return seeded


def rejected_on_platform(db, sku: str, code: str = CODE, text: str = TEXT) -> int:
    """A tmall task in review whose one line the platform rejects."""
    tid = pool.task(db, "tmall", state="in_review")
    pool.declare(db, tid, [(sku, "90.00", 50)])
    with db.session() as s:
        apply_review(s, tid, "ref", ReviewStatus("rejected", [ItemResult(sku, "rejected", code, text)]))
    return tid


def click(db, who: str, value: str, event: str):
    return router.handle_click(db, Inbound("web", "ops", who, event_id=event), value)


@pytest.mark.parametrize("code, text, category, rule", [
    ("TITLE_BANNED_WORD", "标题含极限词「最佳」", "banned_words",
     {"kind": "banned_words", "fields": ["title", "note"], "words": ["最佳"]}),
    ("", "活动价高于近30天最低价", "price",
     {"kind": "price", "lowest_days": 30, "max_ratio_of_lowest": 1.0}),
    ("DISCOUNT_TOO_SMALL", "活动价需至少低于原价15%", "price", {"kind": "price", "min_discount": 0.15}),
    ("STOCK_BELOW_MINIMUM", "活动库存不得少于50件", "stock", {"kind": "min_stock", "min": 50}),
    ("IMG_SIZE", "主图尺寸须为800x800", "image", {"kind": "image", "width": 800, "height": 800}),
    ("", "缺少品牌授权书", "documents", {"kind": "documents", "required": ["brand_authorisation"]}),
    ("X-1", "系统繁忙", "other", None),
])
def test_rejections_are_classified_and_turned_into_rules(code, text, category, rule):
    assert learning.classify(code, text) == category
    assert learning.derive_rule(category, code, text) == rule


def test_same_reason_without_code_has_one_signature():
    assert learning.signature("", "活动库存不得少于50件") == learning.signature("", "活动库存不得少于80件")
    assert learning.signature("stock_low", "x") == learning.signature("STOCK_LOW", "y")


def test_three_rejections_propose_a_rule_accepted_by_button_then_stop_the_defect(guarded):
    db = guarded
    pool.product(db, "SQ-1", title="补水神器 面膜 10片")
    for n in range(2):
        rejected_on_platform(db, "SQ-1")
        with db.session() as s:
            assert s.exec(select(RuleProposal)).all() == [], f"no proposal after {n + 1}"
    last = rejected_on_platform(db, "SQ-1")
    with db.session() as s:
        assert len(s.exec(select(RejectionRecord)).all()) == 3
        proposal = s.exec(select(RuleProposal)).one()
        assert proposal.occurrences == 3 and proposal.state == "proposed" and proposal.task_id == last
        assert proposal.rule["words"] == ["神器"]
        posted = s.exec(select(OutboxMessage).where(OutboxMessage.card_key == f"rule_proposal:{proposal.id}")
                        ).all()
        assert {(m.chat, m.channel_id) for m in posted} == {("web", "ops")}
        card = BUILDERS["rule_proposal"](s, {"proposal_id": proposal.id}, "zh-CN")
    assert "3 次" in card.text and "神器" in card.text
    accept = next(b for b in card.buttons if b.action == "accept_rule")

    refused = click(db, "li.na", accept.value, "rp-1")  # ops is not a rules owner
    assert not refused.ok and "只有 管理员、法务、经理 可以采纳规则" in refused.text
    assert click(db, "sun.li", accept.value, "rp-2").ok
    again = click(db, "zhou.qiang", accept.value, "rp-3")
    assert not again.ok and "已被处理(已采纳)" in again.text
    with db.session() as s:
        proposal = s.exec(select(RuleProposal)).one()
        assert proposal.state == "accepted" and proposal.rule_version == 2
        latest = rules.latest(s, "tmall")
        assert latest.author == "sun.li" and latest.source == "proposal"
        assert any(r.get("words") == ["神器"] for r in latest.content["rules"])
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "accept_rule")).one().actor == "sun.li"
        locked = BUILDERS["rule_proposal"](s, {"proposal_id": proposal.id}, "en")
    assert locked.locked and not locked.buttons and "rules v2" in locked.footer

    fresh = pool.task(db, "tmall")  # the same defect in the next declaration
    with db.session() as s:
        from storage.models import QualificationDocument

        licence = s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()
    pool.declare(db, fresh, [("SQ-1", "90.00", 50)], documents=[licence])
    with pytest.raises(Invalid) as err:
        pool.act(db, fresh, "request_approval", "li.na")
    assert "神器" in err.value.message("zh-CN") and "rules tmall v2" in err.value.message("en")
    with db.session() as s:
        assert s.get(Task, fresh).state == "drafting"


def test_the_same_review_twice_is_counted_once(guarded):
    db = guarded
    pool.product(db, "SQ-2")
    tid = pool.task(db, "tmall", state="in_review")
    pool.declare(db, tid, [("SQ-2", "90.00", 50)])
    status = ReviewStatus("rejected", [ItemResult("SQ-2", "rejected", "X", "y")])
    with db.session() as s:
        learning.record_rejection(s, s.get(Task, tid), "tmall", 1, "SQ-2", "X", "y")
        apply_review(s, tid, "ref", status)
    with db.session() as s:
        assert len(s.exec(select(RejectionRecord)).all()) == 1


def test_top_rejection_reasons_report_and_accepted_prices(guarded):
    db = guarded
    pool.product(db, "R-1")
    pool.product(db, "R-2")
    for _ in range(3):
        rejected_on_platform(db, "R-1", "STOCK_BELOW_MINIMUM", "活动库存不得少于50件")
    rejected_on_platform(db, "R-1", "DISCOUNT_TOO_SMALL", "活动价需至少低于原价20%")
    tid = pool.task(db, "tmall", state="in_review")
    pool.declare(db, tid, [("R-2", "88.00", 50)])
    with db.session() as s:
        apply_review(s, tid, "ref", ReviewStatus("accepted", [ItemResult("R-2", "accepted")]))
        text = learning.report_text(s, "zh-CN")
        assert s.exec(select(PriceRecord.price).where(PriceRecord.sku == "R-2")).one() == Decimal("88.00")
    lines = text.splitlines()
    assert lines[1] == "[天猫]" and lines[2].strip().startswith("3 次 · 库存 · 活动库存不得少于50件")
    assert lines[3].strip().startswith("1 次 · 价格")
    reply = router.handle_text(db, Inbound("web", "ops", "alex"), "rejections tmall")
    assert "3× · stock" in reply.text
