"""Parallel approvers deciding at the same moment: both steps count, the task is approved
once (SQLite and PostgreSQL). And steps from before approval rounds get the same checks."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.errors import Forbidden
from bot.declarations.autofill import current
from storage.models import (
    ApprovalStep,
    AuditEvent,
    Campaign,
    Product,
    QualificationDocument,
    Task,
    User,
)
from storage.models_approval import ApprovalRound
from storage.types import utcnow


def people(db) -> dict[str, Actor]:
    with db.session() as s:
        return {u.name: Actor.of(u) for u in s.exec(select(User))}


def in_parallel_approval(db, who) -> int:
    with db.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == "tmall").order_by(Task.id)).first()
    perform(db, ActionRequest(tid, "claim", who["li.na"]))
    perform(db, ActionRequest(tid, "draft", who["li.na"]))
    with db.session() as s:
        _, lines = current(s, tid)
        for line in lines:
            line.promo_price = (line.list_price * Decimal("0.6")).quantize(Decimal("0.01"))
            s.add(line)
        product = s.exec(select(Product).where(Product.sku == lines[0].sku)).one()
        product.brand = "新锐品牌"  # new brand → legal, deep discount → finance, both seq 2
        s.add(product)
        licence = QualificationDocument(kind="brand_authorisation", title="品牌授权书(新锐品牌)",
                                        brand="新锐品牌", valid_until=utcnow() + timedelta(days=90))
        s.add(licence)
        s.flush()
        declaration = current(s, tid)[0]
        declaration.documents = [*declaration.documents, licence.id]  # the pre-check passes
        s.add(declaration)
    perform(db, ActionRequest(tid, "request_approval", who["li.na"]))
    perform(db, ActionRequest(tid, "approve", who["zhou.qiang"]))
    return tid


def test_parallel_approvers_at_the_same_moment(seeded):
    db = seeded
    who = people(db)
    tid = in_parallel_approval(db, who)
    with db.session() as s:
        roles = sorted(st.role for st in s.exec(select(ApprovalStep).where(
            ApprovalStep.task_id == tid, ApprovalStep.state == "pending")))
    assert roles == ["finance", "legal"]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def approve(name: str) -> None:
        barrier.wait()
        try:
            results.append(perform(db, ActionRequest(tid, "approve", who[name])).state)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(n,)) for n in ("zhao.lei", "sun.li")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors and sorted(results) == ["approved", "in_approval"]
    with db.session() as s:
        assert s.get(Task, tid).state == "approved"
        approves = s.exec(select(AuditEvent).where(AuditEvent.task_id == tid,
                                                   AuditEvent.action == "approve")).all()
        assert len(approves) == 1


def test_steps_without_a_round_get_the_same_checks(seeded):
    db = seeded
    who = people(db)
    with db.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == "jd").order_by(Task.id)).first()
    for action in ("claim", "draft", "request_approval"):
        perform(db, ActionRequest(tid, action, who["li.na"]))
    with db.session() as s:  # as if requested before the approvals feature was installed
        for rnd in s.exec(select(ApprovalRound).where(ApprovalRound.task_id == tid)):
            s.delete(rnd)
    with pytest.raises(Forbidden):
        perform(db, ActionRequest(tid, "approve", who["zhao.lei"]))  # finance: not the step
    assert perform(db, ActionRequest(tid, "approve", who["zhou.qiang"])).state == "approved"
