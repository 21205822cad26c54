"""The sandbox marketplace: a feed of notices, publishing, registration and async review.

Served by PromoPilot itself at ``/sandbox/{platform}/…``; it is the demo and the model a
real connector follows (feed → HTTP-JSON watcher; registration → ``Submitter``). On in the
local demo; elsewhere only with ``PROMOPILOT_SANDBOX_ENABLED=true``, and then publishing and
registering take a credential (the app's gate) and ``writer`` (who may change the feed).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from sqlmodel import select

from adapters.platforms.sandbox.seed import PLATFORMS
from storage.db import Database
from storage.models import SandboxNotice, SandboxRegistration
from storage.types import utcnow

log = logging.getLogger(__name__)


def _platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise HTTPException(404, f"unknown sandbox platform {platform!r}; "
                                 f"try one of {', '.join(PLATFORMS)}")
    return platform


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


MAX_NOTICE = 256 * 1024  # bytes of JSON a published notice may take


def _bad_value(value: Any, path: str = "notice") -> str | None:
    """Where ``value`` holds something a JSON feed cannot serve (NaN, ±Infinity, a lone
    surrogate), named by its path; None when it is all servable."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is {value!r}; JSON has no NaN or Infinity"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path} holds a lone surrogate (not valid Unicode text)"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _bad_value(key, f"{path} key") or _bad_value(item, f"{path}.{key}")
            if found:
                return found[:300]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _bad_value(item, f"{path}[{index}]")
            if found:
                return found
    return None


def publishable(notice: dict) -> str | None:
    """Why the feed could not serve this notice (→ 422), or None when it can."""
    problem = _bad_value(notice)
    if problem:
        return problem
    notice_id = notice.get("id")
    if notice_id is not None and (isinstance(notice_id, bool | dict | list)
                                  or not 0 < len(str(notice_id)) <= 128):
        return "id must be a string or number of 1–128 characters"
    if not isinstance(notice.get("title"), str) or not notice["title"].strip():
        return "title is required (a non-empty string)"
    if len(json.dumps(notice, ensure_ascii=False).encode()) > MAX_NOTICE:
        return f"notice is larger than {MAX_NOTICE // 1024} KB"
    return None


def _count(value: Any) -> int:
    number = _money(value)
    return int(number) if number is not None and number.is_finite() else 0


def review_items(requirements: dict, items: list[dict]) -> list[dict]:
    """The sandbox's own rules: minimum discount and minimum promo stock per SKU (a value
    that is not a number counts as none)."""
    requirements = requirements if isinstance(requirements, dict) else {}
    min_discount = _money(requirements.get("min_discount") or 0) or Decimal(0)
    min_discount = min_discount if min_discount.is_finite() else Decimal(0)
    min_stock = _count(requirements.get("min_stock"))
    results = []
    for item in items:
        item = item if isinstance(item, dict) else {}
        list_price, promo = _money(item.get("list_price")), _money(item.get("promo_price"))
        list_price = list_price if list_price is not None and list_price.is_finite() else None
        promo = promo if promo is not None and promo.is_finite() else None
        stock = _count(item.get("promo_stock"))
        result = {"sku": item.get("sku"), "result": "accepted"}
        if list_price is None or promo is None or promo <= 0:
            result |= {"result": "rejected", "reason_code": "PRICE_MISSING",
                       "reason_text": "缺少原价或活动价"}
        elif promo > list_price * (1 - min_discount):
            result |= {"result": "rejected", "reason_code": "DISCOUNT_TOO_SMALL",
                       "reason_text": f"活动价需至少低于原价{min_discount:.0%}"}
        elif stock < min_stock:
            result |= {"result": "rejected", "reason_code": "STOCK_BELOW_MINIMUM",
                       "reason_text": f"活动库存不得少于{min_stock}件"}
        results.append(result)
    return results


def overall(results: list[dict]) -> str:
    verdicts = {r["result"] for r in results}
    if verdicts == {"accepted"}:
        return "accepted"
    if verdicts == {"rejected"} or not verdicts:
        return "rejected"
    return "partial"


def _anyone() -> None:
    return None


