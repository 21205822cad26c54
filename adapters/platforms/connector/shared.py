"""What several platform modules share beyond the base: Beijing time as the Chinese open
platforms write it, the tag an activity name carries so PromoPilot finds its own activity
again, the overall verdict of per-SKU results, the answer's Retry-After, HTTP status
mapping, the campaign a declaration enrols in, and grouping SKUs by the platform's item."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from sqlmodel import select

from adapters.platforms.connector.errors import (
    ConnectorError,
    InvalidParam,
    Malformed,
    RateLimited,
    Unavailable,
)
from bot.core.ports import ItemResult, SubmissionItem
from storage.models import Campaign

GMT8 = timezone(timedelta(hours=8), "GMT+8")  # the open platforms' own clock (no DST)
STAMP = "%Y-%m-%d %H:%M:%S"


def beijing(dt: datetime | None = None) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in GMT+8, as JOS, TOP and 抖店 timestamps are written."""
    moment = dt or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(GMT8).strftime(STAMP)


def from_beijing(value: Any, platform: str) -> datetime | None:
    """A platform's ``yyyy-MM-dd HH:mm:ss`` (GMT+8) or unix seconds as aware UTC."""
    if value in (None, "", 0, "0"):
        return None
    text = str(value).strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        return datetime.strptime(text[:19].replace("/", "-").replace("T", " "),
                                 STAMP).replace(tzinfo=GMT8).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Malformed(f"not a time: {text[:40]!r}", platform=platform) from None


def tag(key: str) -> str:
    """The mark an activity's name carries (PP + 8 hex of PromoPilot's idempotency key)."""
    return "PP" + hashlib.sha1(key.encode()).hexdigest()[:8].upper()


def overall(items: list[ItemResult]) -> str:
    verdicts = {i.result for i in items}
    if not verdicts or verdicts <= {"rejected"}:
        return "rejected"
    return "accepted" if verdicts == {"accepted"} else "partial"


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def http_failure(platform: str, api: str, response: httpx.Response) -> ConnectorError | None:
    """429 and 5xx as retryable errors (the platform's wait honoured); else None."""
    if response.status_code == 429:
        return RateLimited(f"HTTP 429 on {api}", platform=platform, code=429,
                           retry_after=retry_after(response))
    if response.status_code >= 500:
        return Unavailable(f"HTTP {response.status_code} on {api}", platform=platform,
                           code=response.status_code, retry_after=retry_after(response))
    return None


def json_body(platform: str, api: str, response: httpx.Response) -> dict:
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        raise Malformed(f"{api}: not JSON (HTTP {response.status_code})",
                        platform=platform) from None
    if not isinstance(body, dict):
        raise Malformed(f"{api}: not an object", platform=platform)
    return body


def campaign(connector: Any, campaign_id: str) -> Campaign:
    """The campaign enrolled in, with its event window (the activity's start and end)."""
    with connector.reading() as session:
        row = session.exec(select(Campaign).where(Campaign.platform == connector.platform,
                                                  Campaign.external_id == campaign_id)).first()
    if row is None or row.event_start is None or row.event_end is None:
        raise InvalidParam(f"campaign {campaign_id} has no event start and end",
                           platform=connector.platform)
    return row


def platform_text(exc: ConnectorError) -> str:
    """What the platform itself said (its message), for a per-SKU reason."""
    return str(getattr(exc, "platform_text", "") or exc.detail or exc.kind)[:500]


def by_item(items: list[SubmissionItem], ids: dict[str, tuple[str, str]]
            ) -> dict[str, list[tuple[SubmissionItem, str]]]:
    """Mapped SKUs grouped by the platform's item (商品) id, with each one's SKU id."""
    groups: dict[str, list[tuple[SubmissionItem, str]]] = defaultdict(list)
    for item in items:
        if item.sku in ids:
            item_id, sku_id = ids[item.sku]
            groups[item_id].append((item, sku_id))
    return dict(groups)
