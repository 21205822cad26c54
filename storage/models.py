"""The tables. One class per table; relations by id so each row stays a small projection.

Money columns use ``Money`` (Decimal), time columns ``UTCDateTime`` (aware UTC).
Later features add their own tables in their own modules next to this one.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import Money, UTCDateTime, utcnow


def _time(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _json(default: Any = dict) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def _money(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Money(), nullable=nullable))


class Platform(SQLModel, table=True):
    """A marketplace (tmall, jd, douyin, pdd, …) and how we can submit to it."""

    __tablename__ = "platforms"
    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    submit_mode: str = Field(default="api_submit", max_length=32)  # api/assisted/read_only


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=128)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class Campaign(SQLModel, table=True):
    """A campaign notice as the marketplace published it (latest version)."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_campaign_external"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(foreign_key="platforms.code", max_length=32, index=True)
    external_id: str = Field(max_length=128)
    title: str = Field(sa_column=Column(Text, nullable=False))
    type: str = Field(default="", max_length=64)
    registration_start: datetime | None = _time()
    registration_end: datetime | None = _time(index=True)
    event_start: datetime | None = _time()
    event_end: datetime | None = _time()
    requirements: dict = _json()
    source_url: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    content_hash: str = Field(max_length=64)
    version: int = 1
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Task(SQLModel, table=True):
    """One declaration job: one campaign for one team. ``state`` follows bot.core.lifecycle."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("campaign_id", "team_id", name="uq_task_campaign_team"),
        Index("ix_tasks_state_deadline", "state", "deadline"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    team_id: int = Field(foreign_key="teams.id")
    state: str = Field(default="new", max_length=32)
    claimed_by: int | None = Field(default=None, foreign_key="users.id", index=True)
    deadline: datetime | None = _time()
    version: int = 1  # bumped on every change; a card click names the version it saw
    skip_reason: str | None = Field(default=None, sa_column=Column(Text))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Declaration(SQLModel, table=True):
    __tablename__ = "declarations"
    __table_args__ = (UniqueConstraint("task_id", "version", name="uq_declaration_version"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    version: int = 1
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    documents: list = _json(list)  # qualification document ids attached
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = _created()


class DeclarationLine(SQLModel, table=True):
    __tablename__ = "declaration_lines"
    id: int | None = Field(default=None, primary_key=True)
    declaration_id: int = Field(foreign_key="declarations.id", index=True)
    sku: str = Field(max_length=64)
    list_price: Decimal | None = _money()
    promo_price: Decimal | None = _money()
    promo_stock: int = 0
    result: str | None = Field(default=None, max_length=16)  # accepted / rejected
    reason_code: str | None = Field(default=None, max_length=64)
    reason_text: str | None = Field(default=None, sa_column=Column(Text))


class Product(SQLModel, table=True):
    __tablename__ = "products"
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(unique=True, max_length=64)
    barcode: str = Field(default="", max_length=64)
    title: str = Field(sa_column=Column(Text, nullable=False))
    brand: str = Field(default="", max_length=128)
    category: str = Field(default="", max_length=128, index=True)
    list_price: Decimal | None = _money()
    cost: Decimal | None = _money()
    stock: int = 0
    safety_stock: int = 0
    in_transit: int = 0  # on its way to the warehouse (purchase orders), from the ERP/WMS
    stock_source: str = Field(default="", max_length=128)  # the cost source that last set it
    stock_synced_at: datetime | None = _time()  # when cost/stock last came from that source
    image_path: str = Field(default="", max_length=512)
    image_width: int | None = None
    image_height: int | None = None
    image_format: str | None = Field(default=None, max_length=16)
    updated_at: datetime = _created()


class QualificationDocument(SQLModel, table=True):
    __tablename__ = "qualification_documents"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)  # business_licence, brand_authorisation, quality_report …
    title: str = Field(max_length=256)
    issuer: str = Field(default="", max_length=256)
    file_path: str = Field(default="", max_length=512)
    brand: str = Field(default="", max_length=128)
    valid_until: datetime | None = _time()


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)  # stable handle, e.g. "li.na"
    display_name: str = Field(max_length=128)
    roles: list = _json(list)  # market, ops, design, finance, legal, manager, admin
    team_id: int | None = Field(default=None, foreign_key="teams.id")
    manager_id: int | None = Field(default=None, foreign_key="users.id")
    lang: str = Field(default="zh-CN", max_length=8)
    active: bool = True


class ChatIdentity(SQLModel, table=True):
    """Maps a chat platform's user id (Slack U…, Feishu open_id, DingTalk staffId) to a user."""

    __tablename__ = "chat_identities"
    __table_args__ = (UniqueConstraint("chat", "external_id", name="uq_chat_identity"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    chat: str = Field(max_length=16)  # web, slack, feishu, dingtalk
    external_id: str = Field(max_length=128)


class ChatBinding(SQLModel, table=True):
    """Which channel hears about which marketplace (``*`` = all) and for what purpose."""

    __tablename__ = "chat_bindings"
    id: int | None = Field(default=None, primary_key=True)
    chat: str = Field(max_length=16)
    channel_id: str = Field(max_length=128)
    channel_name: str = Field(default="", max_length=128)
    platform: str = Field(default="*", max_length=32)
    purpose: str = Field(default="notices", max_length=16)  # notices, approvals, ops
    category: str = Field(default="*", max_length=128)
    shop: str = Field(default="*", max_length=128)
    roles: list = _json(list)  # roles to mention on cards
    team_id: int | None = Field(default=None, foreign_key="teams.id")

    def audited(self) -> dict:
        """The binding as its audit events record it (made in the dashboard or in a chat)."""
        return {"id": self.id, "chat": self.chat, "channel_id": self.channel_id,
                "channel_name": self.channel_name, "platform": self.platform,
                "purpose": self.purpose, "category": self.category, "shop": self.shop,
                "roles": list(self.roles or [])}


class ChatMessage(SQLModel, table=True):
    """A message we posted (or, for the web console, a message said in a channel).

    ``card_key`` names what the message shows (``task:12`` …) so that a later change
    updates the same message instead of posting another one.
    """

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("chat", "channel_id", "card_key", name="uq_chat_message_card"),
        Index("ix_chat_messages_channel", "chat", "channel_id", "id"),
        Index("ix_chat_messages_post_key", "post_key"),
        Index("ix_chat_messages_ref", "chat", "message_ref"),  # a callback's message
    )
    id: int | None = Field(default=None, primary_key=True)
    chat: str = Field(max_length=16)
    channel_id: str = Field(max_length=128)
    card_key: str | None = Field(default=None, max_length=128)
    message_ref: str = Field(default="", max_length=256)  # Slack ts, Feishu message_id …
    # The idempotency key of a post whose outcome is not known yet (set durably before the
    # post, cleared when the reference is stored): a retry posts with the same key, so the
    # platform shows the card once. The console's texts keep the key they were posted with.
    post_key: str = Field(default="", max_length=64)
    post_started_at: datetime | None = _time()
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True)
    author: str = Field(default="bot", max_length=128)
    visible_to: int | None = Field(default=None, foreign_key="users.id")  # private reply
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    card: dict | None = Field(default=None, sa_column=Column(JSON))
    revision: int = 1
    created_at: datetime = _created()
    updated_at: datetime = _created()


