"""Campaign results: what each campaign brought (exposure, clicks, orders, units, GMV, fees,
per SKU, resource slot and day when the source says so), imported from a team's CSV/XLSX
(``promopilot import results FILE``) or an HTTP-JSON source (``… import results URL``).

The file is read by the data pool's sheet reader (``bot.declarations.sheets``) with the
header names of ``columns/headers.yaml`` (``results``: 平台, 活动ID, 商品编码, 资源位, 日期, 曝光,
点击, 订单数, 件数, 成交额/GMV, 费用 …). A JSON source gives a list of objects (or
``{"results": [...]}``) with the English field names. Unlike the pool's imports, results are
taken row by row: **one bad row is rejected with its reason** (row, column, value) and the
others go in, in one transaction. A row names its campaign by the marketplace's campaign id
(``campaigns.external_id``) or by our task number (``#12``). The same (campaign, SKU, slot,
day) imported again replaces the earlier numbers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.core.platforms import platform_code
from bot.declarations import headers as hdr
from bot.declarations.sheets import ImportReport, Progress, RowError, parse_cell, parse_rows
from storage.db import Database
from storage.models import Campaign, Task
from storage.models_results import CampaignResult

log = logging.getLogger(__name__)
COUNTS = ("exposure", "clicks", "orders", "units")
MONEY = ("gmv", "fees")
_TASK_REF = re.compile(r"#?(\d{1,9})")


@dataclass(frozen=True)
class Found:
    campaign: Campaign
    task_id: int | None


def find_campaign(session: Session, platform: str, ref: str,
                  cache: dict | None = None) -> Found | None:
    """The campaign a row names: the marketplace's campaign id first, else our task number."""
    cache = cache if cache is not None else {}
    if (platform, ref) in cache:
        return cache[(platform, ref)]
    campaign = session.exec(select(Campaign).where(Campaign.platform == platform,
                                                   Campaign.external_id == ref)).first()
    task = None
    if campaign is None and (m := _TASK_REF.fullmatch(ref.strip())):
        task = session.get(Task, int(m.group(1)))
        candidate = session.get(Campaign, task.campaign_id) if task else None
        campaign = candidate if candidate is not None and candidate.platform == platform else None
    if campaign is not None and task is None:
        task = session.exec(select(Task).where(Task.campaign_id == campaign.id)
                            .order_by(Task.id)).first()
    found = Found(campaign, task.id if task else None) if campaign is not None else None
    cache[(platform, ref)] = found
    return found


def _check(session: Session, number: int, record: dict, report: ImportReport, cache: dict,
           seen: dict, tz: ZoneInfo) -> dict | None:
    """The row as a ``CampaignResult``'s values, or None with its reason in ``report``."""
    def refuse(field: str, key: str, **params: Any) -> None:
        value = record.get(field)
        report.errors.append(RowError(number, report.header(field), str(value or "")[:40],
                                      key, params))

    code = platform_code(record["platform"])
    if code is None:
        refuse("platform", "imp.unknown_platform")
        return None
    found = find_campaign(session, code, record["campaign"], cache)
    if found is None:
        refuse("campaign", "results.unknown_campaign", platform=code)
        return None
    counts = {k: record.get(k) or 0 for k in COUNTS}
    money = {k: record.get(k) or 0 for k in MONEY}
    if money["gmv"] > 0 and counts["units"] == 0:
        refuse("gmv", "results.gmv_without_units")
        return None
    if counts["orders"] > counts["units"] > 0:
        refuse("orders", "results.orders_over_units", units=counts["units"])
        return None
    if counts["exposure"] and counts["clicks"] > counts["exposure"]:
        refuse("clicks", "results.clicks_over_exposure", exposure=counts["exposure"])
        return None
    day = record["date"].astimezone(tz).date().isoformat() \
        if record.get("date") else ""
    key = (found.campaign.id, record.get("sku") or "", record.get("slot") or "", day)
    if key in seen:
        refuse("campaign", "results.duplicate", row=seen[key])
        return None
    seen[key] = number
    return {"campaign_id": found.campaign.id, "task_id": found.task_id, "platform": code,
            "sku": key[1], "slot": key[2], "day": day, **counts, **money}


