"""The JD connector (real httpx client) against a local fake of JOS that checks every
signature: JD's published signing example, the promotion made in steps (create, add SKUs,
commit), the shop's own checker in JD's back office, per-SKU reasons, token refresh, rate
limits and timeouts — and a retry never creates a second promotion nor adds a SKU twice."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from adapters.platforms.connector.base import ConnectorConfig
from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.errors import BadSignature, Unauthorized
from adapters.platforms.connector.signing import sign
from adapters.platforms.jd.client import param_json
from adapters.platforms.jd.connector import JdConnector
from bot.core.ports import SubmissionItem
from storage.models import Campaign, Platform
from storage.models_data import PlatformItem
from storage.types import utcnow
from tests.fakes.jd import FakeJd, reference_sign

ADD = "jingdong.seller.promotion.add"
SKU_ADD = "jingdong.seller.promotion.sku.add"
COMMIT = "jingdong.seller.promotion.commit"


def test_signature_reproduces_jds_published_example():
    """JD's developer guide (open.jd.com, dev-guide listId=2643) signs this parameter set
    with the secret ``yourappSecret`` to D70825340F4084360B9362B60DFD7930: every parameter
    sorted by name (``360buy_param_json`` first), name+value, the secret on both ends, MD5,
    upper-case hex."""
    params = {"360buy_param_json": '{"end_date":null,"optional_fields":null,"order_state":'
                                   '"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200",'
                                   '"start_date":null}',
              "access_token": "yourtoken", "app_key": "yourappkey",
              "method": "jingdong.pop.order.search", "timestamp": "2021-05-07 09:20:39.683+0800",
              "v": "2.0"}
    assert sign(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"
    assert reference_sign(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"
    # the business parameters travel as one JSON object with its keys in alphabetical order
    assert param_json({"page": "1", "end_date": None, "名称": "促销"}) == \
        '{"end_date":null,"page":"1","名称":"促销"}'


@pytest.fixture
def fake():
    server = FakeJd(slow_seconds=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def shop(db, fake, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    CredentialStore(db).set("jd", "flagship", fake.credentials())
    with db.session() as s:
        if s.get(Platform, "jd") is None:
            s.add(Platform(code="jd", name="京东"))
            s.flush()
        for sku, ware, sku_id in (("A-1", "1001", "100011"), ("B-1", "1002", "100021")):
            s.add(PlatformItem(sku=sku, platform="jd", item_id=ware, sku_id=sku_id))
        s.add(Campaign(platform="jd", external_id="JD-DAY-1", title="京东家电节单品促销",
                       content_hash="h", event_start=utcnow() + timedelta(days=2),
                       event_end=utcnow() + timedelta(days=5)))
    return db


def jd(db, fake, waits: list | None = None, **options) -> JdConnector:
    config = ConnectorConfig(name="jd-flagship", kind="jd", shop="flagship", gateway=fake.url,
                             timeout_seconds=0.5, options={"oauth_url": fake.oauth_url,
                                                           **options})
    return JdConnector(config, db, CredentialStore(db),
                       sleep=waits.append if waits is not None else lambda s: None)


def items(*skus: str) -> list[SubmissionItem]:
    return [SubmissionItem(s, Decimal("129.00"), Decimal("99.90"), 40) for s in skus]


def test_promotion_in_steps_waits_for_the_shops_checker_then_gives_per_sku_results(shop, fake):
    fake.sku_rejects = {"100021": "促销价低于该类目限价(不得低于京东价8折)"}
    connector = jd(shop, fake)
    receipt = connector.submit("JD-DAY-1", items("A-1", "B-1", "C-1"), "pp-task1-decl1")
    assert receipt.status == "reviewing" and receipt.reference.startswith("jd-")
    assert fake.methods().count(ADD) == 1 and fake.methods().count(SKU_ADD) == 2
    assert fake.methods().count(COMMIT) == 1 and fake.bad_signatures == 0
    sent = json.loads(next(c for m, c in fake.calls if m == SKU_ADD)["360buy_param_json"])
    assert sent["promo_prices"] == "99.90" and sent["jd_prices"] == "129.00"  # yuan
    promo = fake.promos[receipt.reference.removeprefix("jd-")]
    assert promo["status"] == 3 and "PP" in promo["name"]  # 人工审: the shop's checker

    waiting = connector.status(receipt.reference)
    assert waiting.status == "reviewing" and waiting.raw["checker"]["state"] == "pending"
    fake.check(receipt.reference.removeprefix("jd-"), passed=True)
    final = connector.status(receipt.reference)
    assert final.status == "partial" and final.raw["checker"]["state"] == "passed"
    assert {(i.sku, i.result, i.reason_text) for i in final.items} == {
        ("A-1", "accepted", None),
        ("B-1", "rejected", "促销价低于该类目限价(不得低于京东价8折)"),  # JD's own words
        ("C-1", "rejected", "数据池中没有 SKU C-1 在平台上的商品编号,请导入平台商品ID")}


def test_the_checkers_refusal_rejects_every_sku(shop, fake):
    connector = jd(shop, fake)
    receipt = connector.submit("JD-DAY-1", items("A-1", "B-1"), "pp-task2-decl1")
    fake.check(receipt.reference.removeprefix("jd-"), passed=False)
    final = connector.status(receipt.reference)
    assert final.status == "rejected" and final.raw["checker"]["state"] == "rejected"
    assert {i.reason_code for i in final.items} == {"JD_CHECK_REJECTED"}
    assert "审核人" in final.items[0].reason_text


def test_lost_answers_never_create_or_add_twice(shop, fake):
    fake.faults[ADD].append("commit-then-timeout")  # created; the answer is lost
    fake.faults[SKU_ADD].append("commit-then-timeout")  # the first SKU added; answer lost
    connector = jd(shop, fake)
    receipt = connector.submit("JD-DAY-1", items("A-1", "B-1"), "pp-task3-decl1")
    assert receipt.status == "reviewing" and len(fake.promos) == 1
    promo = next(iter(fake.promos.values()))
    assert sorted(promo["skus"]) == ["100011", "100021"]
    assert fake.methods().count(ADD) == 1  # found again by its tag, not created again
    assert fake.methods().count(SKU_ADD) == 2 and fake.methods().count(COMMIT) == 1
    again = connector.submit("JD-DAY-1", items("A-1", "B-1"), "pp-task3-decl1")  # retry button
    assert again.reference == receipt.reference and fake.methods().count(ADD) == 1


def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(shop, fake):
    old = fake.access_token
    fake.expire_token()
    receipt = jd(shop, fake).submit("JD-DAY-1", items("A-1"), "pp-task4-decl1")
    assert receipt.status == "reviewing" and fake.refreshes == 1
    stored = CredentialStore(shop).get("jd", "flagship")
    assert stored["access_token"] == fake.access_token != old
    assert stored["refresh_token"] == fake.refresh_token


def test_a_refused_refresh_asks_for_a_new_authorisation(shop, fake):
    fake.expire_token()
    fake.refresh_token = "jd-rt-revoked"
    with pytest.raises(Unauthorized) as refused:
        jd(shop, fake).submit("JD-DAY-1", items("A-1"), "pp-task5-decl1")
    assert fake.methods().count("oauth2/refresh_token") == 1
    assert "授权" in refused.value.message("zh-CN") and not fake.promos


def test_rate_limits_wait_as_asked_and_timeouts_are_retried(shop, fake):
    waits: list[float] = []
    fake.faults[ADD].extend(["429", "rate"])
    fake.faults[COMMIT].append("timeout")
    receipt = jd(shop, fake, waits).submit("JD-DAY-1", items("A-1"), "pp-task6-decl1")
    assert receipt.status == "reviewing" and len(fake.promos) == 1
    assert waits[0] == 1.0  # Retry-After honoured
    assert fake.methods().count(ADD) == 3 and fake.methods().count(COMMIT) == 2


def test_a_bad_signature_is_not_retried(shop, fake):
    CredentialStore(shop).set("jd", "flagship", {"app_secret": "wrong"})
    with pytest.raises(BadSignature) as bad:
        jd(shop, fake).submit("JD-DAY-1", items("A-1"), "pp-task7-decl1")
    assert len(fake.calls) == 1 and "签名" in bad.value.message("zh-CN")


def test_cancel_removes_the_promotion(shop, fake):
    connector = jd(shop, fake)
    receipt = connector.submit("JD-DAY-1", items("A-1"), "pp-task8-decl1")
    connector.cancel(receipt.reference)
    assert fake.promos[receipt.reference.removeprefix("jd-")]["status"] == 7
    removed = next(c for m, c in fake.calls if m == "jingdong.seller.promotion.v2.remove")
    assert json.loads(removed["360buy_param_json"])["request_id"] == "pp-task8-decl1"
    assert connector.enrolment_status(receipt.reference).status == "cancelled"
