"""The Pinduoduo connector (real httpx client) against a local fake of the PDD router that
checks every signature: signing, eligibility, per-goods results, token refresh, rate limits
and timeouts — and a retry never enrols twice."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from adapters.platforms.connector.base import ConnectorConfig
from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.errors import BadSignature, InvalidParam, Unauthorized
from adapters.platforms.connector.signing import sign
from adapters.platforms.pdd.connector import PddConnector
from bot.core.ports import INVITATION, SubmissionItem
from storage.models import Campaign, Platform
from storage.models_connectors import ConnectorState, PlatformCandidate, PlatformCredential
from storage.models_data import PlatformItem
from storage.types import utcnow
from tests.fakes.pdd import FakePdd, reference_sign

CREATE = "pdd.promotion.limited.activity.create"
QUALIFIED = "pdd.promotion.limited.qualified.goods.get"


def test_signature_is_pdds_documented_algorithm():
    """Sorted by name, name+value concatenated, client_secret on both ends, MD5, upper hex:
    checked against the algorithm written out by hand and against the fake's own code."""
    params = {"type": "pdd.order.number.list.get", "client_id": "4b6a", "data_type": "JSON",
              "timestamp": "1480411125", "order_status": "1", "page": "1", "page_size": "10",
              "access_token": "tok"}
    by_hand = ("testSecret" + "access_tokentok" + "client_id4b6a" + "data_typeJSON"
               + "order_status1" + "page1" + "page_size10" + "timestamp1480411125"
               + "typepdd.order.number.list.get" + "testSecret")
    expected = hashlib.md5(by_hand.encode()).hexdigest().upper()
    assert sign(params, "testSecret") == expected == reference_sign(params, "testSecret")
    assert sign({**params, "sign": "IGNORED"}, "testSecret") == expected  # sign not signed
    # nested business parameters are signed as the JSON text that is sent
    nested = {"type": "x", "goods_id_list": [1, 2]}
    assert sign(nested, "s") == reference_sign({"type": "x", "goods_id_list": "[1,2]"}, "s")


@pytest.fixture
def fake():
    server = FakePdd(slow_seconds=1.2).start()
    yield server
    server.stop()


@pytest.fixture
def key(monkeypatch):
    value = Fernet.generate_key().decode()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", value)
    return value


@pytest.fixture
def shop(db, fake, key):
    """Credentials stored encrypted, two goods mapped in the data pool, a campaign."""
    CredentialStore(db).set("pdd", "flagship", fake.credentials())
    fake.goods = {101: {"valid": True, "skus": {1011: {"is_valid": True,
                                                       "max_activity_price": 9900}}},
                  102: {"valid": True, "skus": {1021: {"is_valid": True}}},
                  103: {"valid": False, "reason": "近30天有虚假发货记录"}}
    with db.session() as s:
        if s.get(Platform, "pdd") is None:
            s.add(Platform(code="pdd", name="拼多多"))
            s.flush()
        for sku, goods, sku_id in (("A-1", "101", "1011"), ("B-1", "102", "1021"),
                                   ("C-1", "103", "1031")):
            s.add(PlatformItem(sku=sku, platform="pdd", item_id=goods, sku_id=sku_id))
        s.add(Campaign(platform="pdd", external_id="INV-1", title="年货节限时折扣邀约", content_hash="h",
                       event_start=utcnow() + timedelta(days=3),
                       event_end=utcnow() + timedelta(days=6)))
    return db


def connector(db, fake, waits: list | None = None, **kw) -> PddConnector:
    config = ConnectorConfig(name="pdd-flagship", kind="pdd", shop="flagship",
                             gateway=fake.url, timeout_seconds=0.5, attempts=4, **kw)
    return PddConnector(config, db, CredentialStore(db), sleep=(waits.append
                                                                 if waits is not None
                                                                 else lambda s: None))


def items(*skus: str) -> list[SubmissionItem]:
    return [SubmissionItem(s, Decimal("129.00"), Decimal("89.90"), 50) for s in skus]


def test_credentials_are_encrypted_at_rest(shop, fake):
    with shop.session() as s:
        stored = s.exec(select(PlatformCredential)).one().secret
    assert fake.client_secret not in stored and fake.access_token not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token


def test_invitations_become_notices_of_type_directed(shop, fake):
    fake.invitations = [{"invitation_id": "INV-9", "title": "平台定向邀约·限时折扣",
                         "start_time": 1893456000, "end_time": 1893715200,
                         "apply_end_time": 1893369600, "is_directed": True},
                        {"title": "no id: skipped, the others still listed"}]
    notices = connector(shop, fake).fetch()
    assert [(n.external_id, n.type, n.platform) for n in notices] == [
        ("INV-9", INVITATION, "pdd")]
    assert notices[0].event_start.year == 2030
    assert fake.bad_signatures == 0  # every request the fake saw was signed correctly


def test_partial_rejection_gives_per_sku_reasons(shop, fake):
    fake.rejects = {102: "活动价高于近30天最低成交价"}
    pdd = connector(shop, fake)
    receipt = pdd.submit("INV-1", items("A-1", "B-1", "C-1"), "pp-task1-decl1")
    assert receipt.status == "partial"
    assert receipt.raw["ineligible"] == {"C-1": "近30天有虚假发货记录"}  # never sent
    sent = [c for t, c in fake.calls if t == CREATE]
    assert len(sent) == 1 and '"goods_id":103' not in sent[0]["request"]
    assert '"activity_price":8990' in sent[0]["request"]  # fen
    review = pdd.status(receipt.reference)
    verdicts = {i.sku: (i.result, i.reason_text) for i in review.items}
    assert verdicts == {"A-1": ("accepted", None),
                        "B-1": ("rejected", "活动价高于近30天最低成交价")}
    with shop.session() as s:  # the eligibility answer is kept for the pre-check
        answers = {c.sku: c for c in s.exec(select(PlatformCandidate))}
    assert answers["A-1"].eligible and answers["A-1"].max_price == Decimal("99.00")
    assert not answers["C-1"].eligible and "虚假发货" in answers["C-1"].reason_text


