"""Margin at the promo price against hand-computed tables, to the cent: the fee table's
category overrides (longest match, platform category first), 满减 thresholds by basket,
exclusive coupons, platform-funded subsidies, ROUND_HALF_UP; discounts read from the texts
notices use; the ``fees:`` section versioned and checked with the rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from bot.declarations import rules
from bot.insight import fees, margin, pricing
from bot.insight.discounts import Discount, parse_discount
from bot.insight.fees import FeeTable
from commands.router import Inbound, router
from storage.models_data import ProductCategory

D = Decimal
TMALL = FeeTable("tmall", 3, {"commission": D("0.05"), "payment": D("0.006"),
                              "shipping": D("6.00")},
                 {"美妆个护": {"commission": D("0.04")}, "美妆个护/面膜": {"commission": D("0.03")},
                  "食品": {"commission": D("0.02"), "shipping": D("8.00")}})
NO_FEES = FeeTable("x", 0, {}, {})
COUPON_99_10 = Discount("coupon", off=D(10), threshold=D(99), group="coupon", origin="shop")
COUPON_199_25 = Discount("coupon", off=D(25), threshold=D(199), group="coupon", origin="shop")
FR_300_30 = Discount("full_reduction", off=D(30), threshold=D(300))
FR_EVERY_300_30 = Discount("full_reduction", off=D(30), threshold=D(300), repeat=True)
SUBSIDY_10 = Discount("subsidy", off=D(10), funded_by="platform")
PCT_5 = Discount("percent", rate=D("0.05"))

# (case, category, price, cost, discounts, quantity) →
#     (paid, revenue, commission, payment, shipping, margin, rate), computed by hand:
TABLE = [
    # 面膜 is the longest override (3 %): 109.60 × 0.03 = 3.288 → 3.29; × 0.006 = 0.6576 → 0.66
    ("category override, longest", "美妆个护/面膜", "109.60", "38.00", [], 1,
     ("109.60", "109.60", "3.29", "0.66", "6.00", "61.65", "0.5625")),
    # 美妆个护 alone (4 %): 4.384 → 4.38
    ("category override", "美妆个护", "109.60", "38.00", [], 1,
     ("109.60", "109.60", "4.38", "0.66", "6.00", "60.56", "0.5526")),
    # no override: the platform's defaults (5 %): 5.48
    ("platform defaults", "家居", "109.60", "38.00", [], 1,
     ("109.60", "109.60", "5.48", "0.66", "6.00", "59.46", "0.5425")),
    # 食品: 2 % and ¥8 a parcel; 159 alone is under 满300减30: no discount
    ("满减 below the threshold", "食品", "159.00", "79.00", [FR_300_30], 1,
     ("159.00", "159.00", "3.18", "0.95", "8.00", "67.87", "0.4269")),
    # two units: basket 318 ≥ 300, ¥30 spread: 30 × 159 / 318 = 15.00 a unit; parcel 8 / 2
    ("满减 reached with two units", "食品", "159.00", "79.00", [FR_300_30], 2,
     ("144.00", "144.00", "2.88", "0.86", "4.00", "57.26", "0.3601")),
    # 满300减30 once: four units (636) still get ¥30: 30 × 159 / 636 = 7.50 a unit
    ("满减 once, four units", "食品", "159.00", "79.00", [FR_300_30], 4,
     ("151.50", "151.50", "3.03", "0.91", "2.00", "66.56", "0.4186")),
    # 每满300减30: 636 reaches it twice: 60 × 159 / 636 = 15.00 a unit
    ("每满 twice, four units", "食品", "159.00", "79.00", [FR_EVERY_300_30], 4,
     ("144.00", "144.00", "2.88", "0.86", "2.00", "59.26", "0.3727")),
    # coupon 满99减10 (shop) + subsidy 10 (platform): paid 79, revenue 79 + 10 = 89;
    # commission 89 × 0.05 = 4.45, payment 79 × 0.006 = 0.474 → 0.47
    ("coupon and platform subsidy", "", "99.00", "50.00", [COUPON_99_10, SUBSIDY_10], 1,
     ("79.00", "89.00", "4.45", "0.47", "6.00", "28.08", "0.2836")),
    # one shop coupon per order: of 10 and 25 the buyer uses 25
    ("exclusive coupons", "", "219.00", "100.00", [COUPON_99_10, COUPON_199_25], 1,
     ("194.00", "194.00", "9.70", "1.16", "6.00", "77.14", "0.3522")),
    # 95折: 200 × 0.05 = 10.00
    ("percent off", "", "200.00", "120.00", [PCT_5], 1,
     ("190.00", "190.00", "9.50", "1.14", "6.00", "53.36", "0.2668")),
]


@pytest.mark.parametrize("case,category,price,cost,discounts,quantity,expected", TABLE,
                         ids=[row[0] for row in TABLE])
def test_unit_margin_matches_the_hand_computed_table(case, category, price, cost, discounts,
                                                     quantity, expected):
    unit = margin.unit_margin(D(price), D(cost), TMALL.for_categories(category), discounts,
                              quantity=quantity)
    got = tuple(str(x) for x in (unit.paid, unit.revenue, unit.commission, unit.payment,
                                 unit.shipping, unit.margin, unit.rate))
    assert got == expected


def test_fees_are_rounded_half_up_to_the_cent():
    # 10.10 × 0.05 = 0.505: half up is 0.51 (banker's rounding would say 0.50)
    unit = margin.unit_margin(D("10.10"), D("5.00"), FeeTable(
        "t", 1, {"commission": D("0.05"), "payment": D("0.006")}, {}).for_categories(""))
    assert (unit.commission, unit.payment, unit.margin) == (D("0.51"), D("0.06"), D("4.53"))


def test_the_platform_category_wins_over_the_pool_category():
    picked = TMALL.for_categories("美妆个护/面膜", "食品")
    assert (picked.category, picked.commission, picked.shipping) == ("美妆个护/面膜", D("0.03"),
                                                                     D("6.00"))
    assert TMALL.for_categories(None, "食品/坚果").commission == D("0.02")
    assert TMALL.for_categories("", "").category == ""


def test_shares_never_exceed_the_price_and_no_cost_means_no_margin():
    huge = Discount("coupon", off=D(500), threshold=D(0))
    unit = margin.unit_margin(D("80.00"), None, NO_FEES.for_categories(""), [huge, SUBSIDY_10])
    assert unit.paid == D("0.00") and sum(s for _, s in unit.applied) == D("80.00")
    assert unit.margin is None and unit.rate is None


@pytest.mark.parametrize("text,kind,off,threshold,repeat,rate,funded", [
    ("满300减50", "full_reduction", "50", "300", False, "0", "shop"),
    ("每满300减50", "full_reduction", "50", "300", True, "0", "shop"),
    ("跨店每满300减50", "cross_shop", "50", "300", True, "0", "shop"),
    ("店铺券满99减10", "coupon", "10", "99", False, "0", "shop"),
    ("满 199 元减 20 元", "full_reduction", "20", "199", False, "0", "shop"),
    ("95折", "percent", "0", "0", False, "0.05", "shop"),
    ("8.5折", "percent", "0", "0", False, "0.15", "shop"),
    ("平台补贴5元", "subsidy", "5", "0", False, "0", "platform"),
    ("补贴10%", "subsidy", "0", "0", False, "0.1", "platform"),
])
def test_discounts_read_from_notice_texts(text, kind, off, threshold, repeat, rate, funded):
    d = parse_discount(text)
    assert d is not None, text
    assert (d.kind, d.off, d.threshold, d.repeat, d.rate, d.funded_by) == (
        kind, D(off), D(threshold), repeat, D(rate), funded)


def test_unreadable_discounts_are_none_and_yaml_off_is_not_a_key():
    for raw in ("买一送一", "", {"kind": "bogus"}, {"kind": "coupon", "amount": -1},
                {"kind": "coupon", "threshold": 99}, {"kind": "percent", "rate": 1.5},
                {"kind": "coupon", "amount": 5, "funded_by": "brand"}, 42):
        assert parse_discount(raw) is None, raw
    # ``off: 20`` in YAML is the boolean false as a key: the policy uses ``amount``
    entry = yaml.safe_load("{kind: coupon, amount: 20, threshold: 299}")
    assert parse_discount(entry) == Discount("coupon", off=D(20), threshold=D(299),
                                             group="coupon")


def test_a_discount_is_described_in_both_languages():
    assert FR_EVERY_300_30.describe("zh-CN") == "每满300减30"
    assert FR_EVERY_300_30.describe("en") == "¥30 off every ¥300"
    assert SUBSIDY_10.describe("zh-CN") == "补贴 ¥10/件(平台出资)"


@pytest.mark.parametrize("section,fault", [
    ({"commission": 1.5}, "fees.commission"),
    ({"payment": "abc"}, "fees.payment"),
    ({"shipping": -1}, "fees.shipping"),
    ({"commision": 0.05}, "unknown fee"),
    ({"categories": {"食品": {"commission": 2}}}, "fees.categories.食品.commission"),
    ({"categories": ["食品"]}, "fees.categories"),
    ("5%", "fees"),
])
def test_a_bad_fee_section_is_named(section, fault):
    assert fault in (fees.problem(section) or "")


def test_no_fee_section_means_no_fees_and_says_so():
    table, error = fees.parse(None, "tmall", 2)
    assert error is None and not table.configured
    assert table.for_categories("食品").commission == 0


def _copy_rules(tmp_path: Path) -> Path:
    for path in rules.RULES_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_fees_are_versioned_with_the_rules_and_a_bad_section_is_refused(db, tmp_path):
    folder = _copy_rules(tmp_path)
    with db.session() as s:
        rules.sync(s, folder, author="rules-team")
        first = fees.table(s, "tmall")
        assert first.for_categories("美妆个护/面膜").commission == D("0.03")
    path = folder / "tmall.yaml"
    content = yaml.safe_load(path.read_text(encoding="utf-8"))
    content["fees"]["categories"]["美妆个护/面膜"] = {"commission": 0.025}
    path.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    with db.session() as s:
        stored = rules.sync(s, folder, author="wang.fang")
        assert [(r.platform, r.author) for r in stored] == [("tmall", "wang.fang")]
        second = fees.table(s, "tmall")
    assert second.version == first.version + 1
    assert second.for_categories("美妆个护/面膜").commission == D("0.025")
    content["fees"]["commission"] = 5
    path.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    with db.session() as s, pytest.raises(rules.RulesError) as refused:
        rules.sync(s, folder)
    assert "fees.commission" in refused.value.message("en")
    assert "tmall.yaml" in refused.value.message("zh-CN")
    with db.session() as s:
        assert fees.table(s, "tmall").version == second.version  # the stored one stays


def test_a_declaration_margin_uses_the_platform_category_of_each_sku(seeded):
    db = seeded
    for text in ("认领 1", "填报 1"):
        assert router.handle_text(db, Inbound("web", "tmall-promo", "li.na"), text).ok
    with db.session() as s:
        s.add(ProductCategory(sku="MZ-001", platform="tmall", category="美妆个护/面膜"))
    with pricing.use(pricing.PricingPolicy()), db.session() as s:
        from storage.models import Task

        found = margin.deal(s, s.get(Task, 1))
        lines = {m.sku: m for m in margin.line_margins(found)}
        assert found.fees("MZ-001").category == "美妆个护/面膜"
        assert found.fees("MZ-002").category == "美妆个护"
        one = lines["MZ-001"].unit
        # 109.60 (85 % of 129, to 0.10 down): 3 % → 3.29, 0.66, ¥6 parcel, cost 38.00
        assert (one.price, one.commission, one.margin) == (D("109.60"), D("3.29"), D("61.65"))
        two = lines["MZ-002"].unit  # 75.60 at 4 %: 3.02, 0.45, 6, cost 21.50
        assert (two.price, two.commission, two.payment, two.margin) == (
            D("75.60"), D("3.02"), D("0.45"), D("44.63"))
        assert margin.total(list(lines.values())) == sum(
            m.unit.margin * m.promo_stock for m in lines.values())
        assert margin.thinnest(list(lines.values())).sku == "MZ-001"
        assert s.exec(select(ProductCategory)).first() is not None


def test_a_campaign_with_its_own_commission_is_computed_with_it_and_says_so(seeded):
    """A 百亿补贴 charging 2 % instead of the table's 3 %: the notice's ``fees`` (read by the
    same check every notice passes at ingest) wins for what it names, and the approval
    card says the campaign's own terms were used; an unreadable one is set aside."""
    from bot.watch.validate import UNREADABLE, normalise_requirements
    from storage.models import Campaign, Task

    db = seeded
    for text in ("认领 1", "填报 1"):
        assert router.handle_text(db, Inbound("web", "tmall-promo", "li.na"), text).ok
    with db.session() as s:
        s.add(ProductCategory(sku="MZ-001", platform="tmall", category="美妆个护/面膜"))
        campaign = s.get(Campaign, s.get(Task, 1).campaign_id)
        campaign.requirements = normalise_requirements(
            {**campaign.requirements, "fees": {"commission": "2%"}})
        s.add(campaign)
    with pricing.use(pricing.PricingPolicy()), db.session() as s:
        task = s.get(Task, 1)
        found = margin.deal(s, task)
        rates = found.fees("MZ-001")
        assert (rates.commission, rates.payment, rates.campaign) == (
            D("0.02"), D("0.006"), ("commission",))  # the payment fee stays the table's
        one = {m.sku: m for m in margin.line_margins(found)}["MZ-001"].unit
        # 109.60 × 2 % = 2.192 → 2.19; 0.66; ¥6; cost 38.00 → 62.75 (61.65 at the table's 3 %)
        assert (one.commission, one.margin) == (D("2.19"), D("62.75"))
        zh = margin.card_fields(s, task, None, "zh-CN")[0].value
        en = margin.card_fields(s, task, None, "en")[0].value
    assert "本活动自己的费率(佣金)" in zh and "佣金 2.0%" in zh, zh
    assert "This campaign's own commission" in en, en
    bad = normalise_requirements({"fees": {"commission": "很多"}})
    assert "fees" not in bad and "很多" in bad[UNREADABLE]["fees"]
    assert fees.campaign_fees(bad) == {}
