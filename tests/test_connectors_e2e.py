"""End to end against the real app: an invitation (定向邀约) the Pinduoduo fake lists
becomes a notice card through the watcher, is claimed, drafted, stopped by the platform's
own eligibility answer (a price above the platform's maximum), waived by a manager, shown on
the approval card, approved, enrolled through the ``api`` channel (the PDD connector) and
comes back as a per-SKU result card; the rejection reason reaches rejection learning."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from adapters.platforms.connector.base import fen
from adapters.platforms.connector.credentials import CredentialStore
from bot.declarations import platform_gate
from storage.models import ChatMessage
from storage.models_data import PlatformItem, RejectionRecord
from tests.fakes.pdd import FakePdd


@pytest.fixture
def pdd(db, monkeypatch, tmp_path):
    fake = FakePdd().start()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    config = tmp_path / "connectors.yaml"
    config.write_text(f"connectors:\n  - name: pdd-flagship\n    kind: pdd\n    shop: flagship\n"
                      f"    gateway: '{fake.url}'\n    timeout_seconds: 2\n", "utf-8")
    monkeypatch.setenv("PROMOPILOT_CONNECTORS_FILE", str(config))
    CredentialStore(db).set("pdd", "flagship", fake.credentials())
    now = int(time.time())
    fake.invitations = [{"invitation_id": "PDD-INV-77", "title": "拼多多定向邀约·年货节限时折扣",
                         "apply_start_time": now - 86400, "apply_end_time": now + 5 * 86400,
                         "start_time": now + 10 * 86400, "end_time": now + 20 * 86400,
                         "is_directed": True, "description": "限时折扣,活动库存不少于10件"}]
    yield fake
    fake.stop()
    platform_gate.clear()


def act(client: httpx.Client, task_id: int, action: str, actor: str, **kw) -> httpx.Response:
    return client.post(f"/api/tasks/{task_id}/actions",
                       json={"action": action, "actor": actor, **kw})


def test_invitation_to_per_sku_result_card(pdd, live):
    client = httpx.Client(base_url=live.url, timeout=30)
    assert live.container.submitters["pdd"].name == "pdd-flagship"  # the `api` channel
    report = live.container.extras["watcher"].run_once()
    assert report.new, "the invitation became a notice"
    task = next(t for t in client.get("/api/tasks", params={"platform": "pdd",
                                                            "limit": 200}).json()["items"]
                if t["title"] == "拼多多定向邀约·年货节限时折扣")
    tid = task["id"]
    live.drain()
    with live.container.db.session() as s:  # posted as a card like any notice
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert "定向邀约" in str(card.card["fields"])

    assert act(client, tid, "claim", "li.na").status_code == 200
    assert act(client, tid, "draft", "li.na").status_code == 200
    lines = client.get(f"/api/tasks/{tid}").json()["lines"]
    assert len(lines) >= 2, lines
    first, second = lines[0], lines[1]
    with live.container.db.session() as s:  # the shop's PDD goods ids, in the data pool
        for n, line in enumerate(lines):
            s.add(PlatformItem(sku=line["sku"], platform="pdd", item_id=str(500 + n),
                               sku_id=str(5000 + n)))
    from decimal import Decimal

    ceiling = fen(Decimal(str(first["promo_price"]))) - 100  # one yuan below the promo price
    pdd.goods = {500 + n: {"valid": True, "skus": {5000 + n: {"is_valid": True}}}
                 for n in range(len(lines))}
    pdd.goods[500]["skus"][5000]["max_activity_price"] = ceiling
    pdd.rejects = {501: "活动价高于近30天最低成交价"}

    blocked = act(client, tid, "request_approval", "li.na")
    assert blocked.status_code >= 400  # the platform's answer is the first gate
    assert "平台允许的最高活动价" in blocked.json()["detail"]["message"]
    waived = act(client, tid, "compliance_override", "zhou.qiang",
                 comment="平台上限按邀约价执行,经理确认")
    assert waived.status_code == 200, waived.text
    asked = act(client, tid, "request_approval", "li.na")
    assert asked.status_code == 200, asked.text
    live.drain()
    with live.container.db.session() as s:  # shown on the approval card before approval
        approval = [m for m in s.exec(select(ChatMessage)) if (m.card_key or "").startswith("approval")]
        assert approval and "平台允许的最高活动价" in str(approval[-1].card)
        assert "↷" in str(approval[-1].card)
    assert act(client, tid, "approve", "zhou.qiang").status_code == 200
    assert act(client, tid, "submit", "li.na").json()["state"] == "submitting"

    live.container.submissions.submit_pending()
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    live.container.submissions.poll_reviews()
    final = client.get(f"/api/tasks/{tid}").json()
    assert final["state"] == "accepted", final["history"][-3:]  # partial: accepted with reasons
    results = {line["sku"]: (line["result"], line["reason_text"]) for line in final["lines"]}
    assert results[first["sku"]] == ("accepted", None)
    assert results[second["sku"]] == ("rejected", "活动价高于近30天最低成交价")
    assert pdd.bad_signatures == 0 and len(pdd.created(500)) == 1

    live.drain()
    with live.container.db.session() as s:  # one result card, per SKU, with the reason
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert card.card["kind"] == "result"
        assert "活动价高于近30天最低成交价" in str(card.card["table"])
        learned = s.exec(select(RejectionRecord).where(RejectionRecord.task_id == tid)).all()
        assert [(r.sku, r.reason_text) for r in learned] == [
            (second["sku"], "活动价高于近30天最低成交价")]
