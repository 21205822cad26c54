"""The marketplace seams: where notices come from and where declarations go."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

MAX_TITLE = 500


@dataclass
class Notice:
    """A campaign notice as a source saw it; ``content_hash`` says whether it changed."""

    platform: str
    external_id: str
    title: str
    type: str = ""
    registration_start: datetime | None = None
    registration_end: datetime | None = None
    event_start: datetime | None = None
    event_end: datetime | None = None
    requirements: dict = field(default_factory=dict)
    source_url: str = ""
    text: str = ""  # the notice body, for date extraction and rule reading

    @property
    def content_hash(self) -> str:
        def iso(dt: datetime | None) -> str | None:
            return dt.isoformat() if dt else None

        canonical = json.dumps(
            {
                "title": self.title, "type": self.type,
                "registration": [iso(self.registration_start), iso(self.registration_end)],
                "event": [iso(self.event_start), iso(self.event_end)],
                "requirements": self.requirements, "text": self.text,
            },
            sort_keys=True, ensure_ascii=False, default=str,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class NoticeSource(Protocol):
    name: str
    platform: str

    def fetch(self) -> list[Notice]:
        """Return the notices the source lists now (raise on failure; the watcher retries)."""


@dataclass
class SubmissionItem:
    sku: str
    list_price: Decimal | None
    promo_price: Decimal | None
    promo_stock: int


@dataclass
class SubmitReceipt:
    reference: str
    status: str = "reviewing"  # reviewing, accepted, rejected, partial
    raw: dict = field(default_factory=dict)


@dataclass
class ItemResult:
    sku: str
    result: str  # accepted / rejected
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass
class ReviewStatus:
    status: str  # reviewing, accepted, rejected, partial
    items: list[ItemResult] = field(default_factory=list)
    raw: dict = field(default_factory=dict)


class Submitter(Protocol):
    """Enrols a declaration with a marketplace. ``idempotency_key`` comes from the intent
    (task, declaration version), so sending it twice enrols once."""

    capability: str  # api_submit, assisted_submit, read_only

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt: ...

    def status(self, reference: str) -> ReviewStatus: ...
