"""Nothing blocks, nothing is lost: the poison notices found by the thousand-notice trial.

Each example stands for a class: a number that is no time (1e20, NaN), a date valid in its
own zone but not in UTC inside a chunk of good notices, requirements that are text where a
number belongs, and a sandbox notice its own feed cannot serve. Storage tests run on SQLite
and PostgreSQL (``seeded`` → ``db``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from adapters.platforms.http_json import HttpJsonSource
from adapters.platforms.sandbox.server import build_router, review_items
from bot.core.dispatcher import Dispatcher
from bot.core.views import BUILDERS
from bot.watch import cli as watch_cli
from bot.watch import ingest as ingest_module
from bot.watch.watcher import Watcher
from commands.router import Inbound, router
from storage.models import Campaign, OutboxMessage, SandboxNotice, Task
from tests.fakes.notice_feeds import NoticeServer


@pytest.fixture
def server():
    s = NoticeServer()
    yield s
    s.close()


def good(i: int, **over) -> dict:
    return {"id": f"OK-{i}", "title": f"京东好通知 {i}",
            "registration": {"end": "2026-12-05T23:59:00+08:00"},
            "requirements": {"min_discount": 0.1}, **over}


def serve(server: NoticeServer, path: str, notices: list) -> str:
    # json.dumps writes NaN as the bare token NaN, as a careless feed does
    return server.serve(path, json.dumps({"data": {"notices": notices}}, ensure_ascii=False),
                        etag=False)


def ops_cards(db, builder: str) -> list[OutboxMessage]:
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "card")).all()
        return [r for r in rows if r.payload.get("builder") == builder]


def external_ids(db) -> set[str]:
    with db.session() as s:
        return set(s.exec(select(Campaign.external_id)))


def test_epoch_1e20_and_nan_are_rejected_once_and_the_feed_goes_on(seeded, server, caplog):
    db = seeded
    url = serve(server, "/jd", [good(1), good(2, id="HUGE", registration={"end": 1e20}),
                                good(3, id="NAN", registration={"end": float("nan")}), good(4)])
    source = HttpJsonSource("poison-jd", "jd", url, attempts=1)
    watcher = Watcher(db, [source])
    caplog.set_level(logging.WARNING, logger="bot.watch.rejections")
    report = watcher.run_once()
    assert len(report.new) == 2
    health = watcher.health["poison-jd"]
    assert health.ok and health.consecutive_failures == 0
    assert set(health.rejections) == {"HUGE", "NAN"}
    assert "out of range" in health.rejections["HUGE"]["reason"]
    assert "nan" in health.rejections["NAN"]["reason"].lower()
    assert health.as_dict()["rejected"] == 2

    # Later polls: the same rejections are neither logged nor announced again, and a good
    # notice published after the poison ones still comes in.
    serve(server, "/jd", [good(1), good(2, id="HUGE", registration={"end": 1e20}),
                          good(3, id="NAN", registration={"end": float("nan")}), good(4),
                          good(5)])
    assert len(watcher.run_once().new) == 1
    watcher.run_once()
    assert {"OK-1", "OK-4", "OK-5"} <= external_ids(db)
    logged = [r for r in caplog.records if r.getMessage() == "notice rejected"]
    assert sorted(r.ref for r in logged) == ["HUGE", "NAN"]
    cards = ops_cards(db, "notice_rejected")
    assert sorted(c.payload["params"]["ref"] for c in cards) == ["HUGE", "NAN"]
    assert {(c.chat, c.channel_id) for c in cards} == {("web", "ops")}
    with db.session() as s:
        zh = BUILDERS["notice_rejected"](s, cards[0].payload["params"], "zh-CN")
        en = BUILDERS["notice_rejected"](s, cards[0].payload["params"], "en")
    assert zh.title == "活动通知无法读取:poison-jd" and "未入库" in zh.text
    assert "was not stored" in en.text and cards[0].payload["params"]["ref"] in en.text


OUT_OF_UTC = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+08:00"]


def chunk_with_poison() -> list[dict]:
    notices = [good(i) for i in range(60)]
    notices.insert(10, good(900, id="LATE", registration={"end": OUT_OF_UTC[0]}))
    notices.insert(40, good(901, id="EARLY", event={"start": OUT_OF_UTC[1]}))
    return notices


def test_dates_outside_utc_inside_a_chunk_are_rejected_and_the_chunk_goes_in(seeded, server):
    db = seeded
    source = HttpJsonSource("chunky", "jd", serve(server, "/c", chunk_with_poison()), attempts=1)
    watcher = Watcher(db, [source])
    assert len(watcher.run_once().new) == 60
    health = watcher.health["chunky"]
    assert health.ok and set(health.rejections) == {"LATE", "EARLY"}
    assert health.last_counts["rejected"] == 2
    assert len(ops_cards(db, "notice_rejected")) == 2
    assert "LATE" not in external_ids(db)


def test_a_chunk_the_database_refuses_falls_back_to_row_by_row(seeded, server, monkeypatch):
    """Even if a bad date got past every check, the insert failing costs only that notice,
    and it is reported (health, ops card), not a traceback with ok/failures 0."""
    db = seeded
    monkeypatch.setattr(ingest_module, "check_notice", lambda notice: notice)
    monkeypatch.setattr("adapters.platforms.http_json.sane_time", lambda value: value)
    source = HttpJsonSource("unchecked", "jd", serve(server, "/u", chunk_with_poison()),
                            attempts=1)
    watcher = Watcher(db, [source])
    report = watcher.run_once()
    assert len(report.new) == 60
    assert sorted(ref for ref, _ in report.rejected) == ["jd/EARLY", "jd/LATE"]
    assert all("could not be stored" in why for _, why in report.rejected)
    health = watcher.health["unchecked"]
    assert health.ok and health.last_counts["failed"] == 2
    assert sorted(health.rejections) == ["jd/EARLY", "jd/LATE"]
    assert len(ops_cards(db, "notice_rejected")) == 2


class Recorder:
    """A chat adapter that records what it was asked to post (extra keywords such as an
    idempotency key are accepted and ignored)."""

    def __init__(self) -> None:
        self.cards: list = []

    async def post_card(self, channel_id: str, card, **_) -> str:
        self.cards.append((channel_id, card))
        return f"m{len(self.cards)}"

    async def update_card(self, channel_id: str, message_ref: str, card, **_) -> None:
        self.cards.append((channel_id, card))

    async def post_text(self, channel_id: str, text: str, **_) -> str:
        return "t"

    async def send_private(self, user: str, text: str, channel_id: str | None = None,
                           **_) -> None:
        return None


def drain(db, adapter: Recorder) -> None:
    dispatcher = Dispatcher(db, {"web": adapter})

    async def run() -> None:
        while await dispatcher.run_due():
            pass

    asyncio.run(run())


def test_min_discount_text_is_stored_flagged_and_the_card_still_reaches_the_channel(
        seeded, server):
    db = seeded
    url = serve(server, "/t", [good(7, id="ABC", requirements={"min_discount": "abc",
                                                               "min_stock": "100"})])
    assert len(Watcher(db, [HttpJsonSource("t", "jd", url, attempts=1)]).run_once().new) == 1
    with db.session() as s:
        campaign = s.exec(select(Campaign).where(Campaign.external_id == "ABC")).one()
        assert campaign.requirements == {"min_stock": 100, "_unreadable": {"min_discount": "abc"}}
        task = s.exec(select(Task).where(Task.campaign_id == campaign.id)).one()
        # data stored before this fix holds the text where the number belongs
        campaign.requirements = {"min_discount": "abc", "categories": "食品"}
        s.add(campaign)
    with db.session() as s:
        for lang, flag in (("zh-CN", "abc(无法识别"), ("en", "abc (unreadable")):
            card = BUILDERS["task"](s, {"task_id": task.id}, lang)
            shown = {f.label: f.value for f in card.fields}
            requirements = next(v for k, v in shown.items() if "abc" in v)
            assert flag in requirements and "食品" in requirements
    reply = router.handle_text(db, Inbound("web", "jd-promo", "wang.fang"), f"status {task.id}")
    assert reply.ok and reply.card is not None and "出错了" not in reply.text
    adapter = Recorder()
    drain(db, adapter)
    delivered = [c for channel, c in adapter.cards if c.task_id == task.id]
    assert delivered and any("abc" in f.value for f in delivered[0].fields)
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.task_id == task.id)).all()
        assert rows and {r.status for r in rows} == {"sent"}


@pytest.fixture
def poison_builder():
    """A card builder that cannot read what is stored, registered as "poison_test"."""
    def explodes(session, params, lang):
        raise ValueError("stored value the layout cannot read")

    BUILDERS["poison_test"] = explodes
    yield "poison_test"
    BUILDERS.pop("poison_test", None)


def test_an_unbuildable_card_is_dead_at_once_and_reported_to_ops_once(seeded, poison_builder):
    db = seeded
    from bot.core import outbox

    with db.session() as s:
        for n in range(3):  # three rows of the same card, as retries of versions do
            outbox.enqueue_card(s, "web", "jd-promo", "poison:1", "poison_test", {},
                                key=f"poison:1:v{n}")
    adapter = Recorder()
    drain(db, adapter)
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.card_key == "poison:1")).all()
        assert {r.status for r in rows} == {"dead"} and {r.attempts for r in rows} == {1}
        assert all("cannot be built" in r.last_error for r in rows)
    reports = ops_cards(db, "card_unbuildable")
    assert len(reports) == 1 and reports[0].status == "sent"
    titles = [c.title for channel, c in adapter.cards if channel == "ops"]
    assert titles == ["卡片无法生成:poison:1"]


def test_a_poison_card_costs_only_its_rows_in_a_batch_of_good_ones(seeded, poison_builder):
    """The batch's cards are built together; one that cannot be built sends the batch
    through one card at a time: the good cards still post once, each in one message."""
    db = seeded
    from bot.core import outbox
    from storage.models import ChatMessage

    with db.session() as s:
        tasks = s.exec(select(Task).order_by(Task.id).limit(2)).all()
        for task in tasks:  # new channels: their messages are reserved in the batch
            outbox.enqueue_card(s, "web", "batch-room", f"task:{task.id}", "task",
                                {"task_id": task.id}, key=f"batch:{task.id}",
                                task_id=task.id)
        outbox.enqueue_card(s, "web", "batch-room", "poison:2", "poison_test", {},
                            key="poison:2:v0")
    adapter = Recorder()
    drain(db, adapter)
    posted = sorted(c.task_id for channel, c in adapter.cards if channel == "batch-room")
    assert posted == sorted(t.id for t in tasks)
    with db.session() as s:
        shown = s.exec(select(ChatMessage).where(ChatMessage.channel_id == "batch-room")).all()
        assert sorted(m.card_key for m in shown) == sorted(f"task:{t.id}" for t in tasks)
        assert all(m.message_ref for m in shown)
        rows = {r.key: r.status for r in s.exec(select(OutboxMessage).where(
            OutboxMessage.channel_id == "batch-room"))}
        assert rows == {**{f"batch:{t.id}": "sent" for t in tasks}, "poison:2:v0": "dead"}


def sandbox_client(db) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(db, 0))
    return TestClient(app)


def test_sandbox_refuses_lone_surrogates_and_nan_and_its_feed_stays_up(db):
    client = sandbox_client(db)
    assert client.post("/sandbox/jd/notices", json={"id": "JD-OK", "title": "好"}).status_code \
        == 201
    for raw in ('{"id": "JD-S", "title": "bad \\ud800 text"}',
                '{"id": "JD-N", "title": "nan", "requirements": {"min_discount": NaN}}',
                '{"id": "JD-I", "title": "inf", "registration": {"end": Infinity}}'):
        answer = client.post("/sandbox/jd/notices", content=raw,
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, raw
        detail = answer.json()["detail"]
        assert "notice refused" in detail and ("surrogate" in detail or "NaN" in detail)
    assert client.post("/sandbox/jd/notices", json={"title": ""}).status_code == 422
    feed = client.get("/sandbox/jd/notices")
    assert feed.status_code == 200
    assert [n["id"] for n in feed.json()["data"]["notices"]] == ["JD-OK"]


def test_a_poisoned_row_already_stored_does_not_take_the_feed_down(db):
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL refuses to store such a body in the first place")
    with db.session() as s:
        s.add(SandboxNotice(platform="pdd", notice_id="PDD-BAD",
                            body={"id": "PDD-BAD", "title": "x\ud800"}))
        s.add(SandboxNotice(platform="pdd", notice_id="PDD-OK", body={"id": "PDD-OK",
                                                                      "title": "好"}))
    client = sandbox_client(db)
    feed = client.get("/sandbox/pdd/notices")
    assert feed.status_code == 200
    assert [n["id"] for n in feed.json()["data"]["notices"]] == ["PDD-OK"]
    assert client.get("/sandbox/pdd/notices/PDD-BAD").status_code == 409


def test_sandbox_review_reads_text_requirements_as_none():
    results = review_items({"min_discount": "abc", "min_stock": "lots"},
                           [{"sku": "A", "list_price": "10", "promo_price": "8",
                             "promo_stock": "many"}, "not an item"])
    assert results[0]["result"] == "accepted" and results[1]["result"] == "rejected"


def test_sources_cli_and_healthz_count_rejections(seeded, server, settings, monkeypatch):
    db = seeded
    source = HttpJsonSource("counted", "jd", serve(server, "/n", [
        good(1), good(2, id="BAD-1", registration={"end": 1e20})]), attempts=1)
    Watcher(db, [source]).run_once()
    monkeypatch.setattr(watch_cli, "_build_container",
                        lambda: SimpleNamespace(db=db, sources=[source]))
    import typer

    app = typer.Typer()
    app.command("sources")(watch_cli.sources)
    app.command("noop")(lambda: None)
    shown = CliRunner().invoke(app, ["sources"])
    assert shown.exit_code == 0, shown.output
    assert "rejected=1" in shown.output and "rejected BAD-1: time out of range" in shown.output
    as_json = json.loads(CliRunner().invoke(app, ["sources", "--json"]).stdout)
    assert as_json[0]["rejected"] == 1 and as_json[0]["rejections"][0]["ref"] == "BAD-1"

    from bot.web.app import create_app

    web = create_app(settings)
    web.state.container.sources.append(source)
    body = TestClient(web).get("/healthz").json()
    assert body["notices_rejected"] == 1
    assert {s["name"]: s["rejected"] for s in body["sources"]}["counted"] == 1
