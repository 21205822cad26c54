"""The ports: what the domain needs from the outside world, implemented in ``adapters/``.

Notices come from a ``NoticeSource``, declarations go to a ``Submitter``, cards reach people
through a ``ChatAdapter``, cost and stock come from a ``CostSource``. The domain imports these
names from here and never an adapter module, so dependencies point inward.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the core hands cards through; it never builds or reads one
    from cards.model import Card

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



WAITING = "waiting"  # a receipt status: handed to a person or a robot, waiting for them
HUMAN_CHANNELS = frozenset({"excel", "assisted"})  # channels where a person does the enrolment


class SubmissionChannels(Protocol):
    """The submission channels a deployment configured, per platform, in fallback order."""

    def chain(self, platform: str) -> list[str]:
        """Channel names to try for this platform, first to last."""

    def get(self, channel: str, platform: str) -> Submitter | None:
        """The channel's submitter, or None when it is not set up for this platform."""


# -- marketplace connectors (docs/connectors.md) --------------------------------------------

CAPABILITIES = ("api_submit", "assisted_submit", "read_only")
OPERATIONS = ("list_campaigns", "eligible_products", "enrol", "enrolment_status", "cancel")
INVITATION = "定向邀约"  # the notice type of a platform's invitation to one shop


@dataclass
class PlatformCampaign:
    """A campaign (or an invitation to the shop) as the marketplace's open API lists it."""

    external_id: str
    title: str
    type: str = ""
    registration_start: datetime | None = None
    registration_end: datetime | None = None
    event_start: datetime | None = None
    event_end: datetime | None = None
    requirements: dict = field(default_factory=dict)
    url: str = ""
    text: str = ""
    invitation: bool = False  # addressed to this shop (定向邀约), not open to every seller

    def notice(self, platform: str) -> Notice:
        return Notice(platform=platform, external_id=self.external_id, title=self.title,
                      type=INVITATION if self.invitation else self.type,
                      registration_start=self.registration_start,
                      registration_end=self.registration_end, event_start=self.event_start,
                      event_end=self.event_end, requirements=dict(self.requirements),
                      source_url=self.url, text=self.text)


@dataclass
class Candidate:
    """The platform's answer for one SKU: may it join, and within which limits."""

    sku: str
    eligible: bool
    reason_code: str | None = None
    reason_text: str | None = None
    max_price: Decimal | None = None  # the highest activity price the platform allows
    min_stock: int | None = None  # the least activity stock it asks for


@dataclass
class Enrolment:
    """An enrolment as the platform knows it: its own reference (request id, trace code,
    activity ids), the overall status and one ``ItemResult`` per SKU once decided."""

    reference: str
    status: str = "reviewing"  # reviewing, accepted, rejected, partial
    items: list[ItemResult] = field(default_factory=list)
    raw: dict = field(default_factory=dict)


class Connector(Protocol):
    """A marketplace's open platform for one shop. ``operations`` says which of
    ``OPERATIONS`` it offers; ``capability`` is one of ``CAPABILITIES``. Every connector is
    also a ``NoticeSource`` (its campaigns → notices) and a ``Submitter`` (enrol, status)."""

    name: str
    platform: str
    shop: str
    capability: str
    operations: frozenset[str]

    def list_campaigns(self) -> list[PlatformCampaign]: ...

    def eligible_products(self, campaign_id: str, skus: list[str]) -> list[Candidate]: ...

    def enrol(self, campaign_id: str, items: list[SubmissionItem],
              idempotency_key: str) -> Enrolment: ...

    def enrolment_status(self, reference: str) -> Enrolment: ...

    def cancel(self, reference: str) -> None: ...


class ChatAdapter(Protocol):
    """Posts carry ``key``: the outbox's idempotency key for this one message, recorded
    before the post. A post with a key the platform saw before shows nothing new where the
    platform allows it (Feishu ``uuid``, DingTalk ``outTrackId``, Slack message metadata
    found again with ``conversations.history``). ``unsure_since`` is set when an earlier
    attempt with this key started then and its outcome is unknown (the process died, the
    answer was lost): the adapter checks before posting again where it has to."""

    chat: str  # "web", "slack", "feishu", "dingtalk"

    async def post_card(self, channel_id: str, card: Card, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        """Post a card; return the platform's message reference (to update it later)."""

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        """Replace the card shown in an earlier message."""

    async def post_text(self, channel_id: str, text: str, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        """Say plain text in a channel."""

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None, *, key: str = "",
                           unsure_since: datetime | None = None) -> None:
        """Tell one person something only they see (DM or ephemeral)."""


class ChatDeliveryError(Exception):
    """A delivery failed; ``retry_after`` (seconds) when the platform said when to retry."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 permanent: bool = False, message_gone: bool = False,
                 not_sent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        # The message to update no longer exists (deleted, recalled): post a fresh card.
        self.message_gone = message_gone
        # The platform certainly showed nothing (and may keep the key): retry with a new key.
        self.not_sent = not_sent


@dataclass
class StockCost:
    """One SKU's cost and stock as the ERP/WMS reports them (money as Decimal)."""

    sku: str
    cost: Decimal | None = None
    stock: int | None = None
    in_transit: int | None = None
    safety_stock: int | None = None


@dataclass
class RowRejected:
    """A row a cost source could not use: ``ref`` names it (its SKU, else where it was),
    ``key`` and ``params`` say why in the catalogs' words (``erp.row.*``, ``erp.file.*``)."""

    ref: str
    key: str
    params: dict = field(default_factory=dict)


class CostSource(Protocol):
    """Cost, stock and safety stock per SKU from an ERP/WMS (HTTP-JSON, CSV/XLSX drops).
    After a fetch, ``rejected`` lists the rows it could not read (the others still count);
    ``interval`` (seconds between syncs) and ``alert_after`` (failures before ops hears)."""

    name: str
    kind: str
    rejected: list[RowRejected]

    def fetch(self) -> list[StockCost]:
        """Return the SKUs the source reports now (raise on failure; the sync backs off)."""
