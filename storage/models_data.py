"""Tables of the data pool, the rules knowledge base and rejection learning (issue #9).

Products and qualification documents live in ``storage.models``; these tables extend them:
per-platform categories and item ids, the price history that "lowest price in N days"
needs, every version of each platform's rules, platform rejections and the rules proposed
from them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import Money, UTCDateTime, utcnow


def _time(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ProductCategory(SQLModel, table=True):
    """A product's category on one marketplace (Tmall's tree differs from JD's)."""

    __tablename__ = "product_categories"
    __table_args__ = (UniqueConstraint("sku", "platform", name="uq_product_category"),)
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, index=True)
    platform: str = Field(max_length=32)
    category: str = Field(max_length=128)


class PriceRecord(SQLModel, table=True):
    """A price a SKU sold at on a platform at a time (imported or from a submission)."""

    __tablename__ = "price_history"
    __table_args__ = (
        UniqueConstraint("sku", "platform", "observed_at", "source", name="uq_price_record"),
        Index("ix_price_history_lookup", "sku", "platform", "observed_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64)
    platform: str = Field(max_length=32)
    price: Decimal = Field(sa_column=Column(Money(), nullable=False))
    observed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    source: str = Field(default="import", max_length=32)  # import / submission / accepted


class RuleVersion(SQLModel, table=True):
    """One version of a platform's rules: the whole set, who changed it and when."""

    __tablename__ = "rule_versions"
    __table_args__ = (UniqueConstraint("platform", "version", name="uq_rule_version"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32, index=True)
    version: int = 1
    author: str = Field(max_length=128)
    source: str = Field(default="yaml", max_length=32)  # yaml / proposal / console
    checksum: str = Field(max_length=64)
    content: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _created()


class RejectionRecord(SQLModel, table=True):
    """A per-SKU platform rejection, classified, kept for learning and the report."""

    __tablename__ = "rejection_records"
    __table_args__ = (
        UniqueConstraint("task_id", "declaration_version", "sku", name="uq_rejection_line"),
        Index("ix_rejections_signature", "platform", "signature"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    task_id: int = Field(foreign_key="tasks.id")
    declaration_version: int = 1
    sku: str = Field(max_length=64)
    reason_code: str = Field(default="", max_length=64)
    reason_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    category: str = Field(default="other", max_length=32)  # price, stock, image, words …
    signature: str = Field(max_length=160)  # what counts as "the same reason"
    created_at: datetime = _created()


class RuleProposal(SQLModel, table=True):
    """A pre-check rule proposed from a recurring rejection; a rules owner accepts it."""

    __tablename__ = "rule_proposals"
    __table_args__ = (UniqueConstraint("platform", "signature", name="uq_rule_proposal"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    signature: str = Field(max_length=160)
    category: str = Field(max_length=32)
    reason_code: str = Field(default="", max_length=64)
    sample_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    occurrences: int = 0
    rule: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="proposed", max_length=16)  # proposed / accepted / dismissed
    task_id: int | None = Field(default=None, foreign_key="tasks.id")  # last task seen
    decided_by: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = _time()
    rule_version: int | None = None
    created_at: datetime = _created()


class DocumentAlert(SQLModel, table=True):
    """An expiry alert sent for a document (once per validity date)."""

    __tablename__ = "document_alerts"
    __table_args__ = (UniqueConstraint("document_id", "valid_until", name="uq_document_alert"),)
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="qualification_documents.id")
    valid_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime = _created()


class PlatformItem(SQLModel, table=True):
    """A product's own ids on one marketplace: the item (商品ID / 京东SKU) and, where the
    marketplace has one per variant, the SKU id. Bulk-registration files need them."""

    __tablename__ = "platform_items"
    __table_args__ = (UniqueConstraint("sku", "platform", name="uq_platform_item"),)
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, index=True)
    platform: str = Field(max_length=32)
    item_id: str = Field(default="", max_length=64)
    sku_id: str = Field(default="", max_length=64)
    updated_at: datetime = _created()
