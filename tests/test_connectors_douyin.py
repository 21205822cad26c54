"""The 抖店 connector (real httpx client) against a local fake of the open platform that
checks every signature (HMAC-SHA256 and MD5) and the sorted ``param_json``: colonel
activities listed in cursor pages, the application per product, the colonel's audit as
per-SKU results with reasons, token refresh, rate limits and timeouts — and a retry never
applies twice."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from adapters.platforms.connector.base import ConnectorConfig
from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.errors import BadSignature, InvalidParam, Unauthorized
from adapters.platforms.connector.shared import beijing
from adapters.platforms.douyin.client import param_json, sign_douyin
from adapters.platforms.douyin.connector import DouyinConnector
from bot.core.ports import INVITATION, SubmissionItem
from storage.models import Campaign, Platform
from storage.models_data import PlatformItem
from storage.types import utcnow
from tests.fakes.douyin import FakeDouyin, reference_sign

APPLY = "buyin.applyActivities"


def test_signature_is_the_documented_pattern_wrapped_in_the_secret():
    """抖店 publishes no fixed vector (only an online tool), so the sign is checked against the
    documented recipe written out independently here: ``app_key…method…param_json…
    timestamp…v…`` with the secret on both ends, HMAC-SHA256 keyed with the secret or MD5,
    lower-case hex; ``param_json`` has its keys sorted at every level and no spaces."""
    body = param_json({"page_size": 20, "apply_status": 2, "filter": {"b": 1, "a": "团长"}})
    assert body == '{"apply_status":2,"filter":{"a":"团长","b":1},"page_size":20}'
    pattern = ("app_key7012345678901234567methodbuyin.ShopActivityListparam_json" + body
               + "timestamp1767225600v2")
    wrapped = ("s3cr3t" + pattern + "s3cr3t").encode()
    expected = hmac.new(b"s3cr3t", wrapped, hashlib.sha256).hexdigest()
    got = sign_douyin("7012345678901234567", "s3cr3t", "buyin.ShopActivityList", body,
                      "1767225600")
    assert got == expected and len(got) == 64 and got == got.lower()
    assert sign_douyin("7012345678901234567", "s3cr3t", "buyin.ShopActivityList", body,
                       "1767225600", sign_method="md5") == hashlib.md5(wrapped).hexdigest()
    query = {"app_key": "7012345678901234567", "method": "buyin.ShopActivityList",
             "timestamp": "1767225600", "v": "2", "sign_method": "hmac-sha256"}
    assert reference_sign(query, body, "s3cr3t") == expected  # the fake agrees


@pytest.fixture
def fake():
    server = FakeDouyin(slow_seconds=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def shop(db, fake, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    CredentialStore(db).set("douyin", "flagship", fake.credentials())
    with db.session() as s:
        if s.get(Platform, "douyin") is None:
            s.add(Platform(code="douyin", name="抖音"))
            s.flush()
        for sku, product in (("A-1", "801"), ("A-2", "801"), ("B-1", "802"), ("D-1", "803")):
            s.add(PlatformItem(sku=sku, platform="douyin", item_id=product))
        s.add(Campaign(platform="douyin", external_id="3666524", title="冬季焕新团长招商",
                       type="团长活动", content_hash="h",
                       requirements={"commission_rate": 20, "service_rate": 5}))
    fake.details["3666524"] = {"activity_id": 3666524, "activity_name": "冬季焕新团长招商",
                               "apply_end_time": beijing(utcnow() + timedelta(days=3)),
                               "commission_rate": "20", "service_rate": "5"}
    return db


def dy(db, fake, waits: list | None = None, **options) -> DouyinConnector:
    config = ConnectorConfig(name="douyin-flagship", kind="douyin", shop="flagship",
                             gateway=fake.url, timeout_seconds=0.5, options=options)
    return DouyinConnector(config, db, CredentialStore(db),
                           sleep=waits.append if waits is not None else lambda s: None)


def item(sku: str, promo: str = "59.90") -> SubmissionItem:
    return SubmissionItem(sku, Decimal("89.00"), Decimal(promo), 100)


def test_colonel_activities_are_listed_in_cursor_pages(shop, fake):
    fake.activities = [{"activity_id": 9000 + n, "activity_name": f"团长活动{n}",
                        "institution_name": "好物团", "activity_kind": 0 if n == 0 else 1,
                        "apply_start_time": "2026-01-01 00:00:00",
                        "apply_end_time": "2026-01-31 23:59:59", "commission_rate": 20}
                       for n in range(25)] + [{"activity_name": "no id: skipped"}]
    notices = dy(shop, fake).fetch()
    assert len(notices) == 25 and fake.methods().count("buyin.ShopActivityList") == 2
    assert notices[0].type == INVITATION and notices[1].type == "团长活动"  # 专属招商: invited
    assert notices[0].registration_end.isoformat() == "2026-01-31T15:59:59+00:00"  # GMT+8
    assert {q["sign_method"] for _, q, _ in fake.calls} == {"hmac-sha256"}
    assert fake.bad_signatures == 0


def test_a_closed_enrolment_window_refuses_every_sku(shop, fake):
    connector = dy(shop, fake)
    assert all(c.eligible for c in connector.eligible_products("3666524", ["A-1", "B-1"]))
    fake.details["3666524"]["apply_end_time"] = "2020-01-01 00:00:00"
    found = {c.sku: c for c in connector.eligible_products("3666524", ["A-1", "X-9"])}
    assert found["A-1"].reason_code == "DY_APPLY_CLOSED" and "2020-01-01" in found["A-1"].reason_text
    assert found["X-9"].reason_code == "NOT_MAPPED"


def test_application_then_the_colonels_audit_gives_per_sku_reasons(shop, fake):
    fake.product_rejects = {"802": "商品近30天有差评率超标记录,不可报名"}
    connector = dy(shop, fake, sign_method="md5")
    receipt = connector.submit("3666524", [item("A-1"), item("A-2", "49.90"), item("B-1"),
                                           item("D-1")], "pp-t1-d1")
    assert receipt.status == "reviewing" and fake.bad_signatures == 0
    sent = next(p for m, _, p in fake.calls if m == APPLY)
    assert sent["phone_number"] == "13800000000" and sent["service_ratio"] == "5.00"
    assert {p["product_id"]: p["activity_price"] for p in sent["products"]} == {
        801: 5990, 802: 5990, 803: 5990}  # fen, per product; 802 is refused at once
    assert connector.status(receipt.reference).status == "reviewing"  # 待审核
    fake.audit("3666524", "801", 1)
    fake.audit("3666524", "803", 2, "佣金低于团长要求")
    final = connector.status(receipt.reference)
    assert final.status == "partial"
    assert {(i.sku, i.result, i.reason_text) for i in final.items} == {
        ("A-1", "accepted", None),
        ("A-2", "rejected", dy(shop, fake).reason("conn.reason.item_level", sku="A-1")),
        ("B-1", "rejected", "商品近30天有差评率超标记录,不可报名"),
        ("D-1", "rejected", "佣金低于团长要求")}  # the colonel's own reason


def test_a_lost_answer_is_looked_up_before_applying_again(shop, fake):
    fake.faults[APPLY].append("commit-then-timeout")
    receipt = dy(shop, fake).submit("3666524", [item("A-1"), item("D-1")], "pp-t2-d1")
    assert receipt.status == "reviewing"
    assert fake.methods().count(APPLY) == 1 and len(fake.applications["3666524"]) == 2


def test_an_expired_token_is_refreshed_once(shop, fake):
    old = fake.access_token
    fake.expire_token()
    assert len(dy(shop, fake).list_campaigns()) == 0 and fake.refreshes == 1
    assert CredentialStore(shop).get("douyin", "flagship")["access_token"] == \
        fake.access_token != old
    fake.expire_token()
    fake.refresh_token = "dy-rt-revoked"
    with pytest.raises(Unauthorized):
        dy(shop, fake).list_campaigns()
    assert fake.methods().count("token.refresh") == 2


def test_rate_limits_and_busy_answers_are_retried_a_bad_signature_is_not(shop, fake):
    waits: list[float] = []
    fake.faults[APPLY].extend(["429", "rate", "busy"])
    assert dy(shop, fake, waits).submit("3666524", [item("A-1")], "pp-t3-d1").status == \
        "reviewing"
    assert waits[0] == 1.0 and fake.methods().count(APPLY) == 4
    assert len(fake.applications["3666524"]) == 1
    CredentialStore(shop).set("douyin", "flagship", {"app_secret": "wrong"})
    calls = len(fake.calls)
    with pytest.raises(BadSignature):
        dy(shop, fake).list_campaigns()
    assert len(fake.calls) == calls + 1


def test_without_the_shops_phone_number_the_refusal_says_so(shop, fake):
    CredentialStore(shop).set("douyin", "flagship", {**fake.credentials(), "phone_number": ""},
                              merge=False)
    with pytest.raises(InvalidParam, match="phone"):
        dy(shop, fake, attempts=1).enrol("3666524", [item("A-1")], "pp-t4-d1")
    assert APPLY not in fake.methods()


def test_a_campaign_that_is_no_colonel_activity_is_refused_clearly(shop, fake):
    with pytest.raises(InvalidParam, match="colonel activity"):
        dy(shop, fake).enrol("DY-ECOM-8851", [item("A-1")], "pp-t5-d1")
    assert APPLY not in fake.methods()
