"""The pre-check on a real team's data: no price history is said, the 30-day window counts
back from the event's start, strict (低于) and non-strict (不高于) limits, the lowest price
across channels, stock promised to overlapping campaigns, image minimum/maximum/ratio,
documents per brand, the date an expiring document must reach, and 折."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from bot.core.timefmt import local
from bot.declarations import compliance, price_history, rule_text, rules
from bot.declarations.autofill import current
from storage.models import Campaign, DeclarationLine, QualificationDocument, Task
from storage.types import utcnow
from tests.fakes import data_pool as pool


def licence(db) -> int:
    with db.session() as s:
        return s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()


def found(db, tid: int) -> list[compliance.Violation]:
    with db.session() as s:
        return compliance.check(s, s.get(Task, tid), current(s, tid)[0])


def errors(db, tid: int, kind: str | None = None) -> list[compliance.Violation]:
    return [v for v in found(db, tid) if v.severity == "error" and kind in (None, v.kind)]


def prices(db, sku: str, *records: tuple[str, str, int]) -> None:
    """(platform, price, days ago) observations."""
    with db.session() as s:
        for platform, price, days in records:
            price_history.record(s, sku, platform, Decimal(price), utcnow() - timedelta(days=days))


# -- prices ----------------------------------------------------------------------------------


def test_no_price_history_is_a_warning_the_approver_sees(seeded):
    db = seeded
    pool.product(db, "NEW-1", list_price="100.00")
    tid = pool.task(db, "tmall")
    pool.declare(db, tid, [("NEW-1", "90.00", 50)], documents=[licence(db)])
    [warning] = [v for v in found(db, tid) if v.rule_key == "cv.rule.no_history"]
    assert warning.severity == "warning" and warning.sku == "NEW-1"
    assert "no price history for SKU NEW-1" in warning.describe("en")
    assert "cannot check" in warning.describe("en")
    assert "SKU NEW-1" in warning.describe("zh-CN") and "无法检查最低价" in warning.describe("zh-CN")
    assert errors(db, tid) == []  # shown, not blocking


def test_the_window_counts_back_from_the_event_start(seeded):
    db = seeded
    pool.product(db, "WIN-1", list_price="200.00")
    prices(db, "WIN-1", ("tmall", "80.00", 25), ("tmall", "150.00", 15))
    tid = pool.task(db, "tmall", event_days=12)  # the event starts in 10 days
    pool.declare(db, tid, [("WIN-1", "160.00", 50)], documents=[licence(db)])
    [low] = errors(db, tid, "price")
    assert low.params["low"] == "150.00"  # 25 days ago is 35 days before the start: outside
    assert low.fix_text("en") == "set the promo price to at most 150.00"


@pytest.mark.parametrize("text, at_limit_ok", [
    ("活动价须低于近30天最低价", False),
    ("活动价不高于近30天最低价", True),
    ("活动价不得高于近30天最低成交价", True),
    ("秒杀价须为近30天最低价的9折以下", True),
    ("promo price must be below the 30-day low", False),
])
def test_strict_and_non_strict_limits_come_from_the_rule_text(seeded, text, at_limit_ok):
    db = seeded
    pool.product(db, "LIM-1", list_price="200.00")
    prices(db, "LIM-1", ("jd", "100.00", 3))
    limit = Decimal("90.00") if "9折" in text else Decimal("100.00")
    tid = pool.task(db, "jd", {"price_rule": text})
    for price, ok in ((limit, at_limit_ok), (limit - Decimal("0.01"), True),
                      (limit + Decimal("0.01"), False)):
        pool.declare(db, tid, [("LIM-1", str(price), 50)], documents=[licence(db)])
        assert (errors(db, tid, "price") == []) is ok, (text, price)
    if not at_limit_ok:  # the suggested price is below the limit, not at it
        pool.declare(db, tid, [("LIM-1", str(limit), 50)], documents=[licence(db)])
        [v] = errors(db, tid, "price")
        assert v.fix_text("en") == f"set the promo price to at most {limit - Decimal('0.10')}"
        assert "须低于" in v.rule_text("zh-CN")


def test_a_rules_file_says_strict_in_its_own_text(seeded):
    db = seeded
    pool.product(db, "LIM-2", list_price="200.00")
    prices(db, "LIM-2", ("tmall", "100.00", 3))
    strict = {"id": "price_30d_low", "kind": "price", "text": "活动价须低于近30天最低成交价",
              "lowest_days": 30}
    tid = pool.task(db, "tmall", {"rules": [strict]})
    pool.declare(db, tid, [("LIM-2", "100.00", 50)], documents=[licence(db)])
    assert [v.rule_key for v in errors(db, tid, "price")] == ["cv.rule.lowest_below"]
    other = pool.task(db, "tmall", {"rules": [{**strict, "text": "活动价不高于近30天最低成交价"}]},
                      external_id="LIM-2b")
    pool.declare(db, other, [("LIM-2", "100.00", 50)], documents=[licence(db)])
    assert errors(db, other, "price") == []


def test_lowest_across_channels_reads_every_platform(seeded):
    db = seeded
    pool.product(db, "JD-X", list_price="199.00", stock=600, safety=100)
    prices(db, "JD-X", ("jd", "120.00", 4), ("pdd", "159.00", 10))
    tid = pool.task(db, "pdd", {"price_rule": "补贴价须为全网最低价"})
    pool.declare(db, tid, [("JD-X", "149.20", 50)], documents=[licence(db)])
    [v] = errors(db, tid, "price")
    assert v.params["low"] == "120.00" and v.fix_text("en").endswith("120.00")
    assert "JD" in v.rule_text("en") and "京东" in v.rule_text("zh-CN") and "全网" in v.rule_text("zh-CN")
    plain = pool.task(db, "pdd", external_id="PDD-plain")  # its own platform only
    pool.declare(db, plain, [("JD-X", "149.20", 50)], documents=[licence(db)])
    assert errors(db, plain, "price") == []
    with db.session() as s:  # 百亿补贴 in the campaign's type asks the same
        campaign = s.get(Campaign, s.get(Task, plain).campaign_id)
        campaign.type = "百亿补贴"
        s.add(campaign)
    assert [x.params["low"] for x in errors(db, plain, "price")] == ["120.00"]


# -- stock -----------------------------------------------------------------------------------


def test_stock_promised_to_an_overlapping_campaign_counts(seeded):
    db = seeded
    pool.product(db, "STK-1", list_price="100.00", stock=400, safety=30)  # 370 available
    tmall = pool.task(db, "tmall", state="accepted", external_id="STK-T", event_days=10)
    pool.declare(db, tmall, [("STK-1", "90.00", 185)], documents=[licence(db)])
    pdd = pool.task(db, "pdd", external_id="STK-P", event_days=11)  # days 9-11 and 8-10
    pool.declare(db, pdd, [("STK-1", "90.00", 200)], documents=[licence(db)])
    [v] = [x for x in errors(db, pdd) if x.rule_id == "stock_red_line"]
    assert v.params["n"] == 185 and v.params["held"] == 185 and v.params["free"] == 370
    assert f"#{tmall}" in v.describe("en") and v.fix_text("en") == "lower promo stock to 185 or less"
    pool.declare(db, pdd, [("STK-1", "90.00", 185)], documents=[licence(db)])
    assert [x for x in errors(db, pdd) if x.rule_id == "stock_red_line"] == []
    with db.session() as s:  # campaigns that do not overlap do not share the stock
        campaign = s.get(Campaign, s.get(Task, pdd).campaign_id)
        campaign.event_start = utcnow() + timedelta(days=30)
        campaign.event_end = utcnow() + timedelta(days=35)
        s.add(campaign)
    pool.declare(db, pdd, [("STK-1", "90.00", 370)], documents=[licence(db)])
    assert [x for x in errors(db, pdd) if x.rule_id == "stock_red_line"] == []


def test_only_in_flight_and_accepted_declarations_hold_stock(seeded):
    db = seeded
    pool.product(db, "STK-2", list_price="100.00", stock=300)
    drafting = pool.task(db, "jd", external_id="STK-D")
    pool.declare(db, drafting, [("STK-2", "90.00", 250)])
    rejected = pool.task(db, "douyin", state="accepted", external_id="STK-R")
    pool.declare(db, rejected, [("STK-2", "90.00", 250)])
    with db.session() as s:  # the platform rejected this line: it holds nothing
        line = s.exec(select(DeclarationLine).where(DeclarationLine.sku == "STK-2")
                      .order_by(DeclarationLine.id.desc())).first()
        line.result = "rejected"
        s.add(line)
    approving = pool.task(db, "tmall", state="in_approval", external_id="STK-A")
    pool.declare(db, approving, [("STK-2", "90.00", 100)])
    tid = pool.task(db, "pdd", external_id="STK-N")
    pool.declare(db, tid, [("STK-2", "90.00", 250)], documents=[licence(db)])
    [v] = [x for x in errors(db, tid) if x.rule_id == "stock_red_line"]
    assert v.params["held"] == 100 and f"#{approving}" in v.params["tasks"]


# -- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize("platform, size, ok", [
    ("tmall", (1200, 1200), True), ("tmall", (800, 800), True), ("tmall", (700, 700), False),
    ("tmall", (6000, 6000), False), ("tmall", (1000, 800), False),
    ("douyin", (1200, 1200), True), ("douyin", (750, 1000), True), ("douyin", (1000, 750), False),
    ("jd", (1200, 1200), True), ("pdd", (1200, 1200), True), ("pdd", (600, 600), False),
])
def test_images_have_a_minimum_a_maximum_and_a_ratio(seeded, platform, size, ok):
    db = seeded
    pool.product(db, "IMG-1", image=(*size, "JPEG"))
    tid = pool.task(db, platform)
    pool.declare(db, tid, [("IMG-1", "90.00", 50)], documents=[licence(db)])
    assert (errors(db, tid, "image") == []) is ok


def test_one_image_passes_tmall_and_douyin_and_a_campaign_size_is_a_minimum(seeded):
    db = seeded
    pool.product(db, "IMG-2", image=(1200, 1200, "JPEG"))
    for platform, req in (("tmall", {"image_size": "800x800"}), ("douyin", {}), ("jd", {})):
        tid = pool.task(db, platform, req, external_id=f"IMG-{platform}")
        pool.declare(db, tid, [("IMG-2", "90.00", 50)], documents=[licence(db)])
        assert errors(db, tid, "image") == [], platform
    small = pool.task(db, "tmall", {"image_size": "1500x1500"}, external_id="IMG-small")
    pool.declare(db, small, [("IMG-2", "90.00", 50)], documents=[licence(db)])
    [v] = errors(db, small, "image")
    assert "at least 1500x1500" in v.describe("en") and "至少 1500x1500" in v.describe("zh-CN")


@pytest.mark.parametrize("image_rule, problem", [
    ({"ratio": "square"}, "ratio 'square'"),
    ({"min_width": 900, "max_width": 800}, "above max"),
])
def test_a_rules_file_with_a_bad_image_rule_is_refused(tmp_path: Path, image_rule, problem):
    content = {"platform": "tmall", "rules": [{"id": "main_image", "kind": "image", **image_rule}]}
    (tmp_path / "tmall.yaml").write_text(yaml.safe_dump(content), encoding="utf-8")
    with pytest.raises(rules.RulesError) as err:
        rules.read_file(tmp_path / "tmall.yaml")
    assert "tmall.yaml" in err.value.message("en") and problem in err.value.message("en")


def test_the_shipped_rules_state_a_minimum_a_maximum_and_a_ratio():
    for path in sorted(rules.RULES_DIR.glob("*.yaml")):
        image = next(r for r in rules.read_file(path)["rules"] if r["kind"] == "image")
        assert image.get("min_width") and image.get("max_width") and image.get("ratio"), path.name
        assert "width" not in image and "height" not in image, path.name


# -- documents -------------------------------------------------------------------------------


def test_a_brands_quality_report_covers_that_brand_only(seeded):
    db = seeded
    pool.product(db, "QR-A", brand="甲牌", category="家电数码")
    pool.product(db, "QR-B", brand="乙牌", category="家电数码")
    a = pool.document(db, "quality_report", "质检报告(甲牌)", days=90, brand="甲牌")
    tid = pool.task(db, "douyin", {"required_documents": ["营业执照", "质检报告"]})
    pool.declare(db, tid, [("QR-A", "90.00", 50), ("QR-B", "90.00", 50)],
                 documents=[licence(db), a])
    [v] = errors(db, tid, "documents")
    assert v.params["brand"] == "(乙牌)" and "质检报告(甲牌)" in v.describe("zh-CN")
    assert "covers 甲牌" in v.rule_text("en")
    by_category = pool.document(db, "quality_report", "家电数码类质检报告", days=90,
                                brand="家电数码")  # a report naming the category covers it
    pool.declare(db, tid, [("QR-A", "90.00", 50), ("QR-B", "90.00", 50)],
                 documents=[licence(db), a, by_category])
    assert errors(db, tid, "documents") == []


def test_an_expiring_document_must_be_valid_until_the_campaign_ends(seeded):
    db = seeded
    pool.product(db, "EXP-1", brand="短牌")
    short = pool.document(db, "brand_authorisation", "短期授权", days=5, brand="短牌")
    tid = pool.task(db, "pdd", {"required_documents": ["营业执照", "品牌授权书"]}, event_days=20)
    pool.declare(db, tid, [("EXP-1", "90.00", 50)], documents=[licence(db), short])
    [v] = errors(db, tid, "documents")
    with db.session() as s:
        end = s.get(Campaign, s.get(Task, tid).campaign_id).event_end
        expiry = s.get(QualificationDocument, short).valid_until
    end_day, expiry_day = local(end, fmt="%Y-%m-%d"), local(expiry, fmt="%Y-%m-%d")
    assert v.fix_text("en") == f"upload one valid beyond {end_day}"  # the campaign's end
    assert expiry_day not in v.fix_text("en") and expiry_day in v.rule_text("en")
    assert end_day in v.fix_text("zh-CN")


# -- 折 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ratio", [
    ("95折", "0.95"), ("88折", "0.88"), ("9折", "0.9"), ("7.5折", "0.75"), ("8.8折", "0.88"),
    ("近30天最低价的95折以下", "0.95"), ("10折", "1"), ("满300减40", None), ("100折", None),
])
def test_fold_table(text, ratio):
    assert rule_text.fold(text) == (Decimal(ratio) if ratio else None)


@pytest.mark.parametrize("price_rule, ratio", [
    ("活动价不得高于近30天最低价的95折", 0.95), ("近30天最低价的88折", 0.88),
    ("秒杀价须为近30天最低价的9折以下", 0.9), ("近15天最低价的7.5折", 0.75),
])
def test_notice_price_rules_and_discounts_read_fold(price_rule, ratio):
    merged = rules.campaign_overrides([{"id": "p", "kind": "price", "lowest_days": 30}],
                                      {"price_rule": price_rule, "min_discount": "95折"})
    assert merged[0]["max_ratio_of_lowest"] == ratio
    assert merged[0]["min_discount"] == pytest.approx(0.05)  # 95折 → at least 5 % off
    assert rule_text.discount("85折") == pytest.approx(0.15)
    assert rule_text.discount("15%") == pytest.approx(0.15) == rule_text.discount(0.15)


@pytest.mark.parametrize("text, rule", [
    ("活动价须低于近30天最低价的95折", {"kind": "price", "lowest_days": 30,
                                   "max_ratio_of_lowest": 0.95, "strict": True}),
    ("活动价不得高于近15天最低价的88折", {"kind": "price", "lowest_days": 15,
                                    "max_ratio_of_lowest": 0.88}),
    ("活动价须为原价7.5折以下", {"kind": "price", "min_discount": 0.25}),
])
def test_rules_learned_from_rejections_read_fold_too(text, rule):
    from bot.declarations import learning

    assert learning.derive_rule("price", "", text) == pytest.approx(rule)


def test_a_notice_that_writes_its_discount_in_fold_is_read_not_flagged():
    from bot.watch.validate import normalise_requirements

    req = normalise_requirements({"min_discount": "95折", "price_rule": "近30天最低价的88折"})
    assert req["min_discount"] == pytest.approx(0.05) and "_unreadable" not in req
    merged = rules.campaign_overrides([{"id": "p", "kind": "price", "lowest_days": 30}], req)
    assert merged[0]["min_discount"] == pytest.approx(0.05)
    assert merged[0]["max_ratio_of_lowest"] == 0.88
