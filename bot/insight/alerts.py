"""Alerts to the platform's channels: a competitor selling below our promo price, and a running
campaign's sales about to cross safety stock (with how much to replenish).

**Competitor prices** (``competitor_prices``, the latest per platform, SKU and competitor)
come from a CSV/XLSX (``promopilot import competitor-prices FILE``: 平台, 商品编码, 竞品, 价格,
链接, 日期) or an HTTP-JSON source (``PROMOPILOT_COMPETITOR_PRICES_URL``, fetched by the alert
job; a list of ``{platform, sku, competitor, price, url?, date?}``). A price seen within
``PROMOPILOT_COMPETITOR_MAX_AGE_DAYS`` (7) that is more than
``PROMOPILOT_COMPETITOR_THRESHOLD`` (0.05 = 5 %) below the promo price of a SKU in a campaign
we hold (in approval … running) is an alert.

**Stock**: for a running campaign, the units still to sell (``bot.insight.forecast`` over the
days left, from the results so far; without daily history, the campaign's own daily rate so
far × the days left) are set against the stock: when stock − expected units falls below the
safety stock, an alert suggests replenishing safety stock + the upper end of the forecast −
stock − in transit.

**Once per condition**: deciding an alert is inserting its ``alert_log`` row — the key names
the condition (task, SKU, competitor and both prices; task and SKU for stock) and is unique
— in the same transaction that enqueues its cards (``bot.core.outbox``), as the reminders do
with ``reminder_log``. A second sweep, another replica or a retry finds the row and sends
nothing. The card's **mute** button (``mute_alert``, audited) silences the alert's subject
(the SKU in that campaign, per kind): no new alert for it is decided after that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.core import outbox
from bot.core.timefmt import local_date
from bot.declarations.sheets import ImportReport, RowError, parse_rows
from bot.insight import forecast
from bot.insight.results import parse_items, platform_code
from storage.db import Database
from storage.models import Campaign, Product, Task
from storage.models_results import AlertLog, CampaignResult, CompetitorPrice
from storage.queries import declaration_lines, latest_declaration
from storage.types import utcnow

log = logging.getLogger(__name__)
HELD = ("in_approval", "approved", "submitting", "submitted", "in_review", "accepted", "running")
PURPOSES = ("ops", "notices")  # the platform's ops channels; its notice channels without one


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOPILOT_", env_file=".env", extra="ignore")

    competitor_threshold: Decimal = Field(default=Decimal("0.05"), description="alert when a "
                                          "competitor is more than this share below our price")
    competitor_max_age_days: float = 7
    competitor_prices_url: str = Field(default="", description="HTTP-JSON source of "
                                       "competitors' prices; empty = none")
    competitor_prices_token: str = Field(default="", description="Bearer token for it")
    alert_interval_seconds: float = 900


@lru_cache
def get_alert_settings() -> AlertSettings:
    return AlertSettings()


# -- competitors' prices in --------------------------------------------------------------------

def _store_prices(db: Database, records: list[tuple[int, dict]], report: ImportReport,
                  source: str, now: datetime) -> ImportReport:
    with db.session() as session:
        for number, record in records:
            code = platform_code(record["platform"])
            if code is None:
                report.errors.append(RowError(number, report.header("platform"),
                                              str(record["platform"])[:40],
                                              "imp.unknown_platform"))
                continue
            if record["price"] <= 0:
                report.errors.append(RowError(number, report.header("price"),
                                              str(record["price"]), "num.positive"))
                continue
            row = session.exec(select(CompetitorPrice).where(
                CompetitorPrice.platform == code, CompetitorPrice.sku == record["sku"],
                CompetitorPrice.competitor == record["competitor"])).first()
            report.created += row is None
            report.updated += row is not None
            row = row or CompetitorPrice(platform=code, sku=record["sku"],
                                         competitor=record["competitor"])
            row.price, row.url = record["price"], record.get("url") or ""
            row.seen_at = record.get("date") or now
            row.source = source[:128]
            session.add(row)
            report.imported += 1
    report.errors.sort(key=lambda e: (e.row, e.column))
    log.info("competitor prices", extra={"source": source[:200], "imported": report.imported,
                                         "rejected": report.bad_rows})
    return report


def import_prices_file(db: Database, path: Path, *, timezone: str = "Asia/Shanghai",
                       now: datetime | None = None) -> ImportReport:
    records, report = parse_rows(path, "competitor_prices", ZoneInfo(timezone))
    if any(e.row == 0 for e in report.errors):
        return report
    return _store_prices(db, records, report, f"file:{path.name}", now or utcnow())


def import_prices_items(db: Database, items: Any, source: str, *,
                        timezone: str = "Asia/Shanghai",
                        now: datetime | None = None) -> ImportReport:
    records, report = parse_items(items, "competitor_prices", ZoneInfo(timezone))
    if any(e.row == 0 for e in report.errors):
        return report
    return _store_prices(db, records, report, source, now or utcnow())


# -- deciding ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    kind: str
    key: str
    subject: str
    task: Task
    campaign: Campaign
    sku: str
    detail: dict


def muted(session: Session, subject: str) -> bool:
    return session.exec(select(AlertLog.id).where(AlertLog.subject == subject,
                                                  AlertLog.muted_at.is_not(None))).first() \
        is not None


def _held(session: Session) -> list[tuple[Task, Campaign]]:
    return list(session.exec(select(Task, Campaign).join(Campaign, Campaign.id == Task.campaign_id)
                             .where(Task.state.in_(HELD)).order_by(Task.id)).all())


def competitor_conditions(session: Session, now: datetime,
                          settings: AlertSettings) -> list[Condition]:
    since = now - timedelta(days=settings.competitor_max_age_days)
    found = []
    for task, campaign in _held(session):
        declaration = latest_declaration(session, task.id or 0)
        if declaration is None:
            continue
        for line in declaration_lines(session, declaration.id or 0):
            if not line.promo_price or line.result == "rejected":
                continue
            limit = line.promo_price * (1 - settings.competitor_threshold)
            for price in session.exec(select(CompetitorPrice).where(
                    CompetitorPrice.platform == campaign.platform, CompetitorPrice.sku == line.sku,
                    CompetitorPrice.seen_at >= since, CompetitorPrice.price < limit)
                    .order_by(CompetitorPrice.price, CompetitorPrice.competitor)):
                gap = ((line.promo_price - price.price) / line.promo_price).quantize(
                    Decimal("0.001"), rounding=ROUND_HALF_UP)
                found.append(Condition(
                    "competitor_price",
                    f"competitor:{task.id}:{line.sku}:{price.competitor}:{line.promo_price}:"
                    f"{price.price}"[:256], f"competitor:{task.id}:{line.sku}"[:200], task,
                    campaign, line.sku,
                    {"ours": str(line.promo_price), "theirs": str(price.price),
                     "competitor": price.competitor[:128], "gap": str(gap),
                     "threshold": str(settings.competitor_threshold), "url": price.url[:500],
                     "seen_at": price.seen_at.isoformat()}))
    return found


def _days_left(campaign: Campaign, today) -> int:
    end = local_date(campaign.event_end) if campaign.event_end else None
    return max((end - today).days + 1, 0) if end else 0


def stock_conditions(session: Session, now: datetime) -> list[Condition]:
    today = local_date(now)
    found = []
    for task, campaign in _held(session):
        if task.state != "running":
            continue
        declaration = latest_declaration(session, task.id or 0)
        if declaration is None:
            continue
        for line in declaration_lines(session, declaration.id or 0):
            product = session.exec(select(Product).where(Product.sku == line.sku)).first()
            if product is None or line.result == "rejected":
                continue
            projected = _projected(session, campaign, line.sku, today)
            if projected is None:
                continue
            mid, high, method = projected
            if product.stock - mid >= product.safety_stock:
                continue
            suggest = max(product.safety_stock + high - product.stock - product.in_transit, 0)
            found.append(Condition(
                "stock_cross", f"stock:{task.id}:{line.sku}", f"stock:{task.id}:{line.sku}",
                task, campaign, line.sku,
                {"stock": product.stock, "safety": product.safety_stock,
                 "in_transit": product.in_transit, "expected": mid, "high": high,
                 "left_after": product.stock - mid, "suggest": suggest, "method": method,
                 "days_left": _days_left(campaign, today)}))
    return found


def _projected(session: Session, campaign: Campaign, sku: str,
               today) -> tuple[int, int, str] | None:
    """(expected, upper) units still to sell over the campaign's days left, and the method."""
    days = _days_left(campaign, today)
    if days <= 0:
        return None
    found = forecast.sku_forecast(session, campaign, sku, before=today)
    if found is not None:
        return round(found.band.mid), round(found.band.high), found.method
    sold = session.exec(select(CampaignResult.day, CampaignResult.units).where(
        CampaignResult.campaign_id == campaign.id, CampaignResult.sku == sku)).all()
    run = {d for d, _ in sold if d}
    if not sold or not run:
        return None
    rate = sum(u for _, u in sold) / len(run)
    return round(rate * days), round(rate * days * 1.5), "rate"


