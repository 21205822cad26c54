"""The rules knowledge base: YAML per platform, versioned in the database, campaign
overrides, and a table of rule cases per platform with the violations each must raise."""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal

import pytest
import yaml
from sqlmodel import select

from bot.declarations import compliance, price_history, rules
from storage.models import Campaign, QualificationDocument, Task
from storage.models_data import RuleVersion
from storage.types import utcnow
from tests.fakes import data_pool as pool


def licence(db) -> int:
    with db.session() as s:
        return s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()


def violations(db, task_id: int) -> list[compliance.Violation]:
    with db.session() as s:
        task = s.get(Task, task_id)
        from bot.declarations.autofill import current

        declaration, _ = current(s, task_id)
        return compliance.check(s, task, declaration)


def error_ids(found) -> set[str]:
    return {v.rule_id for v in found if v.severity == "error"}


def test_sync_stores_a_version_per_change_with_author(db, tmp_path):
    for path in rules.RULES_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    with db.session() as s:
        stored = rules.sync(s, tmp_path)
    assert sorted(r.platform for r in stored) == ["douyin", "jd", "pdd", "tmall"]
    assert all(r.version == 1 and r.author == "rules-team" for r in stored)
    with db.session() as s:
        assert rules.sync(s, tmp_path) == []  # nothing changed → no new version
    content = yaml.safe_load((tmp_path / "tmall.yaml").read_text(encoding="utf-8"))
    content["rules"][2]["words"].append("爆款")
    (tmp_path / "tmall.yaml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    with db.session() as s:
        stored = rules.sync(s, tmp_path, author="sun.li")
    assert [(r.platform, r.version, r.author) for r in stored] == [("tmall", 2, "sun.li")]
    with db.session() as s:
        history = rules.history(s, "tmall")
        assert [h.version for h in history] == [1, 2]
        assert history[1].created_at >= history[0].created_at
        assert "爆款" in rules.platform_rules(s, "tmall")[1][2]["words"]


def test_a_broken_rules_file_is_refused_with_its_name(tmp_path):
    (tmp_path / "jd.yaml").write_text("platform: jd\nrules:\n  - kind: colour\n", encoding="utf-8")
    with pytest.raises(rules.RulesError) as err:
        rules.read_file(tmp_path / "jd.yaml")
    assert "jd.yaml" in err.value.message("en") and "kind must be one of" in err.value.message("en")


@pytest.mark.parametrize("requirements, kind, expected", [
    ({"min_discount": 0.15}, "price", {"min_discount": 0.15}),
    ({"price_rule": "活动价不得高于近30天最低成交价"}, "price",
     {"lowest_days": 30, "max_ratio_of_lowest": 1.0}),
    ({"price_rule": "秒杀价须为近15天最低价的9折以下"}, "price",
     {"lowest_days": 15, "max_ratio_of_lowest": 0.9}),
    ({"min_stock": 200}, "min_stock", {"min": 200}),
    ({"image_size": "750x1000"}, "image", {"min_width": 750, "min_height": 1000, "ratio": "3:4"}),
    ({"required_documents": ["营业执照", "品牌授权书", "质检报告"]}, "documents",
     {"required": ["business_licence", "brand_authorisation", "quality_report"]}),
    ({"categories": ["食品"]}, "category", {"allowed": ["食品"]}),
])
def test_campaign_requirements_override_platform_defaults(requirements, kind, expected):
    base = [{"id": "p", "kind": "price", "min_discount": 0.05, "lowest_days": 30},
            {"id": "s", "kind": "min_stock", "min": 10},
            {"id": "i", "kind": "image", "width": 800, "height": 800},
            {"id": "d", "kind": "documents", "required": ["business_licence"]},
            {"id": "c", "kind": "category", "banned": ["烟草"]}]
    merged = rules.campaign_overrides(base, requirements)
    rule = next(r for r in merged if r["kind"] == kind)
    assert {k: rule[k] for k in expected} == expected
    assert rule["source"] == "campaign"
    assert base[0]["min_discount"] == 0.05  # the platform's rules are not changed


GOOD = (800, 800, "JPEG")
CASES = [
    # platform, product kwargs, (promo price, promo stock), campaign requirements, expected rule ids
    ("tmall", {}, ("90", 50), {}, set()),
    ("tmall", {"image": (750, 1000, "JPEG")}, ("90", 50), {}, {"main_image"}),
    ("tmall", {"image": (800, 800, "GIF")}, ("90", 50), {}, {"main_image"}),
    ("tmall", {"title": "超长标题" * 8}, ("90", 50), {}, {"title_length"}),
    ("jd", {"title": "超长标题" * 8}, ("90", 50), {}, set()),  # JD allows 45 characters
    ("tmall", {"title": "全网最低价 第一品牌面膜"}, ("90", 50), {}, {"ad_law_words"}),
    ("jd", {"title": "国家级 实验室认证 面霜"}, ("90", 50), {}, {"ad_law_words"}),
    ("pdd", {"title": "顶级蚕丝被 双人", "image": (750, 750, "PNG")}, ("90", 50), {}, {"ad_law_words"}),
    ("pdd", {}, ("90", 50), {}, set()),  # PDD wants at least 750x750, square
    ("pdd", {"image": (700, 700, "JPEG")}, ("90", 50), {}, {"main_image"}),
    ("douyin", {"image": (750, 1000, "JPEG")}, ("90", 50), {}, set()),  # 3:4
    ("douyin", {}, ("90", 50), {}, set()),  # 1:1 is fine too
    ("douyin", {"image": (800, 600, "JPEG")}, ("90", 50), {}, {"main_image"}),  # 4:3 is not
    ("tmall", {"image": (1200, 1200, "JPEG")}, ("90", 50), {}, set()),  # at least, not exactly
    ("tmall", {"image": (6000, 6000, "JPEG")}, ("90", 50), {}, {"main_image"}),  # above the max
    ("tmall", {"image": (1200, 1200, "JPEG")}, ("90", 50), {"image_size": "800x800"}, set()),
    ("tmall", {}, ("99", 50), {"min_discount": 0.15}, {"price_30d_low"}),
    ("tmall", {}, ("85", 50), {"min_discount": 0.15}, set()),
    ("jd", {}, ("0", 50), {}, {"price_30d_low"}),
    ("tmall", {}, ("90", 5), {}, {"promo_stock"}),
    ("tmall", {}, ("90", 40), {"min_stock": 50}, {"promo_stock"}),
    ("tmall", {"stock": 100, "safety": 30}, ("90", 80), {}, {"stock_red_line"}),
    ("tmall", {"category": "美妆个护"}, ("90", 50), {"categories": ["食品"]}, {"categories"}),
    ("jd", {"category": "医疗器械/血压计"}, ("90", 50), {}, {"categories"}),
    ("douyin", {"category": "处方药", "image": (750, 1000, "JPEG")}, ("90", 50), {}, {"categories"}),
]


def test_rule_cases_per_platform(seeded):
    """Every case of the table on one database; a mismatch names its case."""
    db = seeded
    mismatches = []
    for i, (platform, product, line, requirements, expected) in enumerate(CASES):
        sku = f"CASE-{i}"
        pool.product(db, sku, **{"image": GOOD, **product})
        tid = pool.task(db, platform, requirements, external_id=f"CASE-{i}")
        pool.declare(db, tid, [(sku, *line)], documents=[licence(db)])
        got = error_ids(violations(db, tid))
        if got != expected:
            mismatches.append((i, platform, product, line, requirements, expected, got))
    assert mismatches == []


def test_violation_names_field_value_rule_and_fix(seeded):
    db = seeded
    pool.product(db, "CASE-2", title="最好用的 第一名 面膜")
    tid = pool.task(db, "tmall", {"min_discount": 0.2, "min_stock": 50})
    pool.declare(db, tid, [("CASE-2", "95", 10)])  # no documents attached
    found = {v.rule_id: v for v in violations(db, tid) if v.severity == "error"}
    words = found["ad_law_words"]
    assert words.sku == "CASE-2" and words.field == "title" and words.value == "最好用的 第一名 面膜"
    assert "最、第一" in words.describe("zh-CN") and "删除或替换" in words.describe("zh-CN")
    price = found["price_30d_low"].as_dict("en")
    assert price["value"] == "95.00" and "20%" in price["rule"] and price["fix"].endswith("80.00")
    assert found["promo_stock"].as_dict("en")["fix"] == "raise promo stock to 50 or more"
    docs = found["documents"]
    assert docs.field == "documents" and f"#{licence(db)}" in docs.fix_text("en")


@pytest.mark.parametrize("text, words, found", [
    ("全网最低价,第一品牌", ["最", "第一", "国家级"], ["最", "第一"]),
    ("国家级非遗工艺", ["最", "第一", "国家级"], ["国家级"]),
    ("顶级奢华 限量款", ["顶级"], ["顶级"]),
    ("清爽保湿面霜 50g", ["最", "第一", "国家级", "顶级"], []),
    ("BEST of the best", ["best"], ["best"]),
])
def test_banned_words_in_chinese_text(text, words, found):
    assert compliance.banned_in(text, words) == found


def test_price_rule_against_recorded_history(seeded):
    db = seeded
    pool.product(db, "HIST-1", list_price="120.00")
    now = utcnow()
    with db.session() as s:
        price_history.record(s, "HIST-1", "jd", Decimal("95.00"), now - timedelta(days=10))
        price_history.record(s, "HIST-1", "jd", Decimal("80.00"), now - timedelta(days=40))  # too old
        price_history.record(s, "HIST-1", "tmall", Decimal("70.00"), now - timedelta(days=2))  # other shop
        assert price_history.lowest(s, "HIST-1", "jd", 30) == Decimal("95.00")
        assert price_history.lowest(s, "HIST-1", "jd", 60) == Decimal("80.00")
    tid = pool.task(db, "jd", {"price_rule": "秒杀价须为近30天最低价的9折以下"})
    pool.declare(db, tid, [("HIST-1", "88.00", 50)], documents=[licence(db)])
    found = [v for v in violations(db, tid) if v.rule_id == "price_30d_low"]
    assert len(found) == 1 and found[0].params["low"] == "95.00"
    assert found[0].fix_text("en") == "set the promo price to at most 85.50"
    pool.declare(db, tid, [("HIST-1", "85.50", 50)], documents=[licence(db)])
    assert error_ids(violations(db, tid)) == set()


def test_effective_rules_name_the_stored_version(seeded):
    db = seeded
    with db.session() as s:
        campaign = s.exec(select(Campaign).where(Campaign.platform == "tmall")).first()
        ruleset = rules.effective(s, campaign)
        assert ruleset.version == 1 and ruleset.first("image")["min_width"] == 800
        assert s.exec(select(RuleVersion).where(RuleVersion.platform == "tmall")).one().author == "system"
