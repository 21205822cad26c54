"""Outbound chat messages: decided inside a transaction, delivered after it, with retries.

``enqueue_*`` write rows in the caller's transaction. ``Dispatcher.run_due`` claims due rows
(a lease, so two workers never send the same row), builds the card fresh from the database,
and posts it — or updates the message already showing that ``card_key`` in that channel, so
a task keeps one message per channel. Each row's ``key`` is stable for its intent: enqueuing
the same intent twice is a no-op, and a retry never posts twice.

Crash safety: a row is leased to one dispatcher (``lease_owner``) for a short lease that a
heartbeat renews while it works (``bot.core.leases``), so rows of a process that died are
taken over within seconds. Before each post the attempt is recorded durably — the card's
``ChatMessage.post_key`` (its idempotency key) and ``post_started_at``, a text's
``attempt_started_at`` — and the post carries that key; a retry whose earlier attempt has
an unknown outcome passes ``unsure_since`` so the adapter can check first. What each
platform then guarantees is in docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from bot.core import attempts
from bot.core.leases import get_lease_settings, lease, owner_id, renew
from bot.core.ports import ChatAdapter, ChatDeliveryError
from bot.core.settings import get_settings
from bot.core.views import BUILDERS
from storage.db import Database
from storage.models import ChatBinding, ChatIdentity, ChatMessage, OutboxMessage, Task
from storage.types import utcnow

if TYPE_CHECKING:
    from cards.model import Card

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def _add(session: Session, row: OutboxMessage) -> bool:
    return _add_many(session, [row]) == 1


def _add_many(session: Session, rows: list[OutboxMessage]) -> int:
    """Insert the rows whose key is new, in one statement (``ON CONFLICT DO NOTHING`` on the
    unique key: an intent enqueued twice, even by two transactions at once, stays one row);
    how many were new."""
    if not rows:
        return 0
    values = [row.model_dump(exclude={"id"}) for row in rows]
    # One statement whatever the row count, its rows as parameters (not rendered VALUES), so
    # it is compiled once per process: a rendered multi-row VALUES was compiled on every call,
    # a quarter of a claim's time under load (py-spy, docs/benchmarks.md).
    dialect = session.get_bind().dialect.name
    statement = _INSERTS.get(dialect)
    if statement is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        table = OutboxMessage.__table__
        statement = _INSERTS[dialect] = insert(table).on_conflict_do_nothing(
            index_elements=["key"]).returning(table.c.id)
    result = session.execute(statement, values[0] if len(values) == 1 else values)
    return len(result.all())  # rowcount is -1 for this statement on psycopg: count the ids


_INSERTS: dict = {}  # dialect → the compiled-once insert


def enqueue_card(
    session: Session, chat: str, channel_id: str, card_key: str, builder: str,
    params: dict, *, key: str, task_id: int | None = None,
) -> bool:
    return _add(session, OutboxMessage(
        key=key, chat=chat, channel_id=channel_id, kind="card", card_key=card_key,
        task_id=task_id, payload={"builder": builder, "params": params},
    ))


def enqueue_text(session: Session, chat: str, channel_id: str, text: str, *, key: str) -> bool:
    return _add(session, OutboxMessage(
        key=key, chat=chat, channel_id=channel_id, kind="text", payload={"text": text}))


def enqueue_private(session: Session, user_id: int, text: str, *, key: str) -> int:
    """Tell a user privately on every chat where we know them."""
    sent = 0
    for ident in session.exec(select(ChatIdentity).where(ChatIdentity.user_id == user_id)):
        sent += _add(session, OutboxMessage(
            key=f"{key}:{ident.chat}", chat=ident.chat, channel_id="",
            kind="private", payload={"text": text, "user": ident.external_id,
                                     "user_id": user_id}))
    return sent


def bindings_for(
    session: Session, platform: str, purpose: str = "notices", team_id: int | None = None,
) -> list[ChatBinding]:
    query = select(ChatBinding).where(
        ChatBinding.purpose == purpose, or_(ChatBinding.platform == platform,
                                            ChatBinding.platform == "*"))
    if team_id is not None:
        query = query.where(or_(ChatBinding.team_id == team_id, ChatBinding.team_id.is_(None)))
    return list(session.exec(query.order_by(ChatBinding.id)))


# (session, task, binding) -> bool: narrows bound channels, e.g. by category/shop (#7).
binding_filters: list = []


def enqueue_task_card(session: Session, task: Task, platform: str) -> None:
    """Show the task's current card everywhere it belongs (bound channels + where it is)."""
    targets = {(b.chat, b.channel_id) for b in bindings_for(session, platform, "notices",
                                                             task.team_id)
               if all(keep(session, task, b) for keep in binding_filters)}
    card_key = f"task:{task.id}"
    shown = session.exec(select(ChatMessage.chat, ChatMessage.channel_id).where(
        ChatMessage.task_id == task.id, ChatMessage.card_key == card_key))  # indexed: task_id
    targets.update((chat, channel) for chat, channel in shown)
    _add_many(session, [OutboxMessage(
        key=f"{card_key}:v{task.version}:{chat}:{channel}", chat=chat, channel_id=channel,
        kind="card", card_key=card_key, task_id=task.id,
        payload={"builder": "task", "params": {"task_id": task.id}})
        for chat, channel in sorted(targets)])


