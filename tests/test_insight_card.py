"""The approval card shows the margin after fees, the guards' findings and the scenarios
before anyone approves — rendered through the real Slack and Feishu renderers — and the same
scenarios answer ``方案 <id>`` and ``GET /api/tasks/{id}/scenarios``."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlmodel import select

from adapters.chat.feishu.render import render as feishu_render
from adapters.chat.slack.render import render as slack_render
from bot.insight import scenarios
from bot.insight.pricing import Floors, PricingPolicy, use
from commands.router import Inbound, router
from storage.models import Campaign, Product, Task

POLICY = PricingPolicy(floors=Floors(brands={"水润坊": {"min_ratio_of_list": 0.6}}),
                       shop_discounts={"tmall": ["店铺券满99减10"]})


def say(db, who: str, text: str):
    return router.handle_text(db, Inbound("web", "tmall-promo", who), text)


@pytest.fixture
def in_approval(seeded):
    """Task 1 (Tmall) in approval; its notice adds a cross-shop discount and MZ-001 costs
    90.00, so stacking everything sells it at a loss."""
    db = seeded
    with db.session() as s:
        task = s.get(Task, 1)
        campaign = s.get(Campaign, task.campaign_id)
        campaign.requirements = {**campaign.requirements, "discounts": ["跨店每满300减50"]}
        s.add(campaign)
        product = s.exec(select(Product).where(Product.sku == "MZ-001")).one()
        product.cost, product.in_transit = Decimal("90.00"), 120
        s.add(product)
    with use(POLICY):
        for text in ("认领 1", "填报 1", "送审 1"):
            assert say(db, "li.na", text).ok, text
        yield db


def field(card, label: str) -> str:
    return next(f.value for f in card.fields if f.label == label)


def test_the_approval_card_shows_margin_risks_and_scenarios_in_every_renderer(in_approval):
    db = in_approval
    card = say(db, "zhou.qiang", "审批单 1").card
    labels = [f.label for f in card.fields]
    steps = [i for i, label in enumerate(labels) if label.startswith("审批环节")]
    assert labels.index("预检结果") < labels.index("费后毛利") < labels.index("价格风险") \
        < labels.index("方案对比") < steps[0]  # before the steps the approver decides
    assert "费率表:天猫 规则 v" in field(card, "费后毛利")
    risks = field(card, "价格风险")
    assert "✗ MZ-001 叠加优惠的最坏情况" in risks and "跨店每满300减50" in risks
    table = field(card, "方案对比").splitlines()
    assert table[0].startswith("A 平台最低折扣:折扣 15%") and "风险:叠加优惠会亏损(MZ-001)" \
        in table[0]
    assert table[1].startswith("B 更深折扣:折扣 25%")
    assert table[2].startswith("C 不参加")
    assert table[3].startswith("销量估算:3 个 SKU 中 0 个有以往活动结果")
    assert "库存 最紧 MZ-003 余 200/红线 60(在途 0)" in table[0]  # 260 − 60 expected
    slack = json.dumps(slack_render(card, "zh-CN"), ensure_ascii=False)
    feishu = json.dumps(feishu_render(card, "zh-CN"), ensure_ascii=False)
    for wire in (slack, feishu):
        for text in ("费后毛利", "价格风险", "叠加优惠的最坏情况", "方案对比", "平台最低折扣",
                     "更深折扣", "不参加", "销量估算"):
            assert text in wire, text
    english = router.handle_text(db, Inbound("web", "tmall-promo", "alex"), "approval 1").card
    wire = json.dumps(slack_render(english, "en"), ensure_ascii=False)
    for text in ("Margin after fees", "Price risks", "worst stacked discounts",
                 "cross-shop ¥50 off every ¥300", "Platform minimum", "Deeper price", "Skip"):
        assert text in wire, text


def test_scenarios_by_command_and_margin_line_by_line(in_approval):
    db = in_approval
    with use(POLICY):
        text = say(db, "zhou.qiang", "方案 1").text
        lines = text.splitlines()
        assert lines[0] == "#1 方案对比(申报第 1 版)"
        assert lines[1].startswith("A 平台最低折扣") and lines[3].startswith("C 不参加")
        assert any(line.startswith("✗ MZ-001") for line in lines)
        margin = say(db, "zhou.qiang", "毛利 1").text
    # MZ-001 at 109.60 alone: 店铺券满99减10 → paid 99.60; 4 % of 99.60 = 3.98, 0.60, ¥6
    assert "MZ-001 活动价 109.60:实付 99.60,佣金 3.98,支付 0.60,运费 6.00,成本 90.00 → " \
           "毛利 -0.98(-0.9%)" in margin
    assert "scenarios <id>" in router.handle_text(
        db, Inbound("web", "tmall-promo", "alex"), "scenarios").text


def test_the_options_side_by_side(in_approval):
    db = in_approval
    with use(POLICY), db.session() as s:
        found, options = scenarios.scenarios(s, s.get(Task, 1))
    by_code = {o.code: o for o in options}
    assert list(by_code) == ["minimum", "deeper", "skip"]
    minimum, deeper = by_code["minimum"], by_code["deeper"]
    prices = {x.sku: x.price for x in minimum.lines}
    assert prices["MZ-001"] == Decimal("109.60")
    deeper_prices = {x.sku: x.price for x in deeper.lines}
    assert deeper_prices["MZ-001"] == Decimal("96.70")  # 109.60 − 12.90, over the 77.40 floor
    assert deeper.units()[1] > minimum.units()[1]  # a lower price sells more (elasticity −2)
    for option in (minimum, deeper):
        low, mid, high = option.units()
        assert low <= mid <= high <= sum(x.promo_stock for x in option.lines)
        assert option.budget() > 0
    assert by_code["skip"].units() == (0, 0, 0) and by_code["skip"].margin() == 0
    one = next(x for x in minimum.lines if x.sku == "MZ-001")
    assert one.left == one.stock - one.estimate.mid and one.in_transit == 120


def test_a_better_forecast_replaces_the_estimate(in_approval):
    db = in_approval

    def fixed(session, found, sku, price, reference, cap):
        return scenarios.Estimate(1, 2, 3, "forecast")

    scenarios.set_forecast(fixed)
    try:
        with use(POLICY), db.session() as s:
            _, options = scenarios.scenarios(s, s.get(Task, 1))
        assert options[0].units() == (3, 6, 9)
    finally:
        scenarios.set_forecast(None)
    assert scenarios.forecast() is scenarios.simple_estimate


def test_get_task_scenarios_over_the_api(in_approval, settings):
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    with use(POLICY), TestClient(create_app(settings)) as client:
        body = client.get("/api/tasks/1/scenarios", headers={"Accept-Language": "en"}).json()
        assert [o["code"] for o in body["options"]] == ["minimum", "deeper", "skip"]
        first = body["options"][0]
        assert first["name"] == "Platform minimum" and first["units"]["mid"] > 0
        line = next(x for x in first["lines"] if x["sku"] == "MZ-001")
        assert line["price"] == "109.60" and line["paid"] == "99.60"
        assert line["commission"] == "3.98" and line["in_transit"] == 120
        assert any(r["kind"] == "stacking" and r["severity"] == "error" and not r["accepted"]
                   for r in body["risks"])
        missing = client.get("/api/tasks/999/scenarios", headers={"Accept-Language": "zh-CN"})
        assert missing.status_code == 404 and "999" in missing.json()["detail"]["message"]
        with in_approval.session() as s:
            fresh = s.exec(select(Task.id).where(Task.state == "new")).first()
        none = client.get(f"/api/tasks/{fresh}/scenarios")
        assert none.status_code == 422 and none.json()["detail"]["code"] == "err.no_declaration"


def test_promopilot_scenarios_prints_the_options(in_approval, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli.main import app
    from bot.core.settings import get_settings

    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", in_approval.url)
    get_settings.cache_clear()
    try:
        with use(POLICY):
            text = CliRunner().invoke(app, ["scenarios", "1", "--lang", "en"])
            as_json = CliRunner().invoke(app, ["scenarios", "1", "--json"])
            missing = CliRunner().invoke(app, ["scenarios", "999", "--lang", "en"])
    finally:
        get_settings.cache_clear()
    assert text.exit_code == 0, text.output
    assert text.output.startswith("A Platform minimum: 15% off")
    assert "✗ MZ-001: worst stacked discounts" in text.output
    body = json.loads(as_json.stdout)
    assert [o["code"] for o in body["options"]] == ["minimum", "deeper", "skip"]
    assert missing.exit_code != 0 and "999" in missing.output
