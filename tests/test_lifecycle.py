"""Every transition of the lifecycle: roles, states, audit, idempotency."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid, NotFound
from storage.models import AuditEvent, Task, User


def actor(db, name: str) -> Actor:
    with db.session() as s:
        return Actor.of(s.exec(select(User).where(User.name == name)).one())


def first_task(db, platform: str = "tmall") -> int:
    from storage.models import Campaign

    with db.session() as s:
        return s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == platform).order_by(Task.id)).first()


def act(db, task_id, action, who, **kw):
    return perform(db, ActionRequest(task_id=task_id, action=action, actor=actor(db, who), **kw))


def history(db, task_id):
    with db.session() as s:
        return [(e.action, e.from_state, e.to_state, e.actor) for e in s.exec(
            select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(AuditEvent.id))]


def test_happy_path_to_approved_with_audit(seeded):
    db = seeded
    tid = first_task(db)
    assert act(db, tid, "claim", "li.na").state == "claimed"
    assert act(db, tid, "draft", "li.na").state == "drafting"
    assert act(db, tid, "request_approval", "li.na").state == "in_approval"
    assert act(db, tid, "approve", "zhou.qiang").state == "approved"
    assert act(db, tid, "submit", "li.na").state == "submitting"
    steps = [(a, f, t) for a, f, t, _ in history(db, tid)]
    assert ("claim", "new", "claimed") in steps
    assert ("approve", "in_approval", "approved") in steps
    assert history(db, tid)[-1][3] == "li.na"


def test_wrong_role_is_refused_with_reason(seeded):
    db = seeded
    tid = first_task(db)
    with pytest.raises(Forbidden) as err:
        act(db, tid, "claim", "zhao.lei")  # finance may not claim
    assert "Finance" in err.value.message("en") and "财务" in err.value.message("zh-CN")
    act(db, tid, "claim", "li.na")
    act(db, tid, "draft", "li.na")
    act(db, tid, "request_approval", "li.na")
    with pytest.raises(Forbidden):
        act(db, tid, "approve", "wang.fang")  # market may not approve


def test_already_claimed_names_the_claimant(seeded):
    db = seeded
    tid = first_task(db)
    act(db, tid, "claim", "li.na")
    with pytest.raises(Conflict) as err:
        act(db, tid, "claim", "wang.fang")
    assert "李娜" in err.value.message("zh-CN")
    assert "already claimed" in err.value.message("en")


def test_only_claimant_or_manager_may_draft(seeded):
    db = seeded
    tid = first_task(db)
    act(db, tid, "claim", "li.na")
    with pytest.raises(Forbidden):
        act(db, tid, "draft", "wang.fang")
    assert act(db, tid, "draft", "zhou.qiang").state == "drafting"


def test_same_event_twice_changes_state_once(seeded):
    db = seeded
    tid = first_task(db)
    first = act(db, tid, "claim", "li.na", event_id="slack:abc")
    again = act(db, tid, "claim", "li.na", event_id="slack:abc")
    assert first.state == "claimed" and not first.duplicate
    assert again.duplicate and again.state == "claimed"
    assert [h[0] for h in history(db, tid)].count("claim") == 1


def test_skip_needs_reason_and_records_it(seeded):
    db = seeded
    tid = first_task(db)
    with pytest.raises(Invalid):
        act(db, tid, "skip", "wang.fang")
    assert act(db, tid, "skip", "wang.fang", comment="毛利太低").state == "skipped"
    with db.session() as s:
        assert s.get(Task, tid).skip_reason == "毛利太低"


def test_stale_card_version_is_refused(seeded):
    db = seeded
    tid = first_task(db)
    act(db, tid, "claim", "li.na")
    act(db, tid, "draft", "li.na")  # version moves on
    with pytest.raises(Conflict) as err:
        act(db, tid, "request_approval", "li.na", version=1)
    assert "out of date" in err.value.message("en")


def test_system_only_transitions_refuse_people(seeded):
    db = seeded
    tid = first_task(db)
    with pytest.raises(Forbidden):
        act(db, tid, "expire", "zhou.qiang")
    out = perform(db, ActionRequest(task_id=tid, action="expire", actor=Actor.system()))
    assert out.state == "expired"


def test_unknown_task(seeded):
    with pytest.raises(NotFound):
        act(seeded, 9999, "claim", "li.na")


def test_self_approval_refused(seeded):
    db = seeded
    tid = first_task(db)
    with db.session() as s:  # a manager who also does ops work
        s.exec(select(User).where(User.name == "alex")).one().roles = ["ops", "manager"]
    act(db, tid, "claim", "alex")
    act(db, tid, "draft", "alex")
    act(db, tid, "request_approval", "alex")
    with pytest.raises(Forbidden) as err:
        act(db, tid, "approve", "alex")
    assert "own request" in err.value.message("en")


def test_reject_goes_back_to_drafting_with_reason(seeded):
    db = seeded
    tid = first_task(db)
    act(db, tid, "claim", "li.na")
    act(db, tid, "draft", "li.na")
    act(db, tid, "request_approval", "li.na")
    with pytest.raises(Invalid):
        act(db, tid, "reject", "zhou.qiang")
    assert act(db, tid, "reject", "zhou.qiang", comment="折扣太深").state == "drafting"
    assert history(db, tid)[-1][:3] == ("reject", "in_approval", "drafting")
