"""Policy table: each rule combination of policies/approval.yaml routes to the expected steps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.approvals import policy
from bot.approvals.policy import Facts, PolicyError


def steps(**kw) -> list[tuple]:
    facts = Facts(platform=kw.pop("platform", "tmall"), **kw)
    return [(s["seq"], s["role"], s["mode"]) for s in policy.route(facts, policy.load())]


D = Decimal
CASES = [
    ("plain", {}, [(1, "manager", "all_of")]),
    ("deep discount", {"max_discount": D("0.35")}, [(1, "manager", "all_of"),
                                                    (2, "finance", "all_of")]),
    ("30% is not deeper than 30%", {"max_discount": D("0.30")}, [(1, "manager", "all_of")]),
    ("big budget", {"budget": D("60000")}, [(1, "manager", "all_of"), (2, "finance", "all_of")]),
    ("huge budget adds the admin after finance", {"budget": D("250000")},
     [(1, "manager", "all_of"), (2, "finance", "all_of"), (3, "admin", "all_of")]),
    ("thin margin", {"min_margin": D("0.10")}, [(1, "manager", "all_of"),
                                                (2, "finance", "all_of")]),
    ("margin at the floor is fine", {"min_margin": D("0.15")}, [(1, "manager", "all_of")]),
    ("new brand goes to legal", {"new_brands": ["新牌"]},
     [(1, "manager", "all_of"), (2, "legal", "all_of")]),
    ("new category goes to legal", {"new_categories": ["宠物"]},
     [(1, "manager", "all_of"), (2, "legal", "all_of")]),
    ("deep discount + new brand: finance and legal in parallel",
     {"max_discount": D("0.4"), "new_brands": ["新牌"]},
     [(1, "manager", "all_of"), (2, "finance", "all_of"), (2, "legal", "all_of")]),
    ("discount + thin margin + big budget merge into one finance step",
     {"max_discount": D("0.4"), "min_margin": D("0.05"), "budget": D("90000")},
     [(1, "manager", "all_of"), (2, "finance", "all_of")]),
    ("pdd over 20%: finance or legal (any of)", {"platform": "pdd", "max_discount": D("0.25")},
     [(1, "manager", "all_of"), (2, "finance", "any_of"), (2, "legal", "any_of")]),
    ("same discount on jd: manager only", {"platform": "jd", "max_discount": D("0.25")},
     [(1, "manager", "all_of")]),
]


@pytest.mark.parametrize("name,facts,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_combinations_route_to_expected_steps(name, facts, expected):
    assert steps(**facts) == expected


def test_merged_step_names_every_reason():
    facts = Facts(platform="tmall", max_discount=D("0.4"), min_margin=D("0.05"))
    finance = [s for s in policy.route(facts, policy.load()) if s["role"] == "finance"][0]
    assert "30%" in finance["reason"] and "margin" in finance["reason"]
    assert finance["rules"] == ["deep_discount", "thin_margin"]


def test_sla_per_step():
    facts = Facts(platform="tmall", budget=D("300000"))
    sla = {s["role"]: s["sla"].total_seconds() / 3600 for s in policy.route(facts, policy.load())}
    assert sla == {"manager": 4, "finance": 4, "admin": 8}


def test_bad_policy_file_is_refused_with_where(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("rules:\n  - name: x\n    when: {discont_over: 0.3}\n    steps: "
                   "[{seq: 1, roles: [manager]}]\n")
    with pytest.raises(PolicyError, match="discont_over"):
        policy.load(bad)
    bad.write_text("rules: [{name: y, steps: [{seq: 0, roles: []}]}]")
    with pytest.raises(PolicyError, match="p.yaml"):
        policy.load(bad)


def test_facts_from_a_real_declaration(seeded):
    """Discount, budget (subsidy × promo stock) and margin come from lines and product cost."""
    from sqlmodel import select

    from bot.core.actions import ActionRequest, perform
    from bot.core.actors import Actor
    from bot.declarations.autofill import current
    from storage.models import Campaign, Product, Task, User

    db = seeded
    with db.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == "tmall").order_by(Task.id)).first()
        li = Actor.of(s.exec(select(User).where(User.name == "li.na")).one())
    perform(db, ActionRequest(tid, "claim", li))
    perform(db, ActionRequest(tid, "draft", li))
    with db.session() as s:
        _, lines = current(s, tid)
        for line in lines[1:]:
            s.delete(line)
        line = lines[0]
        line.promo_price, line.promo_stock = line.list_price * D("0.5"), 100
        s.add(line)
        s.flush()
        product = s.exec(select(Product).where(Product.sku == line.sku)).one()
        facts = policy.facts_for(s, s.get(Task, tid), [line])
        assert facts.max_discount == D("0.5")
        assert facts.budget == (line.list_price - line.promo_price) * 100
        assert facts.min_margin == ((line.promo_price - product.cost) / line.promo_price
                                    ).quantize(D("0.0001"))
        assert facts.new_brands == [] and facts.new_categories == []
        product.brand = "陌生品牌"
        s.add(product)
        s.flush()
        assert policy.facts_for(s, s.get(Task, tid), [line]).new_brands == ["陌生品牌"]
