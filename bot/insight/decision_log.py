"""The log of what was recommended when a team decided, written just after the decision.

Computing a recommendation costs a dozen queries; inside the transition it was a third of a
claim's time (py-spy, docs/benchmarks.md). So the lifecycle listener only notes the decision
in its session; once that transaction has committed, one background thread per process
computes the recommendations of a batch of decisions at once (``recommend_many``: a few
queries for the batch, not a dozen per task) in a read-only transaction, then stores them in
one short write through the owning ``Database`` (on SQLite it queues on the process's writer
lock with the clicks instead of in SQLite's busy handler), once per task. A process that dies
in that moment loses the log rows of the last decisions, never a decision: it is the
back-test's record, not state.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from storage.db import Database
from storage.models import Task
from storage.models_results import RecommendationLog
from storage.types import utcnow

log = logging.getLogger(__name__)
PENDING = "promopilot.decisions"  # session.info: (task id, action) decided in this transaction
BATCH = 200
LINGER = 1.0  # seconds a batch gathers decisions while they keep coming
_queue: queue.Queue[tuple[Any, int, str]] = queue.Queue()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def note(session: Session, task_id: int, action: str) -> None:
    """Called inside the transition's transaction: log it once that transaction commits."""
    session.info.setdefault(PENDING, []).append((task_id, action))


@event.listens_for(OrmSession, "after_commit")
def _committed(session: OrmSession) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    engine = session.get_bind()
    for task_id, action in pending:
        _queue.put((engine, task_id, action))
    _start()


@event.listens_for(OrmSession, "after_rollback")
def _rolled_back(session: OrmSession) -> None:
    session.info.pop(PENDING, None)  # no decision, nothing to log


def _start() -> None:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, daemon=True, name="decision-log")
            _thread.start()


def _run() -> None:
    last = 0.0  # when the previous batch was taken
    while True:
        batch = [_queue.get()]
        # Under a burst (the previous batch was moments ago) gather for a while: a batch's
        # reads cost the same for 3 decisions as for 200, and the log can wait a second.
        # A lone decision is logged at once.
        busy = time.monotonic() - last < LINGER
        until = time.monotonic() + (LINGER if busy else 0.0)
        while len(batch) < BATCH:
            try:
                left = until - time.monotonic()
                batch.append(_queue.get(timeout=left) if left > 0 else _queue.get_nowait())
            except queue.Empty:
                break
        last = time.monotonic()
        try:
            by_engine: dict[Any, list[tuple[int, str]]] = {}
            for engine, task_id, action in batch:
                by_engine.setdefault(engine, []).append((task_id, action))
            for engine, decisions in by_engine.items():
                _write(engine, decisions)
        except Exception:  # noqa: BLE001 - a log hiccup must not stop later logs
            log.warning("recommendation log failed", exc_info=True,
                        extra={"tasks": [task_id for _, task_id, _ in batch][:20]})
        finally:
            for _ in batch:
                _queue.task_done()


def _write(engine: Any, decisions: list[tuple[int, str]]) -> None:
    """Compute the batch's recommendations in a read-only transaction (on SQLite it takes no
    write lock), then store them in one short write, queued on the owning ``Database``'s
    writer lock like every other write of the process. One row per task: the first
    decision noted wins, a task logged already is skipped, and the unique ``task_id`` with
    ON CONFLICT DO NOTHING keeps a retry or another replica from writing a second.

    When the batch fails — a task's data, or a platform's rules stored on first use (a write
    a read-only SQLite transaction may be refused) — it is done again task by task, each in
    a savepoint, in one write transaction."""
    first: dict[int, str] = {}
    for task_id, action in decisions:
        first.setdefault(task_id, action)
    db = Database.of(engine)
    try:
        with db.read() if db is not None else _begun(engine) as session:
            rows = _compute(session, first, one_by_one=False)
    except Exception:  # noqa: BLE001 - a log hiccup must not cost the batch's other rows
        log.warning("recommendation log batch failed; task by task", exc_info=True,
                    extra={"tasks": sorted(first)[:20]})
        with db.session() if db is not None else _begun(engine) as session:
            _insert(session, _compute(session, first, one_by_one=True))
        return
    if rows:
        with db.session() if db is not None else _begun(engine) as session:
            _insert(session, rows)


def _compute(session: Session, first: dict[int, str], one_by_one: bool) -> list[dict]:
    from bot.insight.recommend import recommend, recommend_many

    logged = set(session.exec(select(RecommendationLog.task_id).where(
        RecommendationLog.task_id.in_(sorted(first)))))
    tasks = list(session.exec(select(Task).where(
        Task.id.in_(sorted(set(first) - logged))).order_by(Task.id)))
    if not one_by_one:
        recs = dict(zip((t.id for t in tasks), recommend_many(session, tasks), strict=True))
    else:
        recs = {}
        for task in tasks:
            try:
                with session.begin_nested():
                    recs[task.id] = recommend(session, task)
            except Exception:  # noqa: BLE001 - one task's log must not cost the others'
                log.warning("recommendation log failed", exc_info=True,
                            extra={"task_id": task.id})
    now = utcnow()
    return [{"task_id": task_id, "verdict": rec.verdict, "score": rec.score,
             "weights_version": rec.policy, "decided": first[task_id or 0], "created_at": now,
             "detail": {"factors": rec.factors(),
                        "points": {r.factor: r.points for r in rec.reasons}}}
            for task_id, rec in recs.items()]


@contextmanager
def _begun(engine: Any) -> Iterator[Session]:
    """An engine no ``Database`` owns (none in the app): a plain unit of work."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def _insert(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    table = RecommendationLog.__table__
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(table).on_conflict_do_nothing(index_elements=["task_id"]), rows)
        return
    have = set(session.exec(select(RecommendationLog.task_id).where(
        RecommendationLog.task_id.in_([r["task_id"] for r in rows]))))
    fresh = [r for r in rows if r["task_id"] not in have]
    if fresh:
        session.execute(table.insert(), fresh)


def settle(timeout: float = 10.0) -> bool:
    """Wait until every noted decision is logged (tests, shutdown); False on timeout."""
    done = threading.Event()

    def wait() -> None:
        _queue.join()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done.wait(timeout)