def build_router(db: Database, review_seconds: float = 3.0,
                 writer: Callable[..., None] = _anyone) -> APIRouter:
    """``writer`` is a FastAPI dependency run before publishing or registering; it raises
    (401/403) for a caller who may not."""
    router = APIRouter(prefix="/sandbox", tags=["sandbox marketplace"])

    @router.get("/{platform}/notices")
    def feed(platform: str, request: Request) -> dict:
        _platform(platform)
        with db.session() as session:
            rows = session.exec(select(SandboxNotice).where(SandboxNotice.platform == platform)
                                .order_by(SandboxNotice.id)).all()
        base = str(request.base_url).rstrip("/")
        servable = []
        for row in rows:  # one stored notice the feed cannot serve never takes the feed down
            problem = publishable(row.body) if isinstance(row.body, dict) else "not an object"
            if problem:
                log.warning("sandbox notice not served", extra={
                    "platform": platform, "notice_id": row.notice_id, "problem": problem})
                continue
            servable.append(row)
        notices = [{**row.body, "url": row.body.get("url")
                    or f"{base}/sandbox/{platform}/notices/{row.notice_id}"} for row in servable]
        return {"code": 0, "data": {"platform": platform, "notices": notices}}

    @router.get("/{platform}/notices/{notice_id}")
    def one_notice(platform: str, notice_id: str) -> dict:
        with db.session() as session:
            row = session.exec(select(SandboxNotice).where(
                SandboxNotice.platform == _platform(platform),
                SandboxNotice.notice_id == notice_id)).first()
        if row is None:
            raise HTTPException(404, "notice not found")
        problem = publishable(row.body) if isinstance(row.body, dict) else "not an object"
        if problem:
            raise HTTPException(409, f"stored notice cannot be served ({problem}); "
                                     "publish it again")
        return row.body

    @router.post("/{platform}/notices", status_code=201, dependencies=[Depends(writer)])
    def publish(platform: str, notice: dict = Body(...)) -> dict:
        """Publish (or, with an existing id, change) a notice on the sandbox feed."""
        _platform(platform)
        problem = publishable(notice)
        if problem:  # refused here, or every later GET of the feed would fail on it
            log.info("sandbox notice refused", extra={"platform": platform,
                                                      "problem": problem})
            raise HTTPException(422, f"notice refused: {problem}")
        notice_id = str(notice.get("id") or f"SBX-{secrets.token_hex(4)}")
        notice["id"] = notice_id
        with db.session() as session:
            row = session.exec(select(SandboxNotice).where(
                SandboxNotice.platform == platform,
                SandboxNotice.notice_id == notice_id)).first()
            if row is None:
                row = SandboxNotice(platform=platform, notice_id=notice_id, body=notice)
            else:
                row.body = notice
            session.add(row)
        return {"id": notice_id}

    @router.post("/{platform}/registrations", dependencies=[Depends(writer)])
    def register(platform: str, payload: dict = Body(...)) -> dict:
        """Enrol items in a campaign; the same idempotency key returns the same enrolment."""
        _platform(platform)
        key = str(payload.get("idempotency_key") or "")
        campaign_id = str(payload.get("campaign_id") or "")
        items = payload.get("items")
        if not key or not campaign_id or not isinstance(items, list) or not items:
            raise HTTPException(422, "idempotency_key, campaign_id and items are required")
        with db.session() as session:
            existing = session.exec(select(SandboxRegistration).where(
                SandboxRegistration.platform == platform,
                SandboxRegistration.idempotency_key == key)).first()
            if existing:
                return {"registration_id": existing.id, "status": existing.status,
                        "duplicate": True}
            notice = session.exec(select(SandboxNotice).where(
                SandboxNotice.platform == platform,
                SandboxNotice.notice_id == campaign_id)).first()
            if notice is None:
                raise HTTPException(404, f"campaign {campaign_id} not found")
            row = SandboxRegistration(
                platform=platform, idempotency_key=key, campaign_id=campaign_id,
                items=items, review_at=utcnow() + timedelta(seconds=review_seconds))
            session.add(row)
            session.flush()
            log.info("sandbox registration", extra={"platform": platform, "key": key,
                                                     "registration": row.id})
            return {"registration_id": row.id, "status": row.status, "duplicate": False}

    @router.get("/{platform}/registrations/{registration_id}")
    def status(platform: str, registration_id: int) -> dict:
        with db.session() as session:
            row = session.get(SandboxRegistration, registration_id)
            if row is None or row.platform != _platform(platform):
                raise HTTPException(404, "registration not found")
            if row.status == "reviewing" and utcnow() >= row.review_at:
                notice = session.exec(select(SandboxNotice).where(
                    SandboxNotice.platform == platform,
                    SandboxNotice.notice_id == row.campaign_id)).first()
                requirements = (notice.body.get("requirements") or {}) if notice else {}
                row.results = review_items(requirements, row.items)
                row.status = overall(row.results)
                session.add(row)
            return {"registration_id": row.id, "status": row.status, "items": row.results}

    return router


def seed(db: Database, notices: dict[str, list[dict]]) -> int:
    """Put notices on the sandbox feeds unless they are there already."""
    added = 0
    with db.session() as session:
        for platform, items in notices.items():
            for body in items:
                exists = session.exec(select(SandboxNotice.id).where(
                    SandboxNotice.platform == platform,
                    SandboxNotice.notice_id == body["id"])).first()
                if not exists:
                    session.add(SandboxNotice(platform=platform, notice_id=body["id"],
                                              body=body))
                    added += 1
    return added
