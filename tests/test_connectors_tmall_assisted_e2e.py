"""End to end against the real app: a Tmall big-sale venue notice (the demo's 双12 美妆个护
会场) has no public enrolment API. Approved and submitted, the Taobao connector (the ``api``
channel) hands it on without calling TOP, and the Tmall big-sale connector — the platform's
``assisted`` channel — gives the hand-off card: the deep link to the venue's enrolment page
and, per SKU, the item id, promo price, stock and per-person limit to enter. The person
presses "submitted" with the enrolment number as evidence, later reports Tmall's verdict,
and the reported rejection reaches the result card and rejection learning."""

from __future__ import annotations

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from adapters.platforms.connector.credentials import CredentialStore
from bot.declarations import platform_gate
from storage.models import ChatMessage
from storage.models_approval import SubmissionRun
from storage.models_data import PlatformItem, RejectionRecord
from tests.fakes.taobao import FakeTop
from tests.test_connectors_jd_e2e import act, approve_all, card_text, tasks

LINK = "https://sale.tmall.com/campaign/{campaign}/enroll"


@pytest.fixture
def top(db, monkeypatch, tmp_path):
    fake = FakeTop().start()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    config = tmp_path / "connectors.yaml"
    config.write_text(
        "connectors:\n"
        f"  - {{name: tmall-flagship, kind: taobao, shop: flagship, gateway: '{fake.url}',"
        " timeout_seconds: 2}\n"
        "  - {name: tmall-bigsale, kind: tmall_bigsale, shop: flagship,"
        f" options: {{deep_link: '{LINK}', limit_per_buyer: 2}}}}\n", "utf-8")
    monkeypatch.setenv("PROMOPILOT_CONNECTORS_FILE", str(config))
    CredentialStore(db).set("tmall", "flagship", fake.credentials())
    yield fake
    fake.stop()
    platform_gate.clear()


def test_big_sale_notice_to_hand_off_card_evidence_and_reported_result(top, live):
    client = httpx.Client(base_url=live.url, timeout=30)
    assert live.container.extras["assisted_submitters"]["tmall"].name == "tmall-bigsale"
    task = next(t for t in tasks(client, "tmall") if "双12" in t["title"])
    tid = task["id"]
    assert act(client, tid, "claim", "li.na").status_code == 200
    assert act(client, tid, "draft", "li.na").status_code == 200
    lines = client.get(f"/api/tasks/{tid}").json()["lines"]
    assert lines
    with live.container.db.session() as s:  # the shop's Tmall item ids
        for n, line in enumerate(lines):
            s.add(PlatformItem(sku=line["sku"], platform="tmall", item_id=str(64000 + n)))
    asked = act(client, tid, "request_approval", "li.na")
    if asked.status_code != 200:  # the demo's own pre-check findings: a manager waives them
        assert act(client, tid, "compliance_override", "zhou.qiang",
                   comment="经理确认按会场要求报名").status_code == 200
        asked = act(client, tid, "request_approval", "li.na")
    assert asked.status_code == 200, asked.text
    approve_all(client, tid)
    assert act(client, tid, "submit", "li.na").json()["state"] == "submitting"

    live.container.submissions.submit_pending()
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "submitting"  # with a person
    assert not [m for m in top.methods() if "activity.add" in m or "detail.add" in m]
    with live.container.db.session() as s:
        run = s.exec(select(SubmissionRun).where(SubmissionRun.task_id == tid)).one()
        assert run.handoff["channel"] == "assisted" and run.handoff["connector"] == "tmall-bigsale"
        assert [x["channel"] for x in run.tried] == ["api"]  # no public API: handed on
        run_id = run.id
    live.drain()
    handoff = card_text(live, f"submission:{tid}:{run_id}")
    assert LINK.format(campaign="TM-2026-1212-001") in handoff  # the deep link button
    assert "没有公开报名接口" in handoff  # why the API channel handed it on
    for n, line in enumerate(lines):  # the exact values to enter, per SKU
        assert str(64000 + n) in handoff and str(line["promo_price"]) in handoff
        assert str(line["promo_stock"]) in handoff
    assert "每人限购" in handoff and "'2'" in handoff

    assert act(client, tid, "submission_done", "li.na").status_code >= 400  # evidence needed
    done = act(client, tid, "submission_done", "li.na", comment="报名编号 TM1212-88017")
    assert done.status_code == 200, done.text
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    live.drain()
    sent = card_text(live, f"submission:{tid}:{run_id}")
    assert "TM1212-88017" in sent and "platform_rejected" in sent  # report the verdict next

    why = "会场活动价须低于近30天最低价,本次未通过"
    assert act(client, tid, "platform_rejected", "li.na", comment=why).status_code == 200
    final = client.get(f"/api/tasks/{tid}").json()
    assert {line["result"] for line in final["lines"]} == {"rejected"}
    assert {line["reason_text"] for line in final["lines"]} == {why}
    live.drain()
    with live.container.db.session() as s:
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert why in str(card.card)
        learned = s.exec(select(RejectionRecord).where(RejectionRecord.task_id == tid)).all()
        assert {r.reason_text for r in learned} == {why}
