"""The Temu-style connector — the model asynchronous connector — against a local fake:
trace code at once, status polled until every SKU is decided; the request id makes a retry
safe; rate limits wait as asked; an expired token needs a new authorisation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from adapters.platforms.connector.base import ConnectorConfig
from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.errors import Unauthorized
from adapters.platforms.temu.connector import TemuConnector
from bot.core.ports import INVITATION, SubmissionItem
from storage.models_data import PlatformItem
from tests.fakes.temu import FakeTemu

SUBMIT = "bg.marketing.activity.enroll.submit"


@pytest.fixture
def fake():
    server = FakeTemu(slow_seconds=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def shop(db, fake, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    CredentialStore(db).set("temu", "global", fake.credentials())
    with db.session() as s:
        s.add(PlatformItem(sku="T-1", platform="temu", item_id="P1", sku_id="S1"))
        s.add(PlatformItem(sku="T-2", platform="temu", item_id="P1", sku_id="S2"))
    fake.candidates = {"S1": {"canEnroll": True, "maxActivityPrice": 1999, "minActivityStock": 20},
                       "S2": {"canEnroll": True}}
    return db


def temu(db, fake, waits=None) -> TemuConnector:
    config = ConnectorConfig(name="temu-global", kind="temu", shop="global", gateway=fake.url,
                             timeout_seconds=0.4)
    return TemuConnector(config, db, CredentialStore(db),
                         sleep=waits.append if waits is not None else lambda s: None)


def items() -> list[SubmissionItem]:
    return [SubmissionItem("T-1", Decimal("25.00"), Decimal("18.99"), 30),
            SubmissionItem("T-2", Decimal("25.00"), Decimal("21.00"), 30)]


def test_activities_and_invitations_are_listed(shop, fake):
    fake.activities = [{"activityId": 7001, "activityName": "Black Friday 秒杀",
                        "startTime": 1893456000000, "endTime": 1893715200000},
                       {"activityId": 7002, "activityName": "店铺定向邀约", "invited": True}]
    notices = temu(shop, fake).fetch()
    assert [(n.external_id, n.type) for n in notices] == [("7001", ""), ("7002", INVITATION)]
    assert fake.bad_signatures == 0


def test_candidates_carry_the_platforms_limits(shop, fake):
    found = {c.sku: c for c in temu(shop, fake).eligible_products("7001", ["T-1", "T-2", "X"])}
    assert found["T-1"].max_price == Decimal("19.99") and found["T-1"].min_stock == 20
    assert not found["X"].eligible and found["X"].reason_code == "NOT_MAPPED"


def test_asynchronous_enrolment_is_polled_to_per_sku_results(shop, fake):
    fake.rejects = {"S2": "活动价高于平台建议价"}
    fake.processing_polls = 2
    connector = temu(shop, fake)
    receipt = connector.submit("7001", items(), "pp-task9-decl1")
    assert receipt.reference == "TRACE-00001" and receipt.status == "reviewing"
    assert connector.status(receipt.reference).status == "reviewing"
    assert connector.status(receipt.reference).status == "reviewing"
    final = connector.status(receipt.reference)
    assert final.status == "partial"
    assert {(i.sku, i.result, i.reason_text) for i in final.items} == {
        ("T-1", "accepted", None), ("T-2", "rejected", "活动价高于平台建议价")}
    polls = fake.types().count("bg.marketing.activity.enroll.result.get")
    connector.status(receipt.reference)  # decided: answered from the ledger
    assert fake.types().count("bg.marketing.activity.enroll.result.get") == polls


def test_a_lost_answer_is_retried_with_the_same_request_id(shop, fake):
    waits: list[float] = []
    fake.faults[SUBMIT].extend(["commit-then-timeout", "429"])
    receipt = temu(shop, fake, waits).submit("7001", items(), "pp-task10-decl1")
    assert receipt.reference == "TRACE-00001" and len(fake.enrolments) == 1
    sent = [c["requestId"] for t, c in fake.calls if t == SUBMIT]
    assert sent == ["pp-task10-decl1"] * 3  # the same key every time: one enrolment
    assert 2.0 in waits  # Retry-After honoured


def test_an_expired_token_asks_for_a_new_authorisation(shop, fake):
    fake.expire_token()
    with pytest.raises(Unauthorized) as refused:
        temu(shop, fake).list_campaigns()
    assert "expired" in refused.value.detail and "重新授权" in refused.value.message("zh-CN")
    assert fake.types() == ["bg.marketing.activity.list.get"]  # no retry loop
