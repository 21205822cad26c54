"""The outbox's sending side: due rows leased, their cards built, sent, settled.

``bot.core.outbox`` decides what to send inside the caller's transaction; the dispatcher
here delivers it afterwards, a lane per chat, with retries (the crash safety and the
platforms' guarantees are in ``bot.core.outbox`` and docs/decisions.md). The database work
of a batch is ``bot.core.delivery``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from bot.core import attempts, delivery
from bot.core.leases import get_lease_settings, lease, owner_id, renew
from bot.core.outbox import CardUnbuildable, report_unbuildable
from bot.core.ports import ChatAdapter, ChatDeliveryError
from bot.core.settings import get_settings
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
DRAIN_BATCH = 200  # rows a pass after actions takes: the batch's reads are shared
# A woken lane waits this long before it takes its batch, so the clicks of a burst share a
# few batches (each batch's claim, reads and settle are a fixed cost) instead of the fast
# lanes running a small batch after each click: REST claims 188 → 287/s in the bench.
GATHER_SECONDS = 0.1


OTHER = ""  # the lane of rows for a chat with no adapter here (they are marked as such)


@dataclass
class _Lane:
    """One chat's deliveries: its batches follow each other; another chat's run beside."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    again: bool = False  # woken while a drain runs: one more pass after it
    drain: asyncio.Task | None = None


