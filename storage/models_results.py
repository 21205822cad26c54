"""Tables of the decisions feature, part 2: campaign results (ROI), competitors' prices, the
alert log (once per condition, muted there) and what was recommended when a team decided.

``campaign_results`` is keyed by (campaign, SKU, slot, day): a re-import of the same row
updates it. ``sku``, ``slot`` and ``day`` are ``""`` when the file gives a campaign's total
(no SKU, no resource slot, no date) — empty strings, not NULLs, so the unique key holds on
PostgreSQL too. ``day`` is the team's calendar day as ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import Money, UTCDateTime, utcnow


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _money() -> Any:
    return Field(default=Decimal("0.00"), sa_column=Column(Money(), nullable=False))


class CampaignResult(SQLModel, table=True):
    """What a campaign brought: exposure, clicks, orders, units, GMV and fees, per SKU, slot
    and day when the source says so."""

    __tablename__ = "campaign_results"
    __table_args__ = (
        UniqueConstraint("campaign_id", "sku", "slot", "day", name="uq_campaign_result"),
        Index("ix_campaign_results_sku", "platform", "sku", "day"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    task_id: int | None = Field(default=None, foreign_key="tasks.id")
    platform: str = Field(max_length=32)
    sku: str = Field(default="", max_length=64)
    slot: str = Field(default="", max_length=128)  # 资源位
    day: str = Field(default="", max_length=10)
    exposure: int = 0
    clicks: int = 0
    orders: int = 0
    units: int = 0
    gmv: Decimal = _money()
    fees: Decimal = _money()
    source: str = Field(default="import", max_length=128)
    imported_at: datetime = _created()


class CompetitorPrice(SQLModel, table=True):
    """The latest price a competitor sells one of our SKUs at on a platform."""

    __tablename__ = "competitor_prices"
    __table_args__ = (
        UniqueConstraint("platform", "sku", "competitor", name="uq_competitor_price"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    sku: str = Field(max_length=64, index=True)
    competitor: str = Field(max_length=128)
    price: Decimal = _money()
    url: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    seen_at: datetime = _created()
    source: str = Field(default="import", max_length=128)


class AlertLog(SQLModel, table=True):
    """An alert decided: one row per condition (``key`` unique, written in the transaction
    that enqueues the card), and where a person muted its subject."""

    __tablename__ = "alert_log"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=256)
    kind: str = Field(max_length=32)  # competitor_price, stock_cross
    subject: str = Field(max_length=200, index=True)  # what a mute silences
    task_id: int | None = Field(default=None, foreign_key="tasks.id")
    platform: str = Field(default="", max_length=32)
    sku: str = Field(default="", max_length=64)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _created()
    muted_by: str | None = Field(default=None, max_length=128)
    muted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                    nullable=True))


class RecommendationLog(SQLModel, table=True):
    """What PromoPilot recommended when the team decided on a task (it left ``new``), to
    compare with the campaign's results later."""

    __tablename__ = "recommendation_log"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", unique=True)
    verdict: str = Field(max_length=16)  # apply, caution, skip
    score: int = 0
    weights_version: str = Field(default="", max_length=64)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    decided: str = Field(default="", max_length=32)  # what the team did: claim, skip …
    created_at: datetime = _created()
