"""Overrides on a real team's data: a waiver covers the (SKU, rule, value) it was given for;
any edit of that value, a request for changes or a rejection ends it. Refused attempts are
audited like granted ones, and a blocked action's hint only offers what a role can do."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlmodel import select

from bot.approvals.card import precheck_result
from bot.core.errors import Forbidden, Invalid
from bot.declarations import compliance, price_history
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from commands.router import Inbound, router
from storage.models import AuditEvent, QualificationDocument, Task
from storage.types import utcnow
from tests.fakes import data_pool as pool


@pytest.fixture
def guarded(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    return seeded


def licence(db) -> int:
    with db.session() as s:
        return s.exec(select(QualificationDocument.id).where(
            QualificationDocument.kind == "business_licence")).first()


def waived_at_105(db) -> int:
    """MZ-X declared at 105 against a 99 low in the last 30 days; a manager waives it."""
    pool.product(db, "MZ-X", list_price="129.00", stock=800, safety=100)
    with db.session() as s:
        price_history.record(s, "MZ-X", "tmall", Decimal("99.00"), utcnow() - timedelta(days=5))
    tid = pool.task(db, "tmall")
    pool.declare(db, tid, [("MZ-X", "105.00", 50)], documents=[licence(db)])
    with pytest.raises(Invalid):
        pool.act(db, tid, "request_approval", "li.na")
    pool.act(db, tid, "compliance_override", "zhou.qiang", comment="品牌方特批 105")
    return tid


def blocked(db, tid: int) -> str:
    with pytest.raises(compliance.ComplianceBlocked) as err:
        pool.act(db, tid, "request_approval", "li.na")
    return err.value.message("en")


def say(db, who: str, text: str):
    return router.handle_text(db, Inbound("web", "tmall-promo", who), text)


def marks(db, tid: int) -> list[str]:
    with db.session() as s:
        task = s.get(Task, tid)
        found = precheck_result(s, task, current(s, tid)[0], "en")
    return [mark for mark, _ in found.marks]


def test_an_edit_of_the_waived_value_is_checked_again(guarded):
    db = guarded
    tid = waived_at_105(db)
    assert marks(db, tid) == ["↷"]  # the approval card shows it as overridden
    reply = say(db, "li.na", f"改 {tid} MZ-X 价格=128.90")
    assert reply.ok and "128.90" in reply.text and "99.00" in reply.text  # still to fix
    assert "✗" in marks(db, tid)  # no longer shown as overridden
    assert "promo price = 128.90" in blocked(db, tid)
    say(db, "li.na", f"改 {tid} MZ-X 价格=105")  # back to the waived value: still an edit
    assert "promo price = 105.00" in blocked(db, tid)
    with db.session() as s:
        assert compliance.waived(s, tid, 1) == set()


def test_a_stock_edit_rechecks_the_stock_but_keeps_the_price_waiver(guarded):
    db = guarded
    tid = waived_at_105(db)
    say(db, "li.na", f"改 {tid} MZ-X 库存=1")
    message = blocked(db, tid)
    assert "promo stock = 1" in message and "promo price" not in message
    say(db, "li.na", f"改 {tid} MZ-X 库存=50")
    assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"


def test_request_changes_and_reject_clear_overrides(guarded):
    db = guarded
    tid = waived_at_105(db)
    assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"
    pool.act(db, tid, "request_changes", "zhou.qiang", comment="价格再看一下")
    assert "promo price = 105.00" in blocked(db, tid)  # the waiver went with the round
    pool.act(db, tid, "compliance_override", "sun.li", comment="法务确认 105 为指导价")
    assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"
    pool.act(db, tid, "reject", "zhou.qiang", comment="不批")
    assert "promo price = 105.00" in blocked(db, tid)


def refusals(db, tid: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).where(
            AuditEvent.task_id == tid, AuditEvent.action.like("%_refused"))
            .order_by(AuditEvent.id)))


def test_refused_overrides_are_audited_with_the_reason(guarded):
    db = guarded
    pool.product(db, "BAD-9", list_price="100.00")
    tid = pool.task(db, "tmall", {"min_discount": 0.2})
    pool.declare(db, tid, [("BAD-9", "95.00", 50)], documents=[licence(db)])
    with pytest.raises(Forbidden):  # ops may not override at all
        pool.act(db, tid, "request_approval", "li.na", payload={"override": True}, comment="急")
    with pytest.raises(Forbidden) as err:  # legal may waive, but not request approval
        pool.act(db, tid, "request_approval", "sun.li", payload={"override": True},
                 comment="法务确认")
    zh = err.value.message("zh-CN")
    assert "法务" in zh and "不能提交审批" in zh and "通过 API" in zh and "经理可执行" in zh
    ops, legal = refusals(db, tid)
    assert (ops.actor, ops.action, ops.from_state) == ("li.na", "compliance_override_refused",
                                                       "drafting")
    assert ops.detail["reason"] == "cv.override_refused" and ops.detail["for"] == "request_approval"
    assert "may not override" in ops.detail["message"]["en"]
    assert legal.actor == "sun.li" and legal.detail["reason"] == "cv.override_cannot_act"
    assert legal.detail["keys"] == ["price_30d_low:BAD-9:promo_price=95.00"]
    with db.session() as s:  # nothing else of the refused attempts was kept
        assert s.get(Task, tid).state == "drafting"
        assert not s.exec(select(AuditEvent).where(
            AuditEvent.task_id == tid, AuditEvent.action == "compliance_override")).all()
    pool.act(db, tid, "compliance_override", "sun.li", comment="法务确认:官方指导价")  # waiver
    assert pool.act(db, tid, "request_approval", "li.na").state == "in_approval"


def test_the_blocked_hint_offers_each_role_only_what_it_can_do(guarded):
    db = guarded
    pool.product(db, "BAD-8", list_price="100.00")
    tid = pool.task(db, "tmall", {"min_discount": 0.2})
    pool.declare(db, tid, [("BAD-8", "95.00", 50)], documents=[licence(db)])
    with pytest.raises(compliance.ComplianceBlocked) as err:
        pool.act(db, tid, "request_approval", "li.na")
    zh, en = err.value.message("zh-CN"), err.value.message("en")
    assert f"经理可执行「强制 {tid} 送审 <原因>」放行" in zh
    assert "法务可执行" not in zh and "法务不能提交审批" in zh
    assert f"Manager may run `override {tid} request_approval <reason>`" in en
    assert "Legal cannot" in en and "a manager or legal may run" not in en
    # and the hint holds: the manager's override goes through
    assert pool.act(db, tid, "request_approval", "zhou.qiang", payload={"override": True},
                    comment="经理特批").state == "in_approval"
