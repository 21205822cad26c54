"""Guards before approval. Stacked discounts (薅羊毛) on a table of combinations with known
outcomes — the worst basket, exclusive coupons, platform-funded subsidies, the brand's floor
— and, on SQLite and PostgreSQL, the guard refusing ``approve`` until finance accepts the
risk with a reason, and the cross-channel balance between a Tmall price and a 百亿补贴."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from bot.core import actions
from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.errors import DomainError, Forbidden
from bot.insight import acceptance, guards
from bot.insight.discounts import Discount, Terms, parse_discount
from bot.insight.fees import FeeTable
from bot.insight.margin import Deal
from bot.insight.pricing import Floors, PricingPolicy
from bot.insight.pricing import use as use_policy
from commands.router import Inbound, router
from storage.models import AuditEvent, Campaign, Declaration, DeclarationLine, Product, Task, User

D = Decimal
FEES = FeeTable("tmall", 1, {"commission": D("0.05"), "payment": D("0.006"),
                             "shipping": D("6.00")}, {})
NONE = FeeTable("tmall", 1, {}, {})


def deal(price: str, cost: str, discounts: list, *, list_price: str = "150.00",
         table: FeeTable = NONE, floors: Floors | None = None,
         min_margin: str = "0") -> tuple[Deal, DeclarationLine]:
    product = Product(sku="A-1", title="测试商品", brand="品牌甲", category="美妆个护",
                      list_price=D(list_price), cost=D(cost), stock=500, safety_stock=50)
    line = DeclarationLine(declaration_id=1, sku="A-1", list_price=D(list_price),
                           promo_price=D(price), promo_stock=100)
    found = Deal(Task(id=1, campaign_id=1, team_id=1),
                 Campaign(id=1, platform="tmall", external_id="x", title="t", content_hash="h"),
                 Declaration(id=1, task_id=1), [line], {"A-1": product}, {}, table,
                 Terms([parse_discount(d) if isinstance(d, str) else d for d in discounts]),
                 PricingPolicy(floors=floors or Floors(), stacking={"min_margin": min_margin}))
    return found, line


COUPON_40 = Discount("coupon", off=D(40), threshold=D(199), group="coupon", origin="shop")
BRAND_70 = Floors(brands={"品牌甲": {"min_ratio_of_list": 0.7}})  # 70 % of 150 = 105.00

# (case, price, cost, discounts, options) → (kinds found, worst combination, paid, margin)
TABLE = [
    ("a coupon alone is fine", "100", "60", ["店铺券满99减10"], {}, set(), None, None, None),
    # at a basket of 300: coupon 3.33 + cross-shop 16.67 + 满200减30 10.00 + subsidy 5 → 65.00
    # paid; revenue 70.00 (the subsidy is the platform's); 70 − 75 = −5.00
    ("four discounts stack into a loss", "100", "75",
     ["店铺券满99减10", "跨店每满300减50", "满200减30", "平台补贴5元"], {},
     {"stacking"}, {"coupon", "cross_shop", "full_reduction", "subsidy"}, "65.00", "-5.00"),
    ("the same four with a thicker cost are fine", "100", "60",
     ["店铺券满99减10", "跨店每满300减50", "满200减30", "平台补贴5元"], {},
     set(), None, None, None),
    # one shop coupon per order: at 199 the ¥40 coupon (20.10 of this unit) beats the ¥10 one
    ("exclusive coupons: the worst single one", "100", "85", ["店铺券满99减10", COUPON_40], {},
     {"stacking"}, {"coupon"}, "79.90", "-5.10"),
    # 110 − 10 = 100 paid, under the brand's floor 105 (margin fine)
    ("stacked under the brand floor", "110", "50", ["店铺券满99减10"], {"floors": BRAND_70},
     {"stacking_floor"}, {"coupon"}, "100.00", None),
    ("the promo price itself under the floor", "100", "50", [], {"floors": BRAND_70},
     {"floor"}, None, None, None),
    # the platform pays the subsidy back: margin 100 − 90 = 10 stays, but the buyer pays 80
    ("a platform subsidy keeps the margin but breaks a SKU floor", "100", "90", ["平台补贴20元"],
     {"floors": Floors(skus={"A-1": 85})}, {"stacking_floor"}, {"subsidy"}, "80.00", None),
    ("a loss without any discount is a warning, not a loophole", "50", "60", ["满40减5"], {},
     {"loss"}, None, None, None),
    # with fees, at 300: paid 83.33, commission 4.17, payment 0.50, parcel 6 → 2.66 < 5
    ("fees count, and the stacking margin is the policy's", "100", "70", ["跨店每满300减50"],
     {"table": FEES, "min_margin": "5"}, {"stacking"}, {"cross_shop"}, "83.33", "2.66"),
]


@pytest.mark.parametrize("case,price,cost,discounts,options,kinds,combo,paid,margin_", TABLE,
                         ids=[row[0] for row in TABLE])
def test_stacked_discounts_on_a_table_of_combinations(case, price, cost, discounts, options,
                                                      kinds, combo, paid, margin_):
    found, line = deal(price, cost, discounts, **options)
    findings = guards.stacking(found, line)
    assert {f.kind for f in findings} == kinds
    stacked = [f for f in findings if f.kind.startswith("stacking")]
    if combo is None:
        assert not stacked
        return
    worst = stacked[0]
    assert worst.severity == "error"
    assert {d.kind for d in worst.combo} == combo
    assert worst.params["paid"] == paid
    if margin_ is not None:
        assert worst.params["margin"] == margin_
    text = worst.describe("zh-CN")
    assert "A-1" in text and paid in text


def test_the_worst_basket_fills_to_a_threshold():
    assert guards.baskets(D("100"), [parse_discount("跨店每满300减50")]) == [
        D("100"), D("300"), D("600"), D("900"), D("1200")]
    assert guards.baskets(D("350"), [parse_discount("满300减50")])[:2] == [D("350"), D("600")]


# -- the guard before approve, on the database -----------------------------------------------

def _user(db, name: str) -> User:
    with db.session() as s:
        return s.exec(select(User).where(User.name == name)).one()


def _say(db, who: str, text: str, channel: str = "tmall-promo"):
    return router.handle_text(db, Inbound("web", channel, who), text)


def _task_of(db, platform: str) -> int:
    with db.session() as s:
        return s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == platform).order_by(Task.id)).first()


def _product(session, sku: str) -> Product:
    product = session.exec(select(Product).where(Product.sku == sku)).one()
    session.add(product)
    return product


@pytest.fixture
def guarded():
    actions.guard("approve")(acceptance.before_approve)  # what the plugin installs
    with use_policy(PricingPolicy(floors=Floors(brands={"水润坊": {"min_ratio_of_list": 0.6}}))):
        yield


def test_approve_is_refused_until_finance_accepts_the_stacking_risk(seeded, guarded):
    db = seeded
    tid = _task_of(db, "tmall")
    with db.session() as s:  # the notice stacks a cross-shop discount; MZ-001 costs more now
        campaign = s.get(Campaign, s.get(Task, tid).campaign_id)
        campaign.requirements = {**campaign.requirements, "discounts": ["跨店每满300减50"]}
        s.add(campaign)
        _product(s, "MZ-001").cost = D("90.00")  # 109.60 alone: 8.56 a unit after fees
    for text in (f"认领 {tid}", f"填报 {tid}", f"送审 {tid}"):
        assert _say(db, "li.na", text).ok, text
    with pytest.raises(DomainError) as not_theirs:  # not an approver of this step: the
        perform(db, ActionRequest(tid, "approve", Actor.of(_user(db, "zhao.lei"))))
    assert "价格风险" not in not_theirs.value.message("zh-CN")  # approvals' own refusal
    manager = Actor.of(_user(db, "zhou.qiang"))
    with pytest.raises(DomainError) as refused:
        perform(db, ActionRequest(tid, "approve", manager))
    zh = refused.value.message("zh-CN")
    assert "MZ-001" in zh and "跨店每满300减50" in zh and f"接受风险 {tid} <原因>" in zh
    assert "财务" in zh and "薅羊毛" in zh
    assert "cross-shop ¥50 off every ¥300" in refused.value.message("en")
    reply = _say(db, "li.na", f"接受风险 {tid} 引流款")
    assert not reply.ok and "不能接受价格风险" in reply.text
    with pytest.raises(Forbidden):
        perform(db, ActionRequest(tid, "accept_risk", Actor.of(_user(db, "li.na")),
                                  comment="x"))
    assert "原因" in _say(db, "zhao.lei", f"接受风险 {tid}").text
    accepted = _say(db, "zhao.lei", f"接受风险 {tid} 引流款,限购 2 件")
    assert accepted.ok, accepted.text
    assert "引流款" in accepted.text
    card = _say(db, "zhou.qiang", f"审批单 {tid}").card
    risks = next(f.value for f in card.fields if f.label == "价格风险")
    assert "↷" in risks and "引流款" in risks and "✗" not in risks
    assert _say(db, "zhou.qiang", f"批准 {tid}").ok
    with db.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "accept_risk")).one()
        assert event.actor == "zhao.lei" and event.detail["keys"][0].startswith("stacking:MZ-001")
        assert s.get(Task, tid).state == "approved"


def test_a_rejection_ends_the_acceptance(seeded, guarded):
    db = seeded
    tid = _task_of(db, "tmall")
    with db.session() as s:
        campaign = s.get(Campaign, s.get(Task, tid).campaign_id)
        campaign.requirements = {**campaign.requirements, "discounts": ["跨店每满300减50"]}
        s.add(campaign)
        _product(s, "MZ-001").cost = D("90.00")
    for text in (f"认领 {tid}", f"填报 {tid}", f"送审 {tid}"):
        assert _say(db, "li.na", text).ok, text
    assert _say(db, "zhao.lei", f"接受风险 {tid} 引流款").ok
    assert _say(db, "zhou.qiang", f"驳回 {tid} 价格再看看").ok
    assert _say(db, "li.na", f"送审 {tid}").ok
    with pytest.raises(DomainError):
        perform(db, ActionRequest(tid, "approve", Actor.of(_user(db, "zhou.qiang"))))


def test_a_price_under_a_lowest_price_campaign_elsewhere_is_flagged_on_both(seeded, guarded):
    db = seeded
    tmall, pdd = _task_of(db, "tmall"), _task_of(db, "pdd")
    for text in (f"认领 {pdd}", f"填报 {pdd}", f"送审 {pdd}"):
        assert _say(db, "li.na", text, "pdd-promo").ok, text
    for text in (f"认领 {tmall}", f"填报 {tmall}", f"改 {tmall} MZ-001 价格=89",
                 f"送审 {tmall}"):
        assert _say(db, "li.na", text).ok, text
    with db.session() as s:
        pdd_price = s.exec(select(DeclarationLine.promo_price).join(
            Declaration, Declaration.id == DeclarationLine.declaration_id).where(
            Declaration.task_id == pdd, DeclarationLine.sku == "MZ-001")).one()
    assert pdd_price > D("89")  # 百亿补贴 asks for the lowest price on every channel
    on_tmall = _say(db, "zhou.qiang", f"审批单 {tmall}").card
    risks = next(f.value for f in on_tmall.fields if f.label == "价格风险")
    assert "⚠ MZ-001" in risks and "拼多多" in risks and "全网最低价" in risks
    assert f"{pdd_price:,.2f}" in risks
    on_pdd = next(f.value for f in _say(db, "zhou.qiang", f"审批单 {pdd}", "pdd-promo").card
                  .fields if f.label == "价格风险")
    assert "MZ-001" in on_pdd and "天猫" in on_pdd and "89.00" in on_pdd
    assert _say(db, "zhou.qiang", f"批准 {tmall}").ok  # warnings never block
