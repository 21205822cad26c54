"""Inbound events are stored before they are acknowledged, and processed from the table.

Every chat adapter and the console turn a verified delivery into one ``inbox`` row keyed by
the platform's dedupe key (``InboxWorker.accept``: one INSERT; a redelivery hits the key and
gets ``None``), acknowledge the platform, and hand the row to this process's worker threads
(``submit``). The row is born leased to this process; its heartbeat keeps the lease while
the event waits or runs (``bot.core.leases``). If the process dies with acknowledged events
unprocessed, their leases run out and the periodic ``run_due`` of any replica — or of the
restarted process — claims and finishes them. The work itself is idempotent per delivery
(``bot.core.actions.perform`` keys by actor and event id), so a row re-run after a crash in
mid-work changes state once.

Handlers are registered per source (``register("slack", fn)``) and called as
``fn(event, inline)``. ``inline()`` says whether the request that brought the event is still
waiting to show the answer itself (``call`` with a timeout, e.g. Feishu's toast): ``True`` —
return the answer; ``False`` — the caller has said "working on it" (or the event is being
recovered), so the handler tells the person itself (outbox, private message, card update).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, select

from bot.core import idempotency
from bot.core.leases import Heartbeat, get_lease_settings, lease, owner_id
from storage.db import Database, insert_if_new
from storage.models import InboxEvent
from storage.types import utcnow

log = logging.getLogger(__name__)
KEEP = timedelta(hours=24)  # Feishu re-delivers up to 6 h later; rows outlive that
MAX_ATTEMPTS = 5
PRUNE_EVERY = 3600.0  # seconds
Handler = Callable[[InboxEvent, Callable[[], bool]], dict | None]


class _Waiter:
    """The handshake between a request waiting for the answer and the handler giving it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "waiting"

    def take(self) -> bool:
        """Handler: True = the waiting request shows the answer; False = tell them yourself."""
        with self._lock:
            if self._state == "waiting":
                self._state = "inline"
            return self._state == "inline"

    def give_up(self) -> bool:
        """Request: True = gave up (the handler tells the person); False = answer imminent."""
        with self._lock:
            if self._state == "waiting":
                self._state = "gone"
            return self._state == "gone"