class Dispatcher:
    """Sends due outbox rows through the configured chat adapters, a lane per chat.

    Each chat is delivered at its own pace: a batch waits for its slowest message, and a
    platform's pacing (Feishu's 50 calls a second for the app, Slack's message a second in a
    channel) would otherwise hold every other chat's cards back with it — in a peak, the
    console's cards were shown as late as Feishu's (docs/benchmarks.md, "The seventh round").
    A channel belongs to one chat, so its messages keep their order in its lane."""

    def __init__(self, db: Database, adapters: dict[str, ChatAdapter]) -> None:
        self.db = db
        self.adapters = adapters
        self.on_delivered: list = []  # callbacks(chat, channel_id) — e.g. console live updates
        self.owner = owner_id("outbox")
        self._lanes: dict[str, _Lane] = {}

    def _lane_names(self) -> list[str]:
        return [*sorted(self.adapters), OTHER]

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane()
        return lane

    def wake(self) -> None:
        """Deliver what was just decided (call on the event loop). However many actions
        wake it at once, one drain runs per chat: each pass takes everything due since the
        last one (a burst of clicks becomes a few large batches, not a pass a click)."""
        for name in self._lane_names():
            lane = self._lane(name)
            lane.again = True
            if lane.drain is None or lane.drain.done():
                lane.drain = asyncio.get_running_loop().create_task(self._drain(name))

    async def _drain(self, name: str) -> None:
        lane = self._lane(name)
        while lane.again:
            await asyncio.sleep(GATHER_SECONDS)  # the clicks of the moment join this batch
            lane.again = False
            try:
                if await self._run_lane(name, DRAIN_BATCH) >= DRAIN_BATCH:
                    lane.again = True  # more may be due already
            except Exception:  # noqa: BLE001 - the periodic pass retries; say why here
                log.exception("outbox drain failed", extra={"chat": name or "other"})

    def claim_due(self, limit: int = 50, chat: str | None = None) -> list[OutboxMessage]:
        """Lease up to ``limit`` due rows (of one chat's lane when ``chat`` is given;
        ``OTHER``: the chats with no adapter) in one statement; rows another dispatcher
        holds are skipped (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: its one writer)."""
        now = utcnow()
        lane = [] if chat is None else [
            OutboxMessage.chat.not_in(sorted(self.adapters)) if chat == OTHER
            else OutboxMessage.chat == chat]
        with self.db.session() as session:
            due = (select(OutboxMessage.id)
                   .where(OutboxMessage.status.in_(("pending", "sending")),
                          OutboxMessage.next_attempt_at <= now, *lane)
                   .order_by(OutboxMessage.id).limit(limit)
                   .with_for_update(skip_locked=True))
            claimed = session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(due.scalar_subquery()))
                .values(status="sending", attempts=OutboxMessage.attempts + 1,
                        next_attempt_at=now + lease(), lease_owner=self.owner)
                .returning(OutboxMessage)
                .execution_options(synchronize_session=False, populate_existing=True)
            ).scalars().all()
            return sorted(claimed, key=lambda row: row.id or 0)

    async def run_due(self, limit: int = 50) -> int:
        """Send what is due: a batch of up to ``limit`` rows in every chat's lane, one lane
        after the other (the periodic pass; ``wake`` runs the lanes side by side)."""
        return sum([await self._run_lane(name, limit) for name in self._lane_names()])

    async def _run_lane(self, name: str, limit: int) -> int:
        """Send a batch of one lane: prepared in one transaction, channels sent to at once
        (each one's rows in order), settled in one transaction (``bot.core.delivery``)."""
        async with self._lane(name).lock:
            rows = await asyncio.to_thread(self.claim_due, limit, name)
            if not rows:
                return 0
            heartbeat = asyncio.create_task(self._keep_leases())
            try:
                sending, stands_for = delivery.collapse(rows)
                cards = [r for r in sending if r.kind == "card" and r.chat in self.adapters]
                prepared = await asyncio.to_thread(
                    delivery.prepare, self.db, cards, get_settings().language,
                    self._unbuildable) if cards else {}
                done = delivery.Settled()
                await asyncio.gather(*(self._deliver_all(group, prepared, done, stands_for)
                                       for group in delivery.by_channel(sending)))
                await asyncio.to_thread(delivery.settle, self.db, done, stands_for)
            finally:
                heartbeat.cancel()
            for chat, channel in {(r.chat, r.channel_id) for r in rows}:
                for callback in self.on_delivered:
                    callback(chat, channel)
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

    async def _deliver_all(self, rows: list[OutboxMessage], prepared: dict,
                           done: delivery.Settled, stands_for: dict[int, list[int]]) -> None:
        for row in rows:
            await self._deliver(row, prepared.get(row.id or 0), done, stands_for)

    async def _deliver(self, row: OutboxMessage, prepared: delivery.Prepared | None,
                       done: delivery.Settled, stands_for: dict[int, list[int]]) -> None:
        """Send one row; what it stores waits for the batch's settle."""
        adapter = self.adapters.get(row.chat)
        if adapter is None:
            done.sent.append(row.id or 0)
            done.notes[row.id or 0] = f"no adapter configured for {row.chat}"
            return
        try:
            if row.kind == "card":
                await self._deliver_card(adapter, row, prepared, done)
            elif row.kind == "text":
                since = await asyncio.to_thread(attempts.begin_text, self.db, row)
                await adapter.post_text(row.channel_id, row.payload["text"],
                                        key=attempts.delivery_key(row), unsure_since=since)
            elif row.kind == "private":
                since = await asyncio.to_thread(attempts.begin_text, self.db, row)
                await adapter.send_private(row.payload["user"], row.payload["text"],
                                           row.payload.get("channel") or None,
                                           key=attempts.delivery_key(row), unsure_since=since)
            done.sent.append(row.id or 0)
        except Exception as exc:  # noqa: BLE001 - every failure is retried or marked dead
            await asyncio.to_thread(self._failed, row, exc, stands_for)

    async def _deliver_card(self, adapter: ChatAdapter, row: OutboxMessage,
                            prepared: delivery.Prepared | None, done: delivery.Settled) -> None:
        if prepared is not None and prepared.error is not None:
            raise prepared.error
        if prepared is None or prepared.card is None:
            return  # the builder has nothing to show (any more)
        card, message_id, message_ref = prepared.card, prepared.message_id, prepared.message_ref
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
        done.cards.append((message_id, ref, card))

    def _unbuildable(self, row: OutboxMessage, exc: Exception) -> Exception:
        report_unbuildable(self.db, row, exc)
        return CardUnbuildable(f"card cannot be built: {exc!r}"[:500])

    def _failed(self, row: OutboxMessage, exc: Exception,
                stands_for: dict[int, list[int]]) -> None:
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
                update(OutboxMessage).where(OutboxMessage.id.in_(  # and the versions it stood for
                    [row.id, *stands_for.get(row.id or 0, [])]))
                .values(status="dead" if dead else "pending", last_error=repr(exc)[:2000],
                        next_attempt_at=utcnow() + timedelta(seconds=delay), lease_owner="",
                        **({"attempt_started_at": None}
                           if getattr(exc, "not_sent", False) else {}))
                .execution_options(synchronize_session=False)
            )
