"""The Taobao/Tmall connector (real httpx client) against a local fake of TOP that checks
every signature (md5, hmac, hmac-sha256): TOP's published signing example, the shop's item
activities with their quota refused before calling, per-item reasons, token refresh, rate
limits and timeouts — a retry never creates a second activity — and big-sale venues handed
to the assisted channel."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from adapters.platforms.connector.base import ConnectorConfig
from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.errors import AssistedOnly, BadSignature, QuotaExhausted
from adapters.platforms.taobao.client import sign_top
from adapters.platforms.taobao.connector import TaobaoConnector
from bot.core.ports import SubmissionItem
from storage.models import Campaign, Platform
from storage.models_data import PlatformItem
from storage.types import utcnow
from tests.fakes.taobao import FakeTop, reference_sign

ADD = "taobao.promotionmisc.common.item.activity.add"
DETAIL = "taobao.promotionmisc.common.item.detail.add"


def test_signature_reproduces_tops_published_example():
    """TOP's 签名算法 page signs this set with the secret ``helloworld`` (md5) to
    66987CB115214E59E6EC978214934FB8; ``hmac`` is HMAC-MD5 of the same concatenation keyed
    with the secret — checked with RFC 2202's published vector (key 0x0b×16, "Hi There")
    and ``hmac-sha256`` with RFC 4231's."""
    params = {"method": "taobao.item.seller.get", "app_key": "12345678", "session": "test",
              "timestamp": "2016-01-01 12:00:00", "format": "json", "v": "2.0",
              "sign_method": "md5", "fields": "num_iid,title,nick,price,num",
              "num_iid": "11223344"}
    assert sign_top(params, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"
    assert reference_sign(params, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"
    assert sign_top({"Hi": " There"}, "\x0b" * 16, "hmac") == "9294727A3638BB1C13F48EF8158BFC9D"
    assert sign_top({"Hi": " There"}, "\x0b" * 20, "hmac-sha256") == (
        "B0344C61D8DB38535CA8AFCEAF0BF12B881DC200C9833DA726E9376C2E32CFF7")
    for method in ("hmac", "hmac-sha256"):
        assert sign_top(params, "helloworld", method) == reference_sign(params, "helloworld",
                                                                        method)


@pytest.fixture
def fake():
    server = FakeTop(slow_seconds=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def shop(db, fake, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    CredentialStore(db).set("tmall", "flagship", fake.credentials())
    with db.session() as s:
        if s.get(Platform, "tmall") is None:
            s.add(Platform(code="tmall", name="天猫"))
            s.flush()
        for sku, item, sku_id in (("A-1", "501", "5011"), ("A-2", "501", "5012"),
                                  ("B-1", "502", "5021")):
            s.add(PlatformItem(sku=sku, platform="tmall", item_id=item, sku_id=sku_id))
        s.add(Campaign(platform="tmall", external_id="SHOP-DAY-1", title="店铺周年庆单品优惠",
                       type="店铺活动", content_hash="h", event_start=utcnow() + timedelta(days=2),
                       event_end=utcnow() + timedelta(days=5)))
        s.add(Campaign(platform="tmall", external_id="TM-1111", title="2026天猫双11美妆会场招商",
                       type="大促", content_hash="h2", event_start=utcnow() + timedelta(days=20),
                       event_end=utcnow() + timedelta(days=23)))
    return db


def tb(db, fake, waits: list | None = None, **options) -> TaobaoConnector:
    config = ConnectorConfig(name="tmall-flagship", kind="taobao", shop="flagship",
                             gateway=fake.url, timeout_seconds=0.5, options=options)
    return TaobaoConnector(config, db, CredentialStore(db),
                           sleep=waits.append if waits is not None else lambda s: None)


def item(sku: str, promo: str = "79.00") -> SubmissionItem:
    return SubmissionItem(sku, Decimal("99.00"), Decimal(promo), 30)


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_each_sign_method_is_accepted_by_top(shop, fake, method):
    receipt = tb(shop, fake, sign_method=method).submit("SHOP-DAY-1", [item("A-1")], "pp-t1-d1")
    assert receipt.status == "accepted" and fake.bad_signatures == 0
    assert {p["sign_method"] for _, p in fake.calls} == {method}


def test_partial_rejection_gives_per_sku_reasons(shop, fake):
    fake.item_rejects = {"502": "优惠力度超过店铺最低折扣(8折)"}
    receipt = tb(shop, fake).submit("SHOP-DAY-1", [item("A-1"), item("A-2", "69.00"),
                                                   item("B-1"), item("C-1")], "pp-t2-d1")
    assert receipt.status == "partial"
    assert "C-1" in receipt.raw["ineligible"]  # unmapped: never sent, NOT_ELIGIBLE on the card
    review = tb(shop, fake).status(receipt.reference)
    verdicts = {i.sku: (i.result, i.reason_code) for i in review.items}
    assert verdicts == {"A-1": ("accepted", None), "A-2": ("rejected", "TB_ITEM_LEVEL"),
                        "B-1": ("rejected", "TB_isv.discount-lower-than-min")}
    texts = {i.sku: i.reason_text for i in review.items}
    assert texts["B-1"] == "优惠力度超过店铺最低折扣(8折)"  # TOP's own words
    assert "A-1" in texts["A-2"]  # one cut per item: enrolled at A-1's price
    activity = next(iter(fake.activities.values()))
    assert activity["details"]["501"]["promotion_value"] == 2000  # 99.00 − 79.00, in fen
    assert len(activity["name"]) <= 32 and "PP" in activity["name"]


def test_the_activity_quota_is_refused_clearly_before_calling(shop, fake):
    fake.fill(30)
    connector = tb(shop, fake)
    found = {c.sku: c for c in connector.eligible_products("SHOP-DAY-1", ["A-1", "C-1"])}
    assert not found["A-1"].eligible and found["A-1"].reason_code == "TB_QUOTA"
    assert "30" in found["A-1"].reason_text and found["C-1"].reason_code == "NOT_MAPPED"
    with pytest.raises(QuotaExhausted) as full:
        connector.submit("SHOP-DAY-1", [item("A-1")], "pp-t3-d1")
    assert ADD not in fake.methods() and "上限" in full.value.message("zh-CN")
    assert "30/30" in full.value.message("en")


def test_lost_answers_never_create_or_add_twice(shop, fake):
    fake.faults[ADD].append("commit-then-timeout")
    fake.faults[DETAIL].append("commit-then-timeout")
    connector = tb(shop, fake)
    receipt = connector.submit("SHOP-DAY-1", [item("A-1"), item("B-1")], "pp-t4-d1")
    assert receipt.status == "accepted" and len(fake.activities) == 1
    assert fake.methods().count(ADD) == 1 and fake.methods().count(DETAIL) == 2
    assert sorted(next(iter(fake.activities.values()))["details"]) == ["501", "502"]
    again = connector.submit("SHOP-DAY-1", [item("A-1"), item("B-1")], "pp-t4-d1")
    assert again.reference == receipt.reference and fake.methods().count(ADD) == 1


def test_an_expired_session_is_refreshed_once(shop, fake):
    old = fake.access_token
    fake.expire_token()
    assert tb(shop, fake).submit("SHOP-DAY-1", [item("A-1")], "pp-t5-d1").status == "accepted"
    assert fake.refreshes == 1
    assert CredentialStore(shop).get("tmall", "flagship")["access_token"] == fake.access_token
    assert fake.access_token != old


def test_rate_limits_and_remote_errors_are_retried_a_bad_signature_is_not(shop, fake):
    waits: list[float] = []
    fake.faults[ADD].extend(["429", "rate", "isp"])
    assert tb(shop, fake, waits).submit("SHOP-DAY-1", [item("A-1")], "pp-t6-d1").status == \
        "accepted"
    assert waits[0] == 1.0 and len(fake.activities) == 1
    CredentialStore(shop).set("tmall", "flagship", {"app_secret": "wrong"})
    calls = len(fake.calls)
    with pytest.raises(BadSignature):
        tb(shop, fake).submit("SHOP-DAY-1", [item("B-1")], "pp-t7-d1")
    assert len(fake.calls) == calls + 1


def test_big_sale_venues_are_handed_to_the_assisted_channel(shop, fake):
    connector = tb(shop, fake)
    with pytest.raises(AssistedOnly) as venue:
        connector.submit("TM-1111", [item("A-1")], "pp-t8-d1")
    assert not fake.calls and not venue.value.retry
    assert "人工" in venue.value.message("zh-CN")


def test_nothing_joined_frees_the_quota_and_cancel_deletes(shop, fake):
    fake.item_rejects = {"501": "商品不存在"}
    refused = tb(shop, fake).submit("SHOP-DAY-1", [item("A-1")], "pp-t9-d1")
    assert refused.status == "rejected" and not fake.activities  # the empty one deleted
    connector = tb(shop, fake)
    receipt = connector.submit("SHOP-DAY-1", [item("B-1")], "pp-t10-d1")
    connector.cancel(receipt.reference)
    assert not fake.activities
    assert connector.enrolment_status(receipt.reference).status == "cancelled"