class Dispatcher:
    """Sends due outbox rows through the configured chat adapters."""

    def __init__(self, db: Database, adapters: dict[str, ChatAdapter]) -> None:
        self.db = db
        self.adapters = adapters
        self._lock = asyncio.Lock()
        self.on_delivered: list = []  # callbacks(chat, channel_id) — e.g. console live updates
        self.owner = owner_id("outbox")

    def claim_due(self, limit: int = 50) -> list[OutboxMessage]:
        now = utcnow()
        with self.db.session() as session:
            due = list(session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.status.in_(("pending", "sending")),
                       OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id).limit(limit)
            ))
            claimed = []
            for row in due:
                taken = session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id, OutboxMessage.status == row.status,
                           OutboxMessage.attempts == row.attempts)
                    .values(status="sending", attempts=row.attempts + 1,
                            next_attempt_at=now + lease(), lease_owner=self.owner)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:
                    row.attempts += 1
                    claimed.append(row)
            return claimed

    async def run_due(self, limit: int = 50) -> int:
        async with self._lock:
            rows = await asyncio.to_thread(self.claim_due, limit)
            if not rows:
                return 0
            heartbeat = asyncio.create_task(self._keep_leases())
            try:
                for row in rows:
                    await self._deliver(row)
            finally:
                heartbeat.cancel()
            return len(rows)

    async def _keep_leases(self) -> None:
        """While this batch is being sent, its rows stay ours; if the process dies they are
        free again one short lease later."""
        while True:
            await asyncio.sleep(get_lease_settings().lease_seconds / 3)
            try:
                await asyncio.to_thread(renew, self.db, OutboxMessage, self.owner, "sending")
            except Exception as exc:  # noqa: BLE001 - the database is away: next beat
                log.warning("outbox lease renewal failed", extra={"error": repr(exc)[:200]})

    async def _deliver(self, row: OutboxMessage) -> None:
        """Send one row. Database work runs in a thread: the loop keeps acking chat events."""
        adapter = self.adapters.get(row.chat)
        if adapter is None:
            await asyncio.to_thread(self._finish, row, "skipped",
                                    f"no adapter configured for {row.chat}")
            return
        try:
            if row.kind == "card":
                await self._deliver_card(adapter, row)
            elif row.kind == "text":
                since = await asyncio.to_thread(attempts.begin_text, self.db, row)
                await adapter.post_text(row.channel_id, row.payload["text"],
                                        key=attempts.delivery_key(row), unsure_since=since)
            elif row.kind == "private":
                since = await asyncio.to_thread(attempts.begin_text, self.db, row)
                await adapter.send_private(row.payload["user"], row.payload["text"],
                                           row.payload.get("channel") or None,
                                           key=attempts.delivery_key(row), unsure_since=since)
            await asyncio.to_thread(self._finish, row, "sent")
            for callback in self.on_delivered:
                callback(row.chat, row.channel_id)
        except Exception as exc:  # noqa: BLE001 - every failure is retried or marked dead
            await asyncio.to_thread(self._failed, row, exc)

    async def _deliver_card(self, adapter: ChatAdapter, row: OutboxMessage) -> None:
        prepared = await asyncio.to_thread(self._prepare_card, row)
        if prepared is None:
            return
        card, message_id, message_ref = prepared
        ref = message_ref
        if message_ref:
            try:
                await adapter.update_card(row.channel_id, message_ref, card)
            except ChatDeliveryError as exc:
                if not exc.message_gone:
                    raise
                log.warning("card message gone; posting it again",
                            extra={"chat": row.chat, "channel": row.channel_id,
                                   "card_key": row.card_key})
                ref = ""
        if not ref:
            key, since = await asyncio.to_thread(attempts.begin_post, self.db, message_id,
                                                 bool(message_ref))
            try:
                ref = await adapter.post_card(row.channel_id, card, key=key,
                                              unsure_since=since)
                if since is not None:  # what the lost attempt showed may be older than this
                    await adapter.update_card(row.channel_id, ref, card)
            except ChatDeliveryError as exc:
                if exc.not_sent:
                    await asyncio.to_thread(attempts.forget_post, self.db, message_id, key)
                raise
        await asyncio.to_thread(self._store_card, message_id, ref, card)

    def _prepare_card(self, row: OutboxMessage) -> tuple[Card, int, str] | None:
        with self.db.session() as session:
            payload = row.payload if isinstance(row.payload, dict) else {}
            try:
                build = BUILDERS[str(payload.get("builder"))]
                card = build(session, payload.get("params") or {}, get_settings().language)
            except DBAPIError:
                raise  # the database, not the data: retried as usual
            except Exception as exc:  # noqa: BLE001 - the data cannot make this card
                session.rollback()
                report_unbuildable(self.db, row, exc)
                raise CardUnbuildable(f"card cannot be built: {exc!r}"[:500]) from exc
            if card is None:
                return None
            message = self._reserve(session, row)
            return card, message.id or 0, message.message_ref

    def _store_card(self, message_id: int, ref: str, card: Card) -> None:
        with self.db.session() as session:
            session.execute(
                update(ChatMessage).where(ChatMessage.id == message_id)
                .values(message_ref=ref, card=card.model_dump(mode="json"),
                        revision=ChatMessage.revision + 1, updated_at=utcnow(),
                        post_key="", post_started_at=None)
                .execution_options(synchronize_session=False)
            )

    def _reserve(self, session: Session, row: OutboxMessage) -> ChatMessage:
        """The message that shows this card in this channel; created (reserved) if none.

        A reserved row without a reference means an earlier post failed or its outcome is
        unknown (``post_key`` set): the next post reuses that key.
        """
        message = session.exec(select(ChatMessage).where(
            ChatMessage.chat == row.chat, ChatMessage.channel_id == row.channel_id,
            ChatMessage.card_key == row.card_key)).first()
        if message is None:
            message = ChatMessage(chat=row.chat, channel_id=row.channel_id,
                                  card_key=row.card_key, task_id=row.task_id)
            session.add(message)
            session.flush()
        return message

    def _finish(self, row: OutboxMessage, status: str, note: str | None = None) -> None:
        with self.db.session() as session:
            session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id)
                .values(status=status, sent_at=utcnow(), last_error=note, lease_owner="")
                .execution_options(synchronize_session=False)
            )

    def _failed(self, row: OutboxMessage, exc: Exception) -> None:
        retry_after = getattr(exc, "retry_after", None)
        permanent = getattr(exc, "permanent", False)
        dead = permanent or row.attempts >= MAX_ATTEMPTS
        delay = retry_after if retry_after is not None else min(
            300.0, 2 ** row.attempts + random.uniform(0, 1))
        log.warning(
            "outbox delivery failed",
            extra={"outbox_id": row.id, "key": row.key, "chat": row.chat,
                   "channel": row.channel_id, "attempt": row.attempts, "dead": dead,
                   "error": repr(exc)[:500]},
        )
        with self.db.session() as session:
            session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id)
                .values(status="dead" if dead else "pending", last_error=repr(exc)[:2000],
                        next_attempt_at=utcnow() + timedelta(seconds=delay), lease_owner="",
                        **({"attempt_started_at": None}
                           if getattr(exc, "not_sent", False) else {}))
                .execution_options(synchronize_session=False)
            )