class InboxWorker:
    def __init__(self, db: Database, *, workers: int | None = None) -> None:
        self.db = db
        self.owner = owner_id("inbox")
        self.workers = workers or get_lease_settings().inbox_workers
        self.handlers: dict[str, Handler] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._held: set[int] = set()  # rows this process holds (queued or running)
        self._running: set[int] = set()
        # rows stored here a moment ago, as stored: their first run needs no read back (the
        # heartbeat keeps their lease while they are held)
        self._fresh: dict[int, InboxEvent] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._stopped = False
        self._next_prune = time.monotonic() + 60
        self.heartbeat = Heartbeat(db, InboxEvent, self.owner, "working",
                                   active=lambda: bool(self._held))

    def register(self, source: str, handler: Handler) -> None:
        self.handlers[source] = handler

    # -- receiving -------------------------------------------------------------------------

    def accept(self, key: str, source: str, kind: str, payload: dict,
               also: Callable[[Session], None] | None = None) -> int | None:
        """Store a verified delivery, leased to this process; ``None`` for a redelivery.
        Call it before acknowledging the platform: once it returns, the event is safe."""
        now = utcnow()
        row = {"key": key[:256], "source": source, "kind": kind, "payload": payload,
               "status": "working", "lease_owner": self.owner, "attempts": 1,
               "next_attempt_at": now + lease(), "result": {}, "last_error": None,
               "created_at": now, "done_at": None}
        with self.db.session() as session:
            event_id = session.execute(insert_if_new(
                InboxEvent.__table__, "key", "id", self.db.dialect), row).scalar()
            if event_id is not None and also is not None:
                also(session)
        if event_id is None:  # the key is there: the platform sent it again
            log.info("inbound redelivery ignored", extra={"key": key[:120], "source": source})
            return None
        with self._lock:
            self._held.add(event_id)
            if len(self._fresh) > 10_000:  # stored, never run here: they are read back
                self._fresh.clear()
            self._fresh[event_id] = InboxEvent(id=event_id, **row)
        self.heartbeat.start()
        return event_id

    def find(self, key: str) -> InboxEvent | None:
        with self.db.session() as session:
            return session.exec(select(InboxEvent).where(InboxEvent.key == key[:256])).first()

    def submit(self, event_id: int) -> Future:
        """Process a row this process holds, on the worker threads; the future's result is
        the handler's answer (``None`` if it failed or someone else has the row)."""
        with self._lock:
            self._held.add(event_id)
        try:
            return self._executor().submit(self._process, event_id)
        except RuntimeError:  # shutting down: the lease runs out, another process takes it
            with self._lock:
                self._held.discard(event_id)
                self._fresh.pop(event_id, None)
            done: Future = Future()
            done.set_result(None)
            return done

    def call(self, event_id: int, timeout: float) -> dict | None:
        """Process now and wait up to ``timeout`` seconds for the answer to show inline.
        ``None``: not in time — say "working on it"; the handler tells the person later."""
        waiter = _Waiter()
        self._waiters[event_id] = waiter
        future = self.submit(event_id)
        try:
            try:
                return future.result(timeout)
            except FutureTimeout:
                if waiter.give_up():
                    return None
                return future.result(30)  # the handler is giving its answer right now
        except (CancelledError, FutureTimeout):
            return None
        finally:
            self._waiters.pop(event_id, None)

    async def answer(self, event_id: int, timeout: float) -> dict | None:
        """``call`` for a coroutine: the wait holds no thread (an asyncio future resolved
        when the worker finishes), so a thousand waiting clicks cost no threads at all."""
        waiter = _Waiter()
        self._waiters[event_id] = waiter
        future = asyncio.wrap_future(self.submit(event_id))
        try:
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                if waiter.give_up():
                    return None
                return await asyncio.wait_for(future, 30)  # the answer is being given now
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the request itself went away
                waiter.give_up()
                raise
            return None  # the worker pool shut down: the lease hands the event on
        finally:
            self._waiters.pop(event_id, None)

    def queued(self) -> int:
        """Events this process holds that no worker has started yet (the queue's length)."""
        with self._lock:
            return len(self._held) - len(self._running)

    # -- working ---------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._stopped:
                raise RuntimeError("inbox worker stopped")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="inbox")
            return self._pool

    def _inline(self, event_id: int) -> bool:
        waiter = self._waiters.get(event_id)
        return waiter.take() if waiter is not None else False

    def _process(self, event_id: int) -> dict | None:
        with self._lock:
            self._running.add(event_id)
        try:
            with self._lock:
                event = self._fresh.pop(event_id, None)
            if event is None:
                with self.db.read() as session:  # no write lock to look
                    event = session.get(InboxEvent, event_id)
            if event is None or event.status != "working" or event.lease_owner != self.owner:
                return None  # finished or taken over meanwhile
            pause = get_lease_settings().inbox_pause_ms
            if pause:
                time.sleep(pause / 1000)
            handler = self.handlers.get(event.source)
            if handler is None:
                self._release([event_id])
                return None
            try:
                result = handler(event, lambda: self._inline(event_id)) or {}
            except Exception as exc:  # noqa: BLE001 - retried with backoff, then dead
                self._failed(event, exc)
                return None
            self._finish(event_id, "done", result=result)
            return result
        except Exception:  # noqa: BLE001 - the database is away: the lease runs out
            log.exception("inbound event could not be processed", extra={"event": event_id})
            return None
        finally:
            with self._lock:
                self._running.discard(event_id)
                self._held.discard(event_id)
                self._fresh.pop(event_id, None)

    def _finish(self, event_id: int, status: str, *, result: dict | None = None,
                error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "lease_owner": "", "done_at": utcnow()}
        if result is not None:
            values["result"] = result
        if error is not None:
            values["last_error"] = error
        with self.db.session() as session:
            session.execute(update(InboxEvent).where(InboxEvent.id == event_id).values(**values)
                            .execution_options(synchronize_session=False))

    def _failed(self, event: InboxEvent, exc: Exception) -> None:
        dead = event.attempts >= MAX_ATTEMPTS
        context = {"event": event.id, "key": event.key[:120], "source": event.source,
                   "kind": event.kind, "attempt": event.attempts, "dead": dead,
                   "error": repr(exc)[:300]}
        if dead:
            log.error("inbound event failed for good", exc_info=exc, extra=context)
            self._finish(event.id or 0, "dead", error=repr(exc)[:2000])
            return
        log.warning("inbound event failed; will retry", exc_info=exc, extra=context)
        delay = timedelta(seconds=min(300.0, 2.0 ** event.attempts))
        with self.db.session() as session:
            session.execute(update(InboxEvent).where(InboxEvent.id == event.id).values(
                status="pending", lease_owner="", last_error=repr(exc)[:2000],
                next_attempt_at=utcnow() + delay).execution_options(synchronize_session=False))

    def _release(self, ids: list[int]) -> None:
        """Hand rows back (not started here): the next ``run_due`` anywhere takes them."""
        if not ids:
            return
        with self.db.session() as session:
            session.execute(update(InboxEvent).where(
                InboxEvent.id.in_(ids), InboxEvent.lease_owner == self.owner,
                InboxEvent.status == "working").values(
                status="pending", lease_owner="", next_attempt_at=utcnow())
                .execution_options(synchronize_session=False))

    # -- recovering ------------------------------------------------------------------------

    def run_due(self) -> int:
        """Claim rows left by a process that died (lease run out) or due for a retry."""
        if self._stopped or not self.handlers:
            return 0
        self._maybe_prune()
        with self._lock:
            room = self.workers * 2 - len(self._held)
            held = set(self._held)
        if room <= 0:
            return 0
        now = utcnow()
        claimed: list[int] = []
        with self.db.session() as session:
            due = session.exec(select(InboxEvent).where(
                InboxEvent.status.in_(("pending", "working")),
                InboxEvent.next_attempt_at <= now,
                InboxEvent.source.in_(sorted(self.handlers)))
                .order_by(InboxEvent.id).limit(room + len(held))).all()
            for row in due:
                if row.id in held:
                    continue
                if row.attempts >= MAX_ATTEMPTS:
                    log.error("inbound event abandoned after its attempts",
                              extra={"event": row.id, "key": row.key[:120],
                                     "source": row.source, "attempts": row.attempts})
                    session.execute(update(InboxEvent).where(
                        InboxEvent.id == row.id, InboxEvent.status == row.status,
                        InboxEvent.attempts == row.attempts).values(
                        status="dead", lease_owner="", done_at=now)
                        .execution_options(synchronize_session=False))
                    continue
                taken = session.execute(update(InboxEvent).where(
                    InboxEvent.id == row.id, InboxEvent.status == row.status,
                    InboxEvent.attempts == row.attempts,
                    InboxEvent.next_attempt_at <= now).values(
                    status="working", lease_owner=self.owner, attempts=row.attempts + 1,
                    next_attempt_at=now + lease())
                    .execution_options(synchronize_session=False))
                if taken.rowcount == 1:
                    claimed.append(row.id or 0)
                    if row.status == "working":
                        log.warning("taking over an inbound event whose worker stopped",
                                    extra={"event": row.id, "key": row.key[:120],
                                           "previous_owner": row.lease_owner})
        if claimed:
            with self._lock:
                self._held.update(claimed)
            self.heartbeat.start()
        for event_id in claimed:
            self.submit(event_id)
        return len(claimed)

    def _maybe_prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY
        try:
            prune(self.db)
            idempotency.prune(self.db)
        except Exception as exc:  # noqa: BLE001 - pruning is housekeeping
            log.warning("inbox prune failed", extra={"error": repr(exc)[:200]})

    def stop(self) -> None:
        """Shutting down: queued events go back to the table for whoever runs next."""
        with self._lock:
            self._stopped = True
            pool, self._pool = self._pool, None
            waiting = sorted(self._held - self._running)
            self._fresh.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        try:
            self._release(waiting)
        except Exception as exc:  # noqa: BLE001 - their leases run out anyway
            log.warning("could not hand back queued inbound events",
                        extra={"count": len(waiting), "error": repr(exc)[:200]})
        self.heartbeat.stop()


def prune(db: Database) -> int:
    """Forget finished events older than ``KEEP`` (well past every platform's retries)."""
    with db.session() as session:
        result = session.execute(delete(InboxEvent).where(
            InboxEvent.status.in_(("done", "dead")), InboxEvent.created_at < utcnow() - KEEP))
        return result.rowcount or 0


def inbox_of(container: Any) -> InboxWorker:
    """The process's inbox worker (one per app; adapters register their handlers on it)."""
    worker = container.extras.get("inbox")
    if worker is None:
        worker = container.extras["inbox"] = InboxWorker(container.db)
    return worker