class ApprovalStep(SQLModel, table=True):
    __tablename__ = "approval_steps"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    declaration_version: int = 1
    seq: int = 1
    group: str = Field(default="", max_length=64)  # parallel steps share a group
    mode: str = Field(default="all_of", max_length=8)  # all_of / any_of within a group
    role: str = Field(max_length=32)
    reason: str = Field(default="", max_length=256)  # why the policy asked for this step
    state: str = Field(default="pending", max_length=24)
    requested_by: int | None = Field(default=None, foreign_key="users.id")
    decided_by: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = _time()
    comment: str | None = Field(default=None, sa_column=Column(Text))
    due_at: datetime | None = _time(index=True)
    created_at: datetime = _created()


class SubmissionAttempt(SQLModel, table=True):
    __tablename__ = "submission_attempts"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    declaration_version: int = 1
    idempotency_key: str = Field(max_length=128, index=True)
    channel: str = Field(default="api", max_length=32)
    status: str = Field(default="pending", max_length=24)  # pending/sent/failed/accepted/…
    reference: str | None = Field(default=None, max_length=128)
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempt_no: int = 1
    response: dict = _json()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int | None = Field(default=None, foreign_key="tasks.id", index=True)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    event_id: str | None = Field(default=None, max_length=256)
    detail: dict = _json()
    created_at: datetime = _created()


