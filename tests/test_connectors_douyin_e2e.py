"""End to end against the real app: a 抖店 colonel activity addressed to the shop (专属招商)
that the fake lists becomes a notice card through the watcher (a 定向邀约), is claimed and
drafted; the platform's eligibility answer (the enrolment window is open) is asked inside
request_approval; approved, the shop applies through the ``api`` channel (one product is
refused at once, with the platform's reason); the colonel's audit then gives per-SKU
results on the result card, and the refusal reaches rejection learning."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.shared import beijing
from bot.declarations import platform_gate
from storage.models import ChatMessage
from storage.models_connectors import PlatformCandidate
from storage.models_data import PlatformItem, RejectionRecord
from storage.types import utcnow
from tests.fakes.douyin import FakeDouyin
from tests.test_connectors_jd_e2e import act, approve_all, tasks


@pytest.fixture
def douyin(db, monkeypatch, tmp_path):
    fake = FakeDouyin().start()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    config = tmp_path / "connectors.yaml"
    config.write_text("connectors:\n  - {name: douyin-flagship, kind: douyin, shop: flagship,"
                      f" gateway: '{fake.url}', timeout_seconds: 2}}\n", "utf-8")
    monkeypatch.setenv("PROMOPILOT_CONNECTORS_FILE", str(config))
    CredentialStore(db).set("douyin", "flagship", fake.credentials())
    activity = {"activity_id": 3666524, "activity_name": "冬季焕新·美妆团长专属招商",
                "institution_name": "好物团", "activity_kind": 0,
                "apply_start_time": beijing(utcnow() - timedelta(days=1)),
                "apply_end_time": beijing(utcnow() + timedelta(days=5)),
                "commission_rate": 20, "service_rate": 5, "activity_desc": "佣金不低于20%"}
    fake.activities = [activity]
    fake.details["3666524"] = dict(activity)
    yield fake
    fake.stop()
    platform_gate.clear()


def test_colonel_activity_to_the_colonels_per_sku_audit(douyin, live):
    client = httpx.Client(base_url=live.url, timeout=30)
    assert live.container.submitters["douyin"].name == "douyin-flagship"
    assert live.container.extras["watcher"].run_once().new, "the activity became a notice"
    task = next(t for t in tasks(client, "douyin") if "团长专属招商" in t["title"])
    tid = task["id"]
    assert act(client, tid, "claim", "li.na").status_code == 200
    assert act(client, tid, "draft", "li.na").status_code == 200
    lines = client.get(f"/api/tasks/{tid}").json()["lines"]
    assert len(lines) >= 2, lines
    with live.container.db.session() as s:  # the shop's 抖店 product ids
        for n, line in enumerate(lines):
            s.add(PlatformItem(sku=line["sku"], platform="douyin", item_id=str(3500 + n)))
    refused = "商品近30天差评率超标,不可报名该活动"
    douyin.product_rejects = {"3501": refused}

    asked = act(client, tid, "request_approval", "li.na")
    if asked.status_code != 200:  # the demo's own pre-check findings: a manager waives them
        assert act(client, tid, "compliance_override", "zhou.qiang",
                   comment="经理确认按团长要求报名").status_code == 200
        asked = act(client, tid, "request_approval", "li.na")
    assert asked.status_code == 200, asked.text
    with live.container.db.session() as s:  # the platform's answer, kept for the pre-check
        kept = {r.sku: r.eligible for r in s.exec(select(PlatformCandidate))}
    assert kept and all(kept.values())
    approve_all(client, tid)
    assert act(client, tid, "submit", "li.na").json()["state"] == "submitting"

    live.container.submissions.submit_pending()
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    assert sorted(douyin.applications["3666524"]) == sorted(
        str(3500 + n) for n in range(len(lines)) if n != 1)
    live.container.submissions.poll_reviews()  # 待审核: the colonel has not decided
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    for product in douyin.applications["3666524"]:
        douyin.audit("3666524", product, 1)  # the colonel accepts the others
    live.container.submissions.poll_reviews()
    final = client.get(f"/api/tasks/{tid}").json()
    assert final["state"] == "accepted", final["history"][-3:]
    results = {line["sku"]: (line["result"], line["reason_text"]) for line in final["lines"]}
    assert results[lines[0]["sku"]] == ("accepted", None)
    assert results[lines[1]["sku"]] == ("rejected", refused)
    assert douyin.bad_signatures == 0

    live.drain()
    with live.container.db.session() as s:
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert card.card["kind"] == "result" and refused in str(card.card["table"])
        learned = s.exec(select(RejectionRecord).where(RejectionRecord.task_id == tid)).all()
        assert [(r.sku, r.reason_text) for r in learned] == [(lines[1]["sku"], refused)]
