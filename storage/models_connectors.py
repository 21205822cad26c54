"""Tables of the marketplace connectors (docs/connectors.md).

- ``platform_credentials``: one shop's credentials on one marketplace, a Fernet token
  (``PROMOPILOT_SECRET_KEY``); never the plain values.
- ``connector_states``: each connector's health (last call, last error), so
  ``promopilot platforms`` and every replica see what the server did.
- ``connector_enrolments``: the ledger that maps PromoPilot's idempotency key to the
  platform's own reference (request id, trace code, activity ids), so a retry never
  enrols twice.
- ``platform_candidates``: the platform's eligibility answer per campaign and SKU (the
  first compliance gate, shown by the pre-check).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import Money, UTCDateTime, utcnow


def _time() -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


def _now() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class PlatformCredential(SQLModel, table=True):
    __tablename__ = "platform_credentials"
    __table_args__ = (UniqueConstraint("platform", "shop", name="uq_platform_credential"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    shop: str = Field(max_length=64)
    secret: str = Field(sa_column=Column(Text, nullable=False))  # Fernet token of a JSON object
    created_at: datetime = _now()
    updated_at: datetime = _now()


class ConnectorState(SQLModel, table=True):
    __tablename__ = "connector_states"
    name: str = Field(primary_key=True, max_length=128)
    platform: str = Field(default="", max_length=32)
    shop: str = Field(default="", max_length=64)
    last_call: str = Field(default="", max_length=64)  # the operation
    last_call_at: datetime | None = _time()
    last_ok_at: datetime | None = _time()
    last_error: str | None = Field(default=None, sa_column=Column(Text))  # English, for logs
    last_error_key: str = Field(default="", max_length=64)  # conn.err.* (shown per reader)
    last_error_params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    last_error_at: datetime | None = _time()
    calls: int = 0
    failures: int = 0
    ok: bool = True


class ConnectorEnrolment(SQLModel, table=True):
    __tablename__ = "connector_enrolments"
    __table_args__ = (UniqueConstraint("connector", "idempotency_key",
                                       name="uq_connector_enrolment"),)
    id: int | None = Field(default=None, primary_key=True)
    connector: str = Field(max_length=128)
    idempotency_key: str = Field(max_length=128)
    campaign_id: str = Field(default="", max_length=128)
    reference: str = Field(default="", max_length=256)  # the platform's own reference
    # sending (answer not yet known), reviewing, accepted, rejected, partial, cancelled
    status: str = Field(default="sending", max_length=16)
    items: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    results: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    raw: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _now()
    updated_at: datetime = _now()


class PlatformCandidate(SQLModel, table=True):
    __tablename__ = "platform_candidates"
    __table_args__ = (UniqueConstraint("platform", "campaign_id", "sku",
                                       name="uq_platform_candidate"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    campaign_id: str = Field(max_length=128)
    sku: str = Field(max_length=64)
    connector: str = Field(default="", max_length=128)
    eligible: bool = True
    reason_code: str | None = Field(default=None, max_length=64)
    reason_text: str | None = Field(default=None, sa_column=Column(Text))
    max_price: Decimal | None = Field(default=None, sa_column=Column(Money(), nullable=True))
    min_stock: int | None = None
    checked_at: datetime = _now()
