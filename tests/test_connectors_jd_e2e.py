"""End to end against the real app: a JD campaign (the demo's 京东PLUS会员日 notice) is
claimed and drafted; the approval card says JD's own check comes after ours; approved, it is
submitted through the ``api`` channel — the JD connector creates the promotion, adds the
SKUs (JD refuses one, with its reason) and commits it — and then waits for the shop's own
checker in JD's back office, which the task card says; once the checker approves, the
review gives per-SKU results on the result card and JD's refusal reaches rejection
learning."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from adapters.platforms.connector.credentials import CredentialStore
from bot.declarations import platform_gate
from storage.models import ChatMessage
from storage.models_data import PlatformItem, RejectionRecord
from tests.fakes.jd import FakeJd

APPROVERS = ("zhou.qiang", "zhao.lei", "sun.li", "admin")


@pytest.fixture
def jd(db, monkeypatch, tmp_path):
    fake = FakeJd().start()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    config = tmp_path / "connectors.yaml"
    config.write_text(f"connectors:\n  - name: jd-flagship\n    kind: jd\n    shop: flagship\n"
                      f"    gateway: '{fake.url}'\n    timeout_seconds: 2\n"
                      f"    options: {{oauth_url: '{fake.oauth_url}'}}\n", "utf-8")
    monkeypatch.setenv("PROMOPILOT_CONNECTORS_FILE", str(config))
    CredentialStore(db).set("jd", "flagship", fake.credentials())
    yield fake
    fake.stop()
    platform_gate.clear()


def act(client: httpx.Client, task_id: int, action: str, actor: str, **kw) -> httpx.Response:
    return client.post(f"/api/tasks/{task_id}/actions",
                       json={"action": action, "actor": actor, **kw})


def tasks(client: httpx.Client, platform: str) -> list[dict]:
    body = client.get("/api/tasks", params={"platform": platform, "limit": 200}).json()
    return body["items"] if isinstance(body, dict) else body  # a page, or the plain list


def approve_all(client: httpx.Client, task_id: int) -> None:
    for _ in range(6):
        if client.get(f"/api/tasks/{task_id}").json()["state"] != "in_approval":
            return
        for who in APPROVERS:
            if act(client, task_id, "approve", who).status_code == 200:
                break
    assert client.get(f"/api/tasks/{task_id}").json()["state"] == "approved"


def card_text(live, key: str) -> str:
    with live.container.db.session() as s:
        rows = [m for m in s.exec(select(ChatMessage)) if (m.card_key or "").startswith(key)]
    assert rows, f"no card {key}"
    return str(rows[-1].card)


def test_jd_promotion_through_the_shops_checker_to_per_sku_results(jd, live):
    client = httpx.Client(base_url=live.url, timeout=30)
    assert live.container.submitters["jd"].name == "jd-flagship"  # the `api` channel
    task = next(t for t in tasks(client, "jd") if "PLUS" in t["title"])
    tid = task["id"]
    assert act(client, tid, "claim", "li.na").status_code == 200
    assert act(client, tid, "draft", "li.na").status_code == 200
    lines = client.get(f"/api/tasks/{tid}").json()["lines"]
    assert len(lines) >= 2, lines
    with live.container.db.session() as s:  # the shop's JD ware and SKU ids
        for n, line in enumerate(lines):
            s.add(PlatformItem(sku=line["sku"], platform="jd", item_id=str(6100 + n),
                               sku_id=str(61000 + n)))
    refused = "促销价低于该类目限价(不得低于京东价5折)"
    jd.sku_rejects = {"61001": refused}

    asked = act(client, tid, "request_approval", "li.na")
    if asked.status_code != 200:  # the demo's own pre-check findings: a manager waives them
        assert act(client, tid, "compliance_override", "zhou.qiang",
                   comment="经理确认按活动要求报名").status_code == 200
        asked = act(client, tid, "request_approval", "li.na")
    assert asked.status_code == 200, asked.text
    live.drain()
    approval = card_text(live, "approval")
    assert "京东后台审核" in approval and "促销审核" in approval  # JD's own check comes after
    approve_all(client, tid)
    assert act(client, tid, "submit", "li.na").json()["state"] == "submitting"

    live.container.submissions.submit_pending()
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    assert len(jd.promos) == 1 and jd.bad_signatures == 0
    promo_id, promo = next(iter(jd.promos.items()))
    assert promo["status"] == 3 and sorted(promo["skus"]) == sorted(
        str(61000 + n) for n in range(len(lines)) if n != 1)  # committed, the refused one out
    live.drain()
    waiting = card_text(live, f"task:{tid}")
    assert "等待店铺审核人" in waiting and promo_id in waiting  # the shop's checker, in JD

    live.container.submissions.poll_reviews()  # the checker has not decided yet
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    jd.check(promo_id, passed=True)  # the shop's checker approves in JD's back office
    live.container.submissions.poll_reviews()
    final = client.get(f"/api/tasks/{tid}").json()
    assert final["state"] == "accepted", final["history"][-3:]  # partial: accepted with reasons
    results = {line["sku"]: (line["result"], line["reason_text"]) for line in final["lines"]}
    assert results[lines[0]["sku"]] == ("accepted", None)
    assert results[lines[1]["sku"]] == ("rejected", refused)
    sent = [c for m, c in jd.calls if m == "jingdong.seller.promotion.sku.add"]
    assert Decimal(str(lines[0]["promo_price"])) == Decimal(
        json.loads(sent[0]["360buy_param_json"])["promo_prices"])  # the declared promo price

    live.drain()
    result = card_text(live, f"task:{tid}")
    assert "店铺审核人已审核通过" in result and refused in result
    with live.container.db.session() as s:
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert card.card["kind"] == "result"
        learned = s.exec(select(RejectionRecord).where(RejectionRecord.task_id == tid)).all()
        assert [(r.sku, r.reason_text) for r in learned] == [(lines[1]["sku"], refused)]