def _channels(session: Session, condition: Condition) -> list[tuple[str, str]]:
    for purpose in PURPOSES:
        found = outbox.bindings_for(session, condition.campaign.platform, purpose,
                                    condition.task.team_id)
        if found:
            return sorted({(b.chat, b.channel_id) for b in found})
    return []


def decide(session: Session, condition: Condition, now: datetime) -> AlertLog | None:
    """Log the condition and enqueue its cards, once; None when already decided or muted."""
    if muted(session, condition.subject):
        return None
    if session.exec(select(AlertLog.id).where(AlertLog.key == condition.key)).first():
        return None
    row = AlertLog(key=condition.key, kind=condition.kind, subject=condition.subject,
                   task_id=condition.task.id, platform=condition.campaign.platform,
                   sku=condition.sku, detail=condition.detail, created_at=now)
    try:
        with session.begin_nested():  # the unique key is the decision (another replica …)
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    for chat, channel in _channels(session, condition):
        outbox.enqueue_card(session, chat, channel, f"alert:{row.id}", "insight_alert",
                            {"alert_id": row.id}, key=f"alert:{row.id}:{chat}:{channel}",
                            task_id=condition.task.id)
    return row


def sweep(session: Session, now: datetime | None = None,
          settings: AlertSettings | None = None) -> int:
    """Every alert whose condition holds now and was not decided before; how many."""
    now = now or utcnow()
    settings = settings or get_alert_settings()
    sent = 0
    for condition in competitor_conditions(session, now, settings) + stock_conditions(session,
                                                                                      now):
        if decide(session, condition, now) is not None:
            sent += 1
            log.info("alert", extra={"kind": condition.kind, "key": condition.key,
                                     "task_id": condition.task.id})
    return sent
