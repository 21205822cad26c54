"""Prices per SKU and platform over time, to answer "the lowest price in the last N days".

Platforms judge a promo price against the lowest price the item sold at recently. Prices
come from imports (the shop's own export) and from our accepted submissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, select

from storage.models_data import PriceRecord
from storage.types import utcnow

CHUNK = 5000  # SKUs per query


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
    return {sku: low.price for sku, low in lows(session, skus, days, platform=platform,
                                                 until=now).items()}


@dataclass(frozen=True)
class Low:
    """The lowest price a SKU sold at in a window: how much, where and when."""

    price: Decimal
    platform: str
    observed_at: datetime


def lows(session: Session, skus: list[str], days: int, *, platform: str | None,
         until: datetime | None = None) -> dict[str, Low]:
    """The lowest price per SKU in the ``days`` before ``until`` (default: now) — on one
    platform, or on every platform when ``platform`` is ``None`` (全网最低价)."""
    end = until or utcnow()
    out: dict[str, Low] = {}
    for start in range(0, len(skus), CHUNK):  # far below every driver's parameter limit
        query = select(PriceRecord.sku, PriceRecord.price, PriceRecord.platform,
                       PriceRecord.observed_at).where(
            PriceRecord.sku.in_(skus[start:start + CHUNK]),
            PriceRecord.observed_at >= end - timedelta(days=days), PriceRecord.observed_at <= end)
        if platform is not None:
            query = query.where(PriceRecord.platform == platform)
        # Money is text on SQLite (MIN would compare strings): take the minimum exactly here.
        for sku, price, where, at in session.exec(query).all():
            if sku not in out or price < out[sku].price:
                out[sku] = Low(price, where, at)
    return out