def store(session: Session, values: dict, source: str) -> bool:
    """Insert or replace one result row; True when it is new."""
    row = session.exec(select(CampaignResult).where(
        CampaignResult.campaign_id == values["campaign_id"], CampaignResult.sku == values["sku"],
        CampaignResult.slot == values["slot"], CampaignResult.day == values["day"])).first()
    created = row is None
    row = row or CampaignResult(campaign_id=values["campaign_id"], platform=values["platform"])
    for name, value in values.items():
        setattr(row, name, value)
    row.source = source[:128]
    session.add(row)
    return created


def _write(db: Database, records: Iterable[tuple[int, dict]], report: ImportReport,
           source: str, tz: ZoneInfo) -> ImportReport:
    with db.session() as session:  # one transaction; the bad rows are only reported
        cache: dict = {}
        seen: dict = {}
        checked = [(n, v) for n, r in records if (v := _check(session, n, r, report, cache,
                                                                seen, tz)) is not None]
        for _, values in checked:
            if store(session, values, source):
                report.created += 1
            else:
                report.updated += 1
            report.imported += 1
    report.errors.sort(key=lambda e: (e.row, e.column))
    log.info("results import", extra={"source": source[:200], "rows": report.rows,
                                      "imported": report.imported,
                                      "rejected": report.bad_rows})
    return report


def import_file(db: Database, path: Path, *, timezone: str = "Asia/Shanghai",
                progress: Progress | None = None) -> ImportReport:
    """Import a results file; the good rows go in, every bad one is in ``report.errors``."""
    records, report = parse_rows(path, "results", ZoneInfo(timezone), progress)
    if any(e.row == 0 for e in report.errors):
        return report  # the file as a whole is unusable (no header, unreadable)
    return _write(db, records, report, f"file:{path.name}", ZoneInfo(timezone))


def parse_items(items: Any, kind: str, tz: ZoneInfo) -> tuple[list[tuple[int, dict]],
                                                               ImportReport]:
    """JSON objects read as rows of a ``kind`` file (``results``, ``competitor_prices``): each
    field by its English name or any header name of ``columns/headers.yaml``; item *n* is
    "row n". A payload that is not a list (or ``{"<kind>": [...]}``, ``{"items": [...]}``)
    is one file-level error."""
    report = ImportReport()
    if isinstance(items, dict):
        items = items.get(kind, items.get("results", items.get("items")))
    if not isinstance(items, list):
        report.errors.append(RowError(0, "-", "", "results.bad_payload", {}))
        return [], report
    columns = hdr.columns_for(kind)
    report.headers = {c.name: c.name for c in columns}
    good = []
    for number, item in enumerate(items, start=1):
        report.rows += 1
        if not isinstance(item, dict):
            report.errors.append(RowError(number, "-", str(item)[:40], "results.bad_item", {}))
            continue
        keys = {hdr.norm(k): v for k, v in item.items()}
        record, bad = {}, False
        for column in columns:
            value = next((keys[hdr.norm(a)] for a in (column.name, *column.aliases)
                          if hdr.norm(a) in keys), None)
            parsed, error, params = parse_cell(column, value, tz)
            if error:
                bad = True
                report.errors.append(RowError(number, column.name, str(value or "")[:40],
                                              error, params))
            record[column.name] = parsed
        if not bad:
            good.append((number, record))
    return good, report


def import_items(db: Database, items: Any, source: str, *,
                 timezone: str = "Asia/Shanghai") -> ImportReport:
    """Import results an HTTP-JSON source returned (already fetched)."""
    records, report = parse_items(items, "results", ZoneInfo(timezone))
    if any(e.row == 0 for e in report.errors):
        return report
    return _write(db, records, report, source, ZoneInfo(timezone))


def results_of(session: Session, campaign_ids: list[int]) -> list[CampaignResult]:
    if not campaign_ids:
        return []
    return list(session.exec(select(CampaignResult).where(
        CampaignResult.campaign_id.in_(campaign_ids)).order_by(CampaignResult.id)))