class ProcessedEvent(SQLModel, table=True):
    """Durable claim on an inbound delivery (click, message, API call), kept ≥ 8 hours."""

    __tablename__ = "processed_events"
    event_key: str = Field(primary_key=True, max_length=256)
    result: dict = _json()
    created_at: datetime = _created()


class ReminderLog(SQLModel, table=True):
    __tablename__ = "reminder_log"
    __table_args__ = (UniqueConstraint("task_id", "tier", name="uq_reminder_task_tier"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id")
    tier: str = Field(max_length=64)
    late: bool = False
    sent_at: datetime = _created()


class OutboxMessage(SQLModel, table=True):
    """A chat delivery decided inside a transaction and sent after it, with retries.

    ``key`` is stable for the intent, so a retry after a false failure never posts twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_card", "card_key", "id"))  # a card's newest row
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=256)
    chat: str = Field(max_length=16)
    channel_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)  # card (post or update in place), text, private
    card_key: str | None = Field(default=None, max_length=128)
    task_id: int | None = Field(default=None, foreign_key="tasks.id")
    payload: dict = _json()
    status: str = Field(default="pending", max_length=16)  # pending / sending / sent / dead
    attempts: int = 0
    next_attempt_at: datetime = _created()  # while sending: when the lease runs out
    lease_owner: str = Field(default="", max_length=128)  # the dispatcher holding the lease
    attempt_started_at: datetime | None = _time()  # a send began; its outcome may be unknown
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _created()
    sent_at: datetime | None = _time()


class InboxEvent(SQLModel, table=True):
    """A verified inbound delivery (click, message, command), stored before it is
    acknowledged and processed from here (``bot.core.inbox``): a crash after the ack loses
    nothing, another replica or the restarted process finishes it. ``key`` is the
    platform's dedupe key, so a redelivery finds its row and changes nothing. Kept ≥ 8 h.
    """

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=256)
    source: str = Field(max_length=16)  # slack, feishu, dingtalk, web
    kind: str = Field(max_length=32)  # click, text, command, card, message …
    payload: dict = _json()
    status: str = Field(default="working", max_length=16)  # working / pending / done / dead
    lease_owner: str = Field(default="", max_length=128)
    attempts: int = 0
    next_attempt_at: datetime = _created()  # working: lease end; pending: when to retry
    result: dict = _json()  # what the work answered (shown to a redelivery)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _created()
    done_at: datetime | None = _time()


class SandboxNotice(SQLModel, table=True):
    """The sandbox marketplace's own notices (what it serves on its feed)."""

    __tablename__ = "sandbox_notices"
    __table_args__ = (UniqueConstraint("platform", "notice_id", name="uq_sandbox_notice"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    notice_id: str = Field(max_length=128)
    body: dict = _json()
    published_at: datetime = _created()


class SandboxRegistration(SQLModel, table=True):
    __tablename__ = "sandbox_registrations"
    __table_args__ = (UniqueConstraint("platform", "idempotency_key", name="uq_sandbox_reg"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    idempotency_key: str = Field(max_length=128)
    campaign_id: str = Field(max_length=128)
    items: list = _json(list)
    results: list = _json(list)
    status: str = Field(default="reviewing", max_length=16)
    review_at: datetime = _created()
    created_at: datetime = _created()
