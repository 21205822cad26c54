"""Fault injection against a local enrolment server: timeouts, 500/429, business refusals,
partial acceptance, and a request accepted although it appeared to fail. Final state and
audit log as expected; the idempotency key means a retry never enrols twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from adapters.platforms.submitters import ConfiguredChannels, PlatformChannels, SubmissionConfig
from adapters.platforms.submitters.excel import ExcelConfig
from adapters.platforms.submitters.http_json import HttpJsonConfig
from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, Invalid
from bot.declarations.autofill import current
from bot.submissions import channels as submission_channels
from bot.submissions.runs import idempotency_key
from bot.submissions.service import SubmissionService
from cards.builders import BUILDERS
from storage.models import AuditEvent, Campaign, SubmissionAttempt, Task, User
from storage.models_approval import SubmissionRun
from tests.fakes.submitter import FakeMarketplace


@pytest.fixture
def market():
    server = FakeMarketplace(slow_seconds=1.2).start()
    yield server
    server.stop()


def who(db, name: str) -> Actor:
    with db.session() as s:
        return Actor.of(s.exec(select(User).where(User.name == name)).one())


def act(db, tid: int, action: str, name: str, **kw):
    return perform(db, ActionRequest(task_id=tid, action=action, actor=who(db, name), **kw))


def submitting(db, platform: str = "jd") -> int:
    with db.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == platform).order_by(Task.id)).first()
    for action, name in [("claim", "li.na"), ("draft", "li.na"), ("request_approval", "li.na"),
                         ("approve", "zhou.qiang"), ("submit", "li.na")]:
        act(db, tid, action, name)
    return tid


def service(db, market, tmp_path: Path, channels=("http_json", "excel")) -> SubmissionService:
    http = HttpJsonConfig(base_url=market.url, timeout_seconds=0.5, attempts=3,
                          backoff_initial=0.01, backoff_max=0.05)
    config = SubmissionConfig(platforms={"*": PlatformChannels(
        channels=list(channels), http_json=http, excel=ExcelConfig(directory=str(tmp_path)))})
    configured = ConfiguredChannels(config, lambda platform: None, db=db)  # excel writes from the db
    submission_channels.configure(configured)  # the card actions (retry, take over) find them here
    return SubmissionService(db, configured)


def state(db, tid: int) -> str:
    with db.session() as s:
        return s.get(Task, tid).state


def audit(db, tid: int, action: str) -> list[dict]:
    with db.session() as s:
        return [e.detail for e in s.exec(select(AuditEvent).where(
            AuditEvent.task_id == tid, AuditEvent.action == action).order_by(AuditEvent.id))]


def test_500_then_429_are_retried_with_the_same_key_and_enrol_once(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    market.faults.extend(["500", "429"])
    svc = service(db, market, tmp_path)
    assert svc.submit_pending() == 1
    assert state(db, tid) == "in_review"
    key = idempotency_key(tid, 1)
    assert market.enrol_calls == [key, key, key] and market.enrolment_count() == 1
    sent = audit(db, tid, "submission_attempt")
    assert [(a["channel"], a["status"]) for a in sent] == [("http_json", "sent")]
    assert audit(db, tid, "mark_submitted")[0]["reference"] == "E0001"
    assert svc.submit_pending() == 0  # nothing left to send


@pytest.mark.parametrize("fault", ["commit-then-500", "commit-then-timeout"])
def test_request_that_appeared_to_fail_is_not_enrolled_twice(seeded, market, tmp_path, fault):
    db = seeded
    tid = submitting(db)
    market.faults.append(fault)  # the server enrols, the answer is lost
    svc = service(db, market, tmp_path)
    svc.submit_pending()
    assert len(market.enrol_calls) == 2 and market.enrolment_count() == 1
    assert state(db, tid) == "in_review"
    svc.poll_reviews()
    assert state(db, tid) == "accepted"


def test_partial_acceptance_shows_per_item_results_with_reasons(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    with db.session() as s:
        _, lines = current(s, tid)
        skus = [line.sku for line in lines]
    assert len(skus) >= 3
    market.ineligible = {skus[0]: "商品不在活动类目"}
    market.rejects = {skus[1]: ("PRICE_NOT_LOWEST", "活动价高于近30天最低价")}
    market.reviews_pending = 1
    svc = service(db, market, tmp_path)
    svc.submit_pending()
    enrolled = next(iter(market.enrolments.values()))["items"]
    assert skus[0] not in [i["sku_id"] for i in enrolled]  # ineligible SKUs are not sent
    assert svc.poll_reviews() == 0 and state(db, tid) == "in_review"  # still auditing
    assert svc.poll_reviews() == 1
    assert state(db, tid) == "accepted"
    with db.session() as s:
        _, lines = current(s, tid)
        result = {line.sku: (line.result, line.reason_code) for line in lines}
        card = BUILDERS["task"](s, {"task_id": tid}, "zh-CN")
    assert result[skus[0]] == ("rejected", "NOT_ELIGIBLE")
    assert result[skus[1]] == ("rejected", "PRICE_NOT_LOWEST")
    assert all(result[s][0] == "accepted" for s in skus[2:])
    rows = {row.cells[0]: row.cells[-1] for row in card.table}
    assert "活动价高于近30天最低价" in rows[skus[1]] and "不在活动类目" in rows[skus[0]]
    detail = audit(db, tid, "accept")[0]
    assert detail["status"] == "partial" and len(detail["rejected"]) == 2


def test_all_rejected_goes_back_to_drafting_with_reasons(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    with db.session() as s:
        _, lines = current(s, tid)
    market.rejects = {line.sku: ("STOCK_LOW", "库存不足") for line in lines}
    svc = service(db, market, tmp_path)
    svc.submit_pending()
    svc.poll_reviews()
    assert state(db, tid) == "drafting"  # sent back to drafting with the reasons
    assert {r["code"] for r in audit(db, tid, "platform_reject")[0]["rejected"]} == {"STOCK_LOW"}
    assert audit(db, tid, "redraft")


def test_repeated_failure_falls_back_to_excel_hand_off(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    market.faults.extend(["timeout", "500", "500"])  # three tries, all lost
    svc = service(db, market, tmp_path)
    svc.submit_pending()
    assert market.enrolment_count() == 0 and state(db, tid) == "submitting"
    with db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
        assert run.status == "waiting" and run.handoff["channel"] == "excel"
        assert run.tried[0]["channel"] == "http_json" and "500" in run.last_error
        card = BUILDERS["submission"](s, {"task_id": tid, "run_id": run.id}, "zh-CN")
        _, lines = current(s, tid)
    book = load_workbook(run.handoff["file"])
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][:2] == ("SKU编码", "商家编码")  # the export's layout (columns/jd.yaml)
    assert [r[1] for r in rows[1:]] == [line.sku for line in lines]
    labels = {b.action: b for b in card.buttons}
    assert labels["submission_done"].needs_input and "open" in labels  # download link
    assert "报名接口" in " ".join(f.value for f in card.fields)  # what was tried (http_json)
    assert "li.na" in card.mentions
    with pytest.raises(Invalid):
        act(db, tid, "submission_done", "li.na")  # the reference is required
    with pytest.raises(Forbidden):
        act(db, tid, "submission_done", "wang.fang", comment="JD-REF-1")
    assert act(db, tid, "submission_done", "li.na", comment="JD-REF-778").state == "in_review"
    assert svc.poll_reviews() == 0  # a hand-off has no status API
    with pytest.raises(Invalid):
        act(db, tid, "platform_rejected", "li.na")
    assert act(db, tid, "platform_accepted", "li.na").state == "accepted"
    attempts = [(a["channel"], a["status"]) for a in audit(db, tid, "submission_attempt")]
    assert attempts == [("http_json", "failed"), ("excel", "sent")]


def test_business_refusal_is_not_retried(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    market.faults.append("422")
    service(db, market, tmp_path).submit_pending()
    assert len(market.enrol_calls) == 1  # a refusal is not retried
    with db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
        assert run.handoff["channel"] == "excel" and "40022" in run.last_error


def test_every_channel_failing_escalates_then_retry_enrols_once(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    market.faults.extend(["commit-then-500", "500", "500"])  # enrolled, but we never heard
    svc = service(db, market, tmp_path, channels=("http_json",))
    svc.submit_pending()
    assert state(db, tid) == "approved"  # given up: back to approved, with context
    with db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
        card = BUILDERS["submission"](s, {"task_id": tid, "run_id": run.id}, "en")
        task = s.get(Task, tid)
        assert "http_json" in task.last_error
    assert run.status == "failed" and card.color == "red"
    assert [b.action for b in card.buttons] == ["submission_retry", "submission_takeover"]
    text = " ".join(f.value for f in card.fields)
    assert "500" in text and "Every channel failed" in card.subtitle
    with pytest.raises(Forbidden):
        act(db, tid, "submission_retry", "chen.jing")  # design may not
    assert act(db, tid, "submission_retry", "li.na").state == "submitting"
    svc.submit_pending()
    assert state(db, tid) == "in_review"
    assert market.enrolment_count() == 1  # the retry found the enrolment made before
    assert len(set(market.enrol_calls)) == 1
    assert [a["status"] for a in audit(db, tid, "submission_attempt")] == ["failed", "sent"]
    with pytest.raises(Conflict):
        act(db, tid, "submission_retry", "li.na")  # nothing to retry now


def test_take_over_gives_a_checklist_and_records_evidence(seeded, market, tmp_path):
    db = seeded
    tid = submitting(db)
    market.faults.extend(["500"] * 3)
    svc = service(db, market, tmp_path, channels=("http_json",))
    svc.submit_pending()
    assert state(db, tid) == "approved"
    assert act(db, tid, "submission_takeover", "wang.fang").state == "submitting"
    assert svc.submit_pending() == 0  # a person has it; the job leaves it alone
    with db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
        card = BUILDERS["submission"](s, {"task_id": tid, "run_id": run.id}, "zh-CN")
        _, lines = current(s, tid)
    assert run.handoff["channel"] == "assisted" and card.mentions == ["wang.fang"]
    assert {row.cells[0] for row in card.table} == {line.sku for line in lines}
    assert act(db, tid, "submission_done", "wang.fang",
               comment="截图 https://img.example/1.png").state == "in_review"
    assert audit(db, tid, "submission_takeover")
    with db.session() as s:
        done = s.exec(select(SubmissionAttempt).where(SubmissionAttempt.task_id == tid,
                                                      SubmissionAttempt.status == "sent")).one()
        assert done.channel == "assisted" and done.response["by"] == "wang.fang"


def test_channels_not_set_up_are_left_out_of_the_chain(seeded, market, tmp_path, monkeypatch):
    db = seeded
    monkeypatch.delenv("PROMOPILOT_RPA_SECRET", raising=False)
    tid = submitting(db)
    svc = service(db, market, tmp_path, channels=("api", "rpa", "http_json", "excel"))
    svc.submit_pending()  # no api connector, no robot URL: straight to the enrolment API
    with db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
    assert run.channels == ["http_json", "excel"] and run.tried == []
    assert state(db, tid) == "in_review"
