"""A request never waits for someone who may not decide it: when the requester (or claimant)
is the only holder of a step's role, the step goes to another holder, else the requester's
manager, else an admin — the card says who, a refusal names who can, and every refused
attempt is audited in its own transaction."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlmodel import select

from bot.approvals import service as approvals
from bot.core.errors import Conflict, Forbidden
from bot.core.users import add_user
from bot.core.views import BUILDERS
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from bot.declarations.compliance import ComplianceBlocked
from storage.models import AuditEvent, Campaign, OutboxMessage, Task, User
from storage.models_approval import ApprovalEscalation
from storage.types import utcnow
from tests.fakes import data_pool as pool


@pytest.fixture
def guarded(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    return seeded


def tmall_task(db) -> int:
    with db.session() as s:
        return s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == "tmall").order_by(Task.id)).first()


def card_text(db, tid: int, lang: str = "zh-CN") -> str:
    with db.session() as s:
        rnd = approvals.latest_round(s, tid)
        card = BUILDERS["approval"](s, {"task_id": tid, "round_id": rnd.id,
                                        "declaration_version": rnd.declaration_version}, lang)
    return " | ".join(f"{f.label}: {f.value}" for f in card.fields)


def user_id(db, name: str) -> int:
    with db.session() as s:
        return s.exec(select(User.id).where(User.name == name)).one()


def refusals(db, tid: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).where(
            AuditEvent.task_id == tid, AuditEvent.action.like("%_refused"))
            .order_by(AuditEvent.id)))


def test_the_only_manager_sending_his_own_task_is_approved_by_an_admin(guarded):
    db = guarded
    tid = tmall_task(db)
    for action in ("claim", "draft", "request_approval"):
        pool.act(db, tid, action, "zhou.qiang")  # the demo's only manager, on his own task
    text = card_text(db, tid)
    assert "待 管理员 Admin 审批" in text and "待 周强" not in text
    assert "改由管理员审批" in text  # and why
    assert "an admin decides" in card_text(db, tid, "en")
    with pytest.raises(Forbidden) as err:
        pool.act(db, tid, "approve", "zhou.qiang")
    assert "不能审批自己" in err.value.message("zh-CN")
    assert "管理员 Admin" in err.value.message("zh-CN")  # the refusal names who can
    with db.session() as s:  # the admin was asked, privately
        asks = s.exec(select(OutboxMessage).where(OutboxMessage.key.like("approval-ask:%"))).all()
    assert {a.key.split(":")[3] for a in asks} == {str(user_id(db, "admin"))}
    assert pool.act(db, tid, "approve", "admin").state == "approved"
    [refusal] = refusals(db, tid)
    assert refusal.actor == "zhou.qiang" and refusal.action == "approve_refused"
    assert refusal.detail["reason"] == "appr.self_refused" and refusal.from_state == "in_approval"
    assert "管理员 Admin" in refusal.detail["message"]["zh-CN"]


def test_following_the_hint_to_override_does_not_strand_the_task(guarded):
    db = guarded
    pool.product(db, "HINT-1", list_price="100.00")
    tid = pool.task(db, "tmall", {"min_discount": 0.2})  # claimed by li.na, drafting
    pool.declare(db, tid, [("HINT-1", "95.00", 50)])
    with pytest.raises(ComplianceBlocked) as err:
        pool.act(db, tid, "request_approval", "li.na")
    assert f"强制 {tid} 送审" in err.value.message("zh-CN")  # the hint names the manager
    pool.act(db, tid, "request_approval", "zhou.qiang", payload={"override": True},
             comment="经理特批")
    assert "待 管理员 Admin 审批" in card_text(db, tid)  # 周强 asked; li.na claimed
    with pytest.raises(Forbidden):
        pool.act(db, tid, "approve", "zhou.qiang")
    assert pool.act(db, tid, "approve", "admin").state == "approved"


def test_another_holder_of_the_role_decides_first(guarded):
    db = guarded
    with db.session() as s:
        add_user(s, "qian.wei", ["manager"], display_name="钱伟(经理)", chat="web",
                 external_id="qian.wei")
    tid = tmall_task(db)
    for action in ("claim", "draft", "request_approval"):
        pool.act(db, tid, action, "zhou.qiang")
    text = card_text(db, tid)
    assert "待 钱伟(经理) 审批" in text and "改由" not in text
    with pytest.raises(Forbidden) as err:
        pool.act(db, tid, "approve", "admin")  # not needed: another manager can decide
    assert "钱伟(经理)" in err.value.message("zh-CN")
    assert pool.act(db, tid, "approve", "qian.wei").state == "approved"


def test_wrong_role_and_out_of_turn_are_refused_audited_and_named(guarded):
    db = guarded
    tid = tmall_task(db)
    pool.act(db, tid, "claim", "li.na")
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:  # deeper than 30 %: manager, then finance
        for line in current(s, tid)[1]:
            line.promo_price = (line.list_price * Decimal("0.6")).quantize(Decimal("0.01"))
            s.add(line)
    pool.act(db, tid, "request_approval", "li.na")
    assert "待 周强(经理) 审批" in card_text(db, tid)
    with pytest.raises(Forbidden) as wrong:
        pool.act(db, tid, "approve", "wang.fang")  # market
    assert "周强(经理)" in wrong.value.message("zh-CN") and "市场" in wrong.value.message("zh-CN")
    with pytest.raises(Conflict):
        pool.act(db, tid, "approve", "zhao.lei")  # finance, step 2: not yet
    with pytest.raises(Forbidden):
        pool.act(db, tid, "approve", "li.na")  # her own request
    reasons = [(r.actor, r.action, r.detail["reason"]) for r in refusals(db, tid)]
    assert reasons == [("wang.fang", "approve_refused", "appr.role_refused"),
                       ("zhao.lei", "approve_refused", "err.not_your_turn"),
                       ("li.na", "approve_refused", "appr.self_refused")]
    with db.session() as s:
        assert s.get(Task, tid).state == "in_approval"  # nothing else changed
    assert pool.act(db, tid, "approve", "zhou.qiang").state == "in_approval"
    assert pool.act(db, tid, "approve", "zhao.lei").state == "approved"


def test_an_overdue_routed_step_never_escalates_to_the_requester(guarded):
    db = guarded
    tid = tmall_task(db)
    for action in ("claim", "draft", "request_approval"):
        pool.act(db, tid, action, "zhou.qiang")
    # the admin decides (routed); the admin reports to 周强, who asked: the admins again
    assert approvals.escalate_overdue(db, now=utcnow() + timedelta(hours=5)) == 1
    with db.session() as s:
        escalation = s.exec(select(ApprovalEscalation)).one()
    assert escalation.escalated_to == [user_id(db, "admin")]
    assert user_id(db, "zhou.qiang") not in escalation.escalated_to
