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
    assert "神器" in err.value.message("zh-CN") and "rules Tmall v2" in err.value.message("en")
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


# -- learned rules persist; reasons are grouped; campaign requirements stay scoped -------------

def licence(db) -> int:
    from storage.models import QualificationDocument

    with db.session() as s:
        return s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()


def rejected_declaration(db, platform: str, skus: list[str], code: str, text: str, *,
                         requirements: dict | None = None, campaign_type: str = "") -> int:
    """A task in review whose every line the platform (or a person reporting a hand-off)
    rejects with the same code and text."""
    from storage.models import Campaign

    tid = pool.task(db, platform, requirements, state="in_review")
    with db.session() as s:
        campaign = s.get(Campaign, s.get(Task, tid).campaign_id)
        campaign.type = campaign_type
        s.add(campaign)
    pool.declare(db, tid, [(sku, "90.00", 50) for sku in skus])
    with db.session() as s:
        apply_review(s, tid, "ref", ReviewStatus("rejected", [
            ItemResult(sku, "rejected", code, text) for sku in skus]))
    return tid


def test_an_accepted_rule_survives_a_resync_and_a_restart(settings, guarded, tmp_path):
    import shutil

    import yaml
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    db = guarded
    pool.product(db, "SQ-9", title="补水神器 面膜 10片")
    for _ in range(3):
        rejected_on_platform(db, "SQ-9")
    with db.session() as s:
        proposal = s.exec(select(RuleProposal)).one()
    accepted = router.handle_text(db, Inbound("web", "ops", "sun.li"), f"采纳 {proposal.id}")
    assert accepted.ok, accepted.text
    with db.session() as s:
        assert rules.sync(s) == []  # the YAML did not change: the learned version stays current
        assert [r["words"] for r in rules.learned(s, "tmall")] == [["神器"]]
    for path in rules.RULES_DIR.glob("*.yaml"):  # a rules owner edits the file meanwhile
        shutil.copy(path, tmp_path / path.name)
    content = yaml.safe_load((tmp_path / "tmall.yaml").read_text(encoding="utf-8"))
    next(r for r in content["rules"] if r["kind"] == "banned_words")["words"].append("爆款")
    (tmp_path / "tmall.yaml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    with db.session() as s:
        [v3] = rules.sync(s, tmp_path, author="rules-team")
        words = [w for r in v3.content["rules"] if r["kind"] == "banned_words" for w in r["words"]]
    assert v3.version == 3 and "爆款" in words and "神器" in words and "1 learned" in v3.note
    with TestClient(create_app(settings)):  # a restart: a new app re-syncs rules/*.yaml
        pass
    with db.session() as s:
        latest = rules.latest(s, "tmall")
        assert latest.version == 4 and [r["words"] for r in rules.learned(s, "tmall")] == [["神器"]]
    fresh = pool.task(db, "tmall")
    pool.declare(db, fresh, [("SQ-9", "90.00", 50)], documents=[licence(db)])
    with pytest.raises(Invalid) as err:
        pool.act(db, fresh, "request_approval", "li.na")
    assert "神器" in err.value.message("zh-CN") and "rules Tmall v4" in err.value.message("en")
    history = router.handle_text(db, Inbound("web", "ops", "li.na"), "规则 历史 tmall")
    lines = history.text.splitlines()
    assert history.ok and lines[1].startswith("v1 ·") and "规则文件" in lines[1]
    assert "采纳的规则建议" in lines[2] and "规则文件" in lines[3] and "规则文件" in lines[4]
    assert "在规则文件之上保留的学习规则" in history.text and "神器" in lines[-1] and "孙丽" not in lines[-1]
    assert "sun.li" in lines[-1]
    english = router.handle_text(db, Inbound("web", "ops", "alex"), "rules history tmall")
    assert "accepted proposal" in english.text and "Learned rules kept on top" in english.text


def test_reported_hand_off_rejections_are_grouped_by_reason_and_counted_per_declaration(guarded):
    db = guarded
    skus = ["PD-1", "PD-2", "PD-3"]
    for sku in skus:
        pool.product(db, sku, title="纯棉四件套 1.8米")
    image, price = "主图尺寸须为 800x800,请更换图片", "活动价需至少低于原价30%"
    for _ in range(2):
        rejected_declaration(db, "pdd", skus, "REPORTED", image)
        rejected_declaration(db, "pdd", skus, "REPORTED", price)
    with db.session() as s:
        records = s.exec(select(RejectionRecord)).all()
        assert len(records) == 12 and len({r.signature for r in records}) == 2
        assert {r.category for r in records} == {"image", "price"}
        assert s.exec(select(RuleProposal)).all() == []  # 2 declarations each, not 6 lines
    rejected_declaration(db, "pdd", skus, "REPORTED", image)
    with db.session() as s:
        proposal = s.exec(select(RuleProposal)).one()
        assert proposal.category == "image" and proposal.occurrences == 3
        assert proposal.rule["kind"] == "image" and proposal.rule["width"] == 800
        report = learning.report_text(s, "zh-CN", "pdd")
    assert "3 次 · 主图" in report and "2 次 · 价格" in report
    rejected_declaration(db, "pdd", skus, "REPORTED", price)
    with db.session() as s:
        proposals = {p.category: p for p in s.exec(select(RuleProposal))}
    assert set(proposals) == {"image", "price"}  # the price reason is its own proposal
    assert proposals["price"].rule["min_discount"] == 0.3 and proposals["price"].occurrences == 3
    for proposal in proposals.values():  # both texts are Chinese: each keeps its own rule id
        assert router.handle_text(db, Inbound("web", "ops", "zhou.qiang"), f"采纳 {proposal.id}").ok
    with db.session() as s:
        assert sorted(r["kind"] for r in rules.learned(s, "pdd")) == ["image", "price"]


def test_a_campaign_specific_requirement_is_scoped_to_its_campaign_type(guarded):
    db = guarded
    pool.product(db, "DY-1", title="保湿喷雾 100ml", image=(750, 1000, "JPEG"))
    subsidy = {"min_discount": 0.12}
    for _ in range(3):
        rejected_declaration(db, "douyin", ["DY-1"], "DISCOUNT_TOO_SMALL", "活动价需至少低于原价12%",
                             requirements=subsidy, campaign_type="平台补贴")
    with db.session() as s:
        proposal = s.exec(select(RuleProposal)).one()
        card = BUILDERS["rule_proposal"](s, {"proposal_id": proposal.id}, "zh-CN")
    assert proposal.rule["min_discount"] == 0.12
    assert proposal.rule["scope"] == {"campaign_types": ["平台补贴"]}
    assert "仅活动类型「平台补贴」" in card.fields[0].value
    assert router.handle_text(db, Inbound("web", "ops", "zhou.qiang"), f"采纳 {proposal.id}").ok

    def errors_for(campaign_type: str) -> set[str]:
        from storage.models import Campaign

        tid = pool.task(db, "douyin")
        with db.session() as s:
            campaign = s.get(Campaign, s.get(Task, tid).campaign_id)
            campaign.type = campaign_type
            s.add(campaign)
        pool.declare(db, tid, [("DY-1", "90.00", 50)], documents=[licence(db)])  # 10 % off
        with db.session() as s:
            from bot.declarations import compliance

            task = s.get(Task, tid)
            return {v.rule_id for v in compliance.errors(compliance.check(
                s, task, pool_current(s, tid)))}

    assert errors_for("平台补贴") == {proposal.rule["id"]}  # another subsidy campaign: 12 %
    assert errors_for("大促") == set()  # the platform's own 5 % still applies elsewhere


def pool_current(session, task_id: int):
    from bot.declarations.autofill import current

    return current(session, task_id)[0]


def test_a_restated_notice_requirement_without_a_type_or_category_is_not_proposed(guarded):
    db = guarded
    pool.product(db, "PS-1", title="纯棉毛巾 三条装")
    for _ in range(3):
        rejected_declaration(db, "pdd", ["PS-1"], "STOCK_BELOW_MINIMUM", "活动库存不得少于200件",
                             requirements={"min_stock": 200})
    with db.session() as s:
        assert len(s.exec(select(RejectionRecord)).all()) == 3
        assert s.exec(select(RuleProposal)).all() == []  # not a rule for all of Pinduoduo
