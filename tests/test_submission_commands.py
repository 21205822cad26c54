"""Typed commands (en + zh) do what the submission and approval card buttons do."""

from __future__ import annotations

import pytest
from sqlmodel import select

import commands  # noqa: F401  (registers the commands)
from commands.router import Inbound, router
from storage.models import Task
from tests.fakes.submitter import FakeMarketplace
from tests.test_submission_faults import service, state, submitting


@pytest.fixture
def market():
    server = FakeMarketplace().start()
    yield server
    server.stop()


def say(db, user: str, text: str):
    return router.handle_text(db, Inbound(chat="web", channel_id="jd-promo", user_ref=user), text)


def test_retry_take_over_and_uploaded_by_text(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    market.faults.extend(["500"] * 3)
    svc = service(db, market, tmp_path, channels=("http_json",))
    svc.submit_pending()
    assert state(db, tid) == "approved"
    reply = say(db, "li.na", f"重试 {tid}")
    assert reply.ok and state(db, tid) == "submitting"
    market.faults.extend(["500"] * 3)
    svc.submit_pending()
    assert state(db, tid) == "approved"
    assert say(db, "chen.jing", f"takeover {tid}").ok is False  # design may not
    assert say(db, "wang.fang", f"接手 {tid}").ok
    missing = say(db, "wang.fang", f"已上传 {tid}")
    assert missing.ok is False and "例如" in missing.text
    assert say(db, "wang.fang", f"已上传 {tid} TM-REF-0099").ok
    assert state(db, tid) == "in_review"
    assert say(db, "wang.fang", f"平台通过 {tid}").ok
    assert state(db, tid) == "accepted"
    assert market.enrolment_count() == 0


def test_approval_card_by_text(seeded):
    db = seeded
    with db.session() as s:
        tid = s.exec(select(Task.id).order_by(Task.id)).first()
    for text in (f"认领 {tid}", f"填报 {tid}", f"送审 {tid}"):
        assert say(db, "li.na", text).ok
    reply = say(db, "zhou.qiang", f"审批单 {tid}")
    assert reply.ok and reply.card is not None and reply.card.kind == "approval"
    assert [b.action for b in reply.card.buttons] == ["approve", "reject", "request_changes"]
    assert say(db, "zhou.qiang", "approval 99999").ok is False
