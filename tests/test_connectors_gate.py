"""The platform's eligibility answer as the first compliance gate: asked just before
request_approval through the action's own session, stored per campaign and SKU, reported by
the pre-check (ineligible, above the platform's maximum, below its minimum stock, not yet
checked) — and a platform that does not answer never blocks by itself."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlmodel import Session, select

from bot.core.errors import Invalid
from bot.core.ports import Candidate
from bot.declarations import compliance, platform_gate
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from storage.models import Campaign, Task
from storage.models_connectors import PlatformCandidate
from tests.fakes import data_pool as pool


@pytest.fixture
def pdd_task(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    with seeded.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == "pdd").order_by(Task.id)).first()
    pool.act(seeded, tid, "claim", "li.na")
    pool.act(seeded, tid, "draft", "li.na")
    with seeded.session() as s:
        _, lines = current(s, tid)
    assert len(lines) >= 2
    yield seeded, tid, lines
    platform_gate.clear()


def findings(db, tid: int, lang: str = "zh-CN") -> list[tuple[str, str, str]]:
    with db.session() as s:
        task = s.get(Task, tid)
        declaration, _ = current(s, tid)
        return [(v.sku, v.severity, v.describe(lang)) for v in compliance.check(s, task, declaration)
                if v.kind == "platform"]


def test_the_platforms_refusals_block_request_approval(pdd_task):
    db, tid, lines = pdd_task
    asked = []

    def checker(session, campaign_id, skus):
        asked.append((isinstance(session, Session), campaign_id, list(skus)))
        return [Candidate(lines[0].sku, False, "CAT", "类目不在本次活动范围"),
                Candidate(lines[1].sku, True, max_price=lines[1].promo_price - Decimal("1"),
                          min_stock=lines[1].promo_stock + 5)]

    platform_gate.configure("pdd", "pdd-test", checker)
    with pytest.raises(Invalid) as blocked:
        pool.act(db, tid, "request_approval", "li.na")
    assert asked and asked[0][0] and asked[0][2] == [line.sku for line in lines]
    text = blocked.value.message("zh-CN")
    assert "平台不允许该 SKU 报名:类目不在本次活动范围" in text
    assert "平台允许的最高活动价为" in text and "平台要求活动库存至少" in text

    # the waiver asks too, and keeps the answer (the blocked action kept nothing)
    pool.act(db, tid, "compliance_override", "zhou.qiang", comment="平台复核后放行")
    with db.session() as s:
        kept = {r.sku: r for r in s.exec(select(PlatformCandidate))}
    assert not kept[lines[0].sku].eligible and kept[lines[1].sku].min_stock
    assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"
    assert len(asked) == 2  # the fresh answer is not asked for again
    shown = findings(db, tid, "en")
    assert any("the platform refuses this SKU" in text for _, _, text in shown)


def test_a_silent_platform_never_blocks_by_itself(pdd_task):
    db, tid, lines = pdd_task

    def down(session, campaign_id, skus):
        raise TimeoutError("platform did not answer")

    platform_gate.configure("pdd", "pdd-test", down)
    assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"
    shown = findings(db, tid)
    assert {sku for sku, _, _ in shown} == {line.sku for line in lines}
    assert all(sev == "warning" and "平台尚未确认" in text for _, sev, text in shown)


def test_without_a_connector_nothing_changes(pdd_task):
    db, tid, _ = pdd_task
    platform_gate.clear()
    assert findings(db, tid) == []
