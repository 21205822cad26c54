"""The RPA webhook channel and the Excel hand-off through the real app: a signed job to a
robot, its signed callback (bad or stale signatures refused), fallback when the robot
fails, the hand-off file download and the "done, uploaded" button in the console."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from sqlmodel import select

from adapters.platforms.submitters.rpa import sign
from storage.models import Campaign, ChatMessage, Task
from storage.models_approval import SubmissionRun
from tests.conftest import LiveServer
from tests.fakes.submitter import FakeRobot

SECRET = "robot-secret-123"


@pytest.fixture
def robot():
    server = FakeRobot(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def app(settings, seeded, robot, tmp_path, monkeypatch):
    config = tmp_path / "submission.yaml"
    config.write_text(json.dumps({
        "platforms": {"*": {"channels": ["rpa", "excel"],
                            "excel": {"directory": str(tmp_path / "handoff")}}},
        "rpa": {"url": robot.url + "/jobs", "secret_env": "PROMOPILOT_RPA_SECRET"}}))
    monkeypatch.setenv("PROMOPILOT_SUBMISSION_CONFIG", str(config))
    monkeypatch.setenv("PROMOPILOT_RPA_SECRET", SECRET)
    from bot.web.app import create_app

    server = LiveServer(create_app(settings), settings).start()
    yield server
    server.stop()
    server.container.db.dispose()


def to_submitting(app) -> tuple[httpx.Client, int]:
    client = httpx.Client(base_url=app.url, timeout=30)
    with app.container.db.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == "jd").order_by(Task.id)).first()
    for action, who in [("claim", "li.na"), ("draft", "li.na"), ("request_approval", "li.na"),
                        ("approve", "zhou.qiang"), ("submit", "li.na")]:
        r = client.post(f"/api/tasks/{tid}/actions", json={"action": action, "actor": who})
        assert r.status_code == 200, r.text
    return client, tid


def callback(client, payload: dict, *, secret=SECRET, ts: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    ts = ts or str(int(time.time()))
    return client.post("/submissions/rpa/callback", content=body, headers={
        "Content-Type": "application/json", "X-PromoPilot-Timestamp": ts,
        "X-PromoPilot-Signature": sign(secret, ts, body)})


def state(client, tid) -> dict:
    return client.get(f"/api/tasks/{tid}").json()


def test_signed_job_and_callbacks_to_per_item_result(app, robot):
    client, tid = to_submitting(app)
    app.container.submissions.submit_pending()
    assert len(robot.jobs) == 1 and robot.refused == 0
    job = robot.jobs[0]
    assert job["idempotency_key"] == f"pp-task{tid}-decl1" and job["items"]
    assert job["callback_url"].endswith("/submissions/rpa/callback")
    assert state(client, tid)["state"] == "submitting"

    submitted = {"job_id": job["job_id"], "status": "submitted", "reference": "JD-88"}
    assert callback(client, submitted, secret="wrong").status_code == 401
    old = str(int(time.time()) - 3600)
    assert callback(client, submitted, ts=old).status_code == 401  # replay window
    assert callback(client, submitted).json() == {"result": "ok"}
    assert callback(client, submitted).status_code == 200  # a repeated callback changes nothing
    detail = state(client, tid)
    assert detail["state"] == "in_review"
    assert [h["action"] for h in detail["history"]].count("mark_submitted") == 1

    skus = [line["sku"] for line in detail["lines"]]
    items = [{"sku": s, "result": "accepted"} for s in skus[1:]] + [
        {"sku": skus[0], "result": "rejected", "reason_code": "PRICE",
         "reason_text": "价格高于历史最低价"}]
    assert callback(client, {"job_id": job["job_id"], "status": "partial",
                             "items": items}).status_code == 200
    final = state(client, tid)
    assert final["state"] == "accepted"
    assert final["lines"][0]["reason_text"] == "价格高于历史最低价"
    assert callback(client, {"job_id": "nope", "status": "submitted"}).status_code == 422


def test_robot_failure_falls_back_to_excel_and_done_in_the_console(app, robot):
    client, tid = to_submitting(app)
    app.container.submissions.submit_pending()
    job = robot.jobs[0]
    result = callback(client, {"job_id": job["job_id"], "status": "failed",
                               "error": "后台验证码无法识别"})
    assert result.json() == {"result": "fallback"}
    app.container.submissions.submit_pending()
    with app.container.db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
    assert run.handoff["channel"] == "excel" and "验证码" in run.last_error
    url = f"/submissions/handoff/{run.id}/file"
    assert client.get(url, params={"token": "guess"}).status_code == 404
    file = client.get(url, params={"token": run.handoff["token"]})
    assert file.status_code == 200 and file.content[:2] == b"PK"  # an xlsx (zip)

    app.drain()
    with app.container.db.session() as s:
        cards = s.exec(select(ChatMessage).where(
            ChatMessage.card_key == f"submission:{tid}:{run.id}")).all()
    channels = {c.channel_id for c in cards}
    assert {"jd-promo", "ops"} <= channels  # the team's channel, and ops after a failure
    card = next(c for c in cards if c.channel_id == "jd-promo").card
    assert "验证码" in json.dumps(card, ensure_ascii=False)
    done = next(b for b in card["buttons"] if b["action"] == "submission_done")
    reply = client.post("/console/api/click", json={
        "channel": "jd-promo", "user": "li.na", "value": done["value"],
        "comment": "京东报名单号 JD-20261125-01"}).json()
    assert reply["ok"], reply
    detail = state(client, tid)
    assert detail["state"] == "in_review"
    sent = [h for h in detail["history"] if h["action"] == "submission_attempt"]
    assert [(h["detail"]["channel"], h["detail"]["status"]) for h in sent] == [
        ("rpa", "failed"), ("excel", "sent")]
    assert [h["action"] for h in detail["history"]].count("submission_handoff") == 2