class CardUnbuildable(Exception):
    """The row's card cannot be built from what is stored: retrying cannot help."""

    permanent = True


def report_unbuildable(db: Database, row: OutboxMessage, exc: Exception) -> None:
    """Tell the ops channel once per card (``card_unbuildable``), logged with the trace.

    The row itself is marked dead by the caller; a report that cannot itself be built is
    only logged, never reported again."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    builder = str(payload.get("builder"))
    log.error("card cannot be built", exc_info=exc,
              extra={"outbox_id": row.id, "builder": builder, "card_key": row.card_key,
                     "chat": row.chat, "channel": row.channel_id})
    if builder == "card_unbuildable":
        return
    subject = (row.card_key or row.key or "")[:100]
    try:
        with db.session() as session:
            platform = "*"
            if row.task_id:
                from storage.models import Campaign

                task = session.get(Task, row.task_id)
                campaign = session.get(Campaign, task.campaign_id) if task else None
                platform = campaign.platform if campaign else "*"
            params = {"builder": builder[:64], "card_key": subject, "chat": row.chat,
                      "channel": row.channel_id, "error": repr(exc)[:300]}
            bindings = bindings_for(session, platform, "ops")
            for b in bindings:
                enqueue_card(session, b.chat, b.channel_id, f"card_unbuildable:{subject}",
                             "card_unbuildable", params,
                             key=f"card_unbuildable:{subject}:{b.chat}:{b.channel_id}"[:256])
            if not bindings:
                log.error("no ops channel bound for unbuildable cards",
                          extra={"card_key": subject})
    except Exception:  # noqa: BLE001 - the report must not hide the original failure
        log.exception("could not report an unbuildable card", extra={"card_key": subject})


def task_card_listener(session: Session, task: Task, outcome: object, actor: object) -> None:
    """Lifecycle listener: every transition refreshes the task's card where it is shown."""
    from storage.models import Campaign

    campaign = session.get(Campaign, task.campaign_id)
    if campaign is not None:
        enqueue_task_card(session, task, campaign.platform)
