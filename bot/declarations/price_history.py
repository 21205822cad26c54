"""Prices per SKU and platform over time, to answer "the lowest price in the last N days".

Platforms judge a promo price against the lowest price the item sold at recently. Prices
come from imports (the shop's own export) and from our accepted submissions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, select

from storage.models_data import PriceRecord
from storage.types import utcnow


def record(session: Session, sku: str, platform: str, price: Decimal, at: datetime | None = None,
           source: str = "import") -> bool:
    """Store one observation; the same (sku, platform, time, source) twice is stored once."""
    at = at or utcnow()
    exists = session.exec(select(PriceRecord.id).where(
        PriceRecord.sku == sku, PriceRecord.platform == platform,
        PriceRecord.observed_at == at, PriceRecord.source == source)).first()
    if exists:
        return False
    session.add(PriceRecord(sku=sku, platform=platform, price=Decimal(price), observed_at=at,
                            source=source))
    session.flush()
    return True


def lowest(session: Session, sku: str, platform: str, days: int,
           now: datetime | None = None) -> Decimal | None:
    """The lowest recorded price within ``days`` before ``now``; ``None`` without history."""
    since = (now or utcnow()) - timedelta(days=days)
    prices = session.exec(select(PriceRecord.price).where(
        PriceRecord.sku == sku, PriceRecord.platform == platform,
        PriceRecord.observed_at >= since)).all()
    return min(prices) if prices else None


def lowest_many(session: Session, skus: list[str], platform: str, days: int,
                now: datetime | None = None) -> dict[str, Decimal]:
    """``lowest`` for many SKUs in one query (auto-fill and the pre-check)."""
    if not skus:
        return {}
    since = (now or utcnow()) - timedelta(days=days)
    rows = session.exec(select(PriceRecord.sku, PriceRecord.price).where(
        PriceRecord.sku.in_(skus), PriceRecord.platform == platform,
        PriceRecord.observed_at >= since)).all()
    # Money is text on SQLite (MIN would compare strings): take the minimum exactly here.
    out: dict[str, Decimal] = {}
    for sku, price in rows:
        if sku not in out or price < out[sku]:
            out[sku] = price
    return out
