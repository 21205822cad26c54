"""Every transition in the lifecycle table: allowed from its sources by its roles, refused
from other states and for other roles, audited with before → after."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden
from bot.core.lifecycle import SYSTEM, TRANSITIONS, State
from storage.models import AuditEvent, Task, User

ROLE_OF = {"market": "wang.fang", "ops": "li.na", "manager": "zhou.qiang", "finance": "zhao.lei",
           "legal": "sun.li", "design": "chen.jing"}


def setup_task(db, state: str, claimant: str = "li.na") -> tuple[int, int]:
    with db.session() as s:
        user = s.exec(select(User).where(User.name == claimant)).one()
        task_id = s.exec(select(Task.id).order_by(Task.id)).first()
        s.execute(update(Task).where(Task.id == task_id).values(state=state,
                                                                claimed_by=user.id))
    return task_id, user.id


def who_may(rule) -> Actor:
    if rule.roles == SYSTEM:
        return Actor.system()
    role = sorted(rule.roles - SYSTEM)[0]
    return Actor("x", "x", frozenset({role}), None) if role not in ROLE_OF else None


def person(db, role: str) -> Actor:
    with db.session() as s:
        return Actor.of(s.exec(select(User).where(User.name == ROLE_OF[role])).one())


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_transition(seeded, action):
    db = seeded
    rule = TRANSITIONS[action]
    people_roles = sorted(rule.roles - SYSTEM)
    actor = person(db, "ops" if "ops" in people_roles else people_roles[0]) \
        if people_roles else Actor.system()
    source = sorted(rule.sources)[0]
    task_id, _ = setup_task(db, source.value, claimant="li.na")
    comment = "原因" if rule.needs_comment else None
    with db.session() as s:
        outcome = lifecycle.apply(s, task_id, action, actor, comment=comment)
    assert (outcome.before, outcome.after) == (source.value, rule.target.value)
    if action == "platform_reject":  # listeners carry on: a rejection goes back to drafting
        with db.session() as s:
            assert s.get(Task, task_id).state == "drafting"
    with db.session() as s:
        audit = s.exec(select(AuditEvent).where(AuditEvent.task_id == task_id,
                                                AuditEvent.action == action)
                       .order_by(AuditEvent.id.desc())).first()
        assert (audit.action, audit.from_state, audit.to_state, audit.actor) == (
            action, source.value, rule.target.value, actor.name)

    # from a state it does not start from → conflict naming the state
    wrong = next(s for s in State if s not in rule.sources)
    setup_task(db, wrong.value)
    with pytest.raises(Conflict), db.session() as s:
        lifecycle.apply(s, task_id, action, actor, comment=comment)

    # by a role it does not allow → forbidden
    outsider_roles = [r for r in ROLE_OF if r not in rule.roles]
    setup_task(db, source.value)
    outsider = person(db, outsider_roles[0]) if outsider_roles else None
    if outsider is not None:
        with pytest.raises(Forbidden), db.session() as s:
            lifecycle.apply(s, task_id, action, outsider, comment=comment)


def test_claimant_only_transitions_refuse_other_staff(seeded):
    db = seeded
    claimant_only = [a for a, r in TRANSITIONS.items() if r.claimant_only]
    assert {"draft", "request_approval", "submit", "release"} <= set(claimant_only)
    for action in claimant_only:
        rule = TRANSITIONS[action]
        task_id, _ = setup_task(db, sorted(rule.sources)[0].value, claimant="li.na")
        with pytest.raises(Forbidden) as err, db.session() as s:
            lifecycle.apply(s, task_id, action, person(db, "market"))
        assert "李娜" in err.value.message("zh-CN")