def test_a_lost_answer_and_retries_never_enrol_twice(shop, fake):
    fake.faults[CREATE].append("commit-then-timeout")  # created, but the answer is too late
    pdd = connector(shop, fake)
    receipt = pdd.submit("INV-1", items("A-1"), "pp-task2-decl1")
    assert receipt.status == "accepted"
    assert len(fake.created(101)) == 1  # looked the activity up instead of creating it again
    assert [t for t in fake.types() if t == CREATE] == [CREATE]
    again = pdd.submit("INV-1", items("A-1"), "pp-task2-decl1")  # the retry button, later
    assert again.reference == receipt.reference and len(fake.created(101)) == 1
    assert [t for t in fake.types() if t == CREATE] == [CREATE]


def test_expired_token_is_refreshed_once_and_the_call_succeeds(shop, fake):
    old = fake.access_token
    fake.expire_token()
    pdd = connector(shop, fake)
    found = pdd.eligible_products("INV-1", ["A-1"])
    assert found[0].eligible and fake.refreshes == 1
    stored = CredentialStore(shop).get("pdd", "flagship")
    assert stored["access_token"] == fake.access_token != old  # new tokens kept, encrypted


def test_a_refused_refresh_is_not_retried(shop, fake):
    fake.expire_token()
    fake.refresh_token = "rt-revoked"
    with pytest.raises(Unauthorized) as refused:
        connector(shop, fake).list_campaigns()
    assert fake.types().count("pdd.pop.auth.token.refresh") == 1
    assert "授权" in refused.value.message("zh-CN")


def test_rate_limit_waits_as_the_platform_asks(shop, fake):
    waits: list[float] = []
    fake.faults[QUALIFIED].extend(["429", "rate"])
    found = connector(shop, fake, waits).eligible_products("INV-1", ["A-1"])
    assert found[0].eligible
    assert waits[0] == 1.0  # Retry-After honoured
    assert len(waits) == 2 and fake.types().count(QUALIFIED) == 3


def test_bad_signature_and_invalid_params_are_not_retried(shop, fake):
    CredentialStore(shop).set("pdd", "flagship", {"client_secret": "wrong"})
    with pytest.raises(BadSignature) as bad:
        connector(shop, fake).list_campaigns()
    assert len(fake.calls) == 1 and "签名" in bad.value.message("zh-CN")
    CredentialStore(shop).set("pdd", "flagship", {"client_secret": fake.client_secret})
    with pytest.raises(InvalidParam):
        connector(shop, fake, options={"campaigns_type": "pdd.no.such.api"}).list_campaigns()
    assert len(fake.calls) == 2
    with shop.session() as s:  # health: last call and last error, for `promopilot platforms`
        state = s.get(ConnectorState, "pdd-flagship")
    assert state.ok is False and state.last_error_key == "conn.err.invalid_param"
    assert state.failures == 2 and state.last_call == "list_campaigns"


def test_timeouts_are_retried_then_reported(shop, fake):
    fake.faults[QUALIFIED].extend(["timeout"] * 4)
    waits: list[float] = []
    with pytest.raises(Exception) as failed:
        connector(shop, fake, waits).eligible_products("INV-1", ["A-1"])
    assert failed.value.kind == "unavailable" and len(waits) == 3
    assert "超时" in failed.value.message("zh-CN")
    assert "拼多多 暂时不可用" in repr(failed.value)  # what the submission card shows


def test_cancel_ends_the_activity(shop, fake):
    pdd = connector(shop, fake)
    receipt = pdd.submit("INV-1", items("A-1"), "pp-task3-decl1")
    pdd.cancel(receipt.reference)
    assert fake.created(101)[0]["status"] == 4
    assert pdd.enrolment_status(receipt.reference).status == "cancelled"


def test_long_declarations_are_checked_in_pages(shop, fake):
    with shop.session() as s:
        for n in range(7):
            s.add(PlatformItem(sku=f"P-{n}", platform="pdd", item_id=str(900 + n),
                               sku_id=str(9000 + n)))
    fake.goods |= {900 + n: {"valid": True, "skus": {9000 + n: {"is_valid": True}}}
                   for n in range(7)}
    found = connector(shop, fake, options={"page_size": 3}).eligible_products(
        "INV-1", [f"P-{n}" for n in range(7)])
    assert all(c.eligible for c in found) and fake.types().count(QUALIFIED) == 3


def test_the_shipped_example_configuration_loads(tmp_path):
    from adapters.platforms.connector import config

    typo = tmp_path / "connectors.yaml"
    typo.write_text("connectors:\n  - {name: a, kind: pdd, shop: s, gatway: 'http://x'}\n")
    with pytest.raises(ValueError, match="gatway"):  # a misspelt setting stops start-up
        config.load(typo)
    loaded = config.load(config.ROOT / "config" / "connectors.example.yaml")
    assert [(c.name, c.kind) for c in loaded.connectors] == [("pdd-flagship", "pdd")]
    with pytest.raises(ValueError, match="unknown connector kind"):
        config.kind_class("tmall-top")
