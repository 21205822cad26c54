"""Alerts: a competitor more than 5 % below our promo price, a running campaign about to cross
safety stock — each sent once per condition across sweeps (the alert_log row), to the
platform's ops channel, and silenced by the card's mute button (audited), on SQLite and
PostgreSQL. Competitors' prices come from an HTTP-JSON source (a local fake) and a CSV."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import func, select

from bot.core.views import BUILDERS
from bot.insight import alerts, feeds
from commands.router import Inbound, router
from storage.models import AuditEvent, Declaration, DeclarationLine, OutboxMessage, Product, Task
from storage.models_results import AlertLog, CompetitorPrice
from tests import insight_decisions as history
from tests.fakes.insight_feeds import FeedServer

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=history.SH)  # day 2 of the November campaign


def running(db) -> int:
    """The November 日常促销 running with P1 at ¥169.15 and P2 at ¥84.15; P2's stock low."""
    ids = history.build(db)
    task_id = ids["new_daily"]
    with db.session() as s:
        task = s.get(Task, task_id)
        task.state = "running"
        s.add(task)
        d = Declaration(task_id=task_id, version=1)
        s.add(d)
        s.flush()
        for sku, price in (("P1", "169.15"), ("P2", "84.15")):
            s.add(DeclarationLine(declaration_id=d.id, sku=sku, promo_price=Decimal(price),
                                  promo_stock=300, result="accepted"))
        p2 = s.exec(select(Product).where(Product.sku == "P2")).one()
        p2.stock, p2.safety_stock, p2.in_transit = 150, 100, 30
        s.add(p2)
    return task_id


def outbox_rows(db) -> list[OutboxMessage]:
    with db.session() as s:
        return list(s.exec(select(OutboxMessage).where(
            OutboxMessage.payload["builder"].as_string() == "insight_alert")
            .order_by(OutboxMessage.id)))


def sweep(db) -> int:
    with db.session() as s:
        return alerts.sweep(s, NOW)


def test_alerts_once_per_condition_to_the_ops_channel_and_mute_stops_them(db):
    task_id = running(db)
    prices = [{"platform": "天猫", "sku": "P1", "competitor": "竞店A", "price": "150.00",
               "url": "https://example.invalid/a", "date": "2026-11-20"},
              {"platform": "tmall", "sku": "P1", "competitor": "竞店B", "price": 165},  # 2.5 %
              {"platform": "淘宝", "sku": "P1", "competitor": "竞店C", "price": 1}]  # unknown
    with FeedServer(prices) as feed:
        feed.trouble = [502]  # retried
        report = alerts.import_prices_items(db, feeds.fetch(feed.url), "http-json", now=NOW)
    assert (report.imported, report.bad_rows) == (2, 1)
    assert "row 3, platform = 淘宝" in report.errors[0].message("en")

    assert sweep(db) == 2  # 竞店A under P1's price; P2 about to cross its safety stock
    first = outbox_rows(db)
    assert {(r.channel_id, r.card_key.split(":")[0]) for r in first} == {("ops-room", "alert")}
    assert sweep(db) == 0 and len(outbox_rows(db)) == len(first)  # the second sweep: nothing

    with db.session() as s:
        logged = {r.kind: r for r in s.exec(select(AlertLog))}
        stock = logged["stock_cross"].detail
        assert stock["left_after"] < 100 and stock["suggest"] == \
            100 + stock["high"] - 150 - 30  # safety + upper forecast − stock − in transit
        card = BUILDERS["insight_alert"](s, {"alert_id": logged["competitor_price"].id}, "zh-CN")
        assert "竞品低价" in card.title and "¥169.15" in card.text and "¥150.00" in card.text
        assert "11.3%" in card.text  # (169.15 − 150) ÷ 169.15
        mute = next(b for b in card.buttons if b.action == "mute_alert")

    reply = router.handle_click(db, Inbound("web", "ops-room", "li.na", "web:m1"), mute.value)
    assert reply.ok and "不会再发" in reply.text
    with db.session() as s:
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "mute_alert")).one()
        assert audit.actor == "li.na" and audit.detail["subject"] == f"competitor:{task_id}:P1"
        muted = BUILDERS["insight_alert"](s, {"alert_id": logged["competitor_price"].id}, "en")
        assert muted.locked and "Muted by li.na" in muted.footer
        price = s.exec(select(CompetitorPrice).where(CompetitorPrice.competitor == "竞店A")).one()
        price.price = Decimal("140.00")  # a new condition for a muted subject
        s.add(price)
        s.add(CompetitorPrice(platform="tmall", sku="P2", competitor="竞店A",
                              price=Decimal("70.00"), seen_at=NOW - timedelta(hours=1)))
    assert sweep(db) == 1  # P2's undercut is another subject; P1's stays muted
    with db.session() as s:
        kinds = s.exec(select(AlertLog.sku, func.count()).where(
            AlertLog.kind == "competitor_price").group_by(AlertLog.sku)).all()
    assert dict(kinds) == {"P1": 1, "P2": 1}


def test_a_stale_price_or_one_inside_the_threshold_is_no_alert(db, tmp_path):
    running(db)
    csv = tmp_path / "prices.csv"
    csv.write_text("平台,商品编码,竞品,价格,日期\n天猫,P1,竞店A,150,2026-11-01\n"
                   "天猫,P1,竞店B,162,2026-11-20\n天猫,P1,竞店C,-5,2026-11-20\n", "utf-8")
    report = alerts.import_prices_file(db, csv, now=NOW)
    assert report.imported == 2 and "第 4 行「价格」=-5" in report.errors[0].message("zh-CN")
    with db.session() as s:  # 竞店A is 20 days old; 竞店B is 4.2 % below (threshold 5 %)
        found = alerts.competitor_conditions(s, NOW, alerts.AlertSettings(_env_file=None))
    assert found == []


def test_the_alert_job_reads_the_configured_source_and_survives_its_failure(db, monkeypatch):
    from types import SimpleNamespace

    from bot.core.settings import Settings
    from bot.insight.decide_plugin import run_alerts

    running(db)
    with db.session() as s:  # only the competitor's price matters here, whatever the date
        p2 = s.exec(select(Product).where(Product.sku == "P2")).one()
        p2.stock = 5000
        s.add(p2)
    kicked = []
    container = SimpleNamespace(db=db, settings=Settings(database_url=db.url, _env_file=None),
                                extras={"is_leader": lambda: True, "kick": lambda: kicked.append(1)})
    prices = [{"platform": "tmall", "sku": "P1", "competitor": "竞店A", "price": "150"}]
    with FeedServer(prices) as feed:
        monkeypatch.setenv("PROMOPILOT_COMPETITOR_PRICES_URL", feed.url)
        monkeypatch.setenv("PROMOPILOT_COMPETITOR_PRICES_TOKEN", "tok-1")
        alerts.get_alert_settings.cache_clear()
        try:
            feed.trouble = [500] * 4  # every retry fails: logged, the sweep still runs
            assert run_alerts(container) == 0 and not kicked
            assert run_alerts(container) == 1 and kicked  # read now; the card goes out
            assert feed.requests[-1][1]["Authorization"] == "Bearer tok-1"
            container.extras["is_leader"] = lambda: False
            assert run_alerts(container) == 0  # another replica leads
        finally:
            alerts.get_alert_settings.cache_clear()
