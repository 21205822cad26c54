"""The log of what was recommended when a team decided, written just after the decision.

Computing a recommendation costs a dozen queries; inside the transition it was a third of a
claim's time (py-spy, docs/benchmarks.md). So the lifecycle listener only notes the decision
in its session; once that transaction has committed, one background thread per process
computes the recommendation — the same call the listener made, a moment later — and stores
it once per task (the existence check and the insert in a savepoint, as before), a batch of
decisions per transaction. A process that dies in that moment loses the log row of the last
decisions, never a decision: it is the back-test's record, not state.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from storage.models import Task
from storage.models_results import RecommendationLog

log = logging.getLogger(__name__)
PENDING = "promopilot.decisions"  # session.info: (task id, action) decided in this transaction
BATCH = 200
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
    while True:
        batch = [_queue.get()]
        while len(batch) < BATCH:
            try:
                batch.append(_queue.get_nowait())
            except queue.Empty:
                break
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
    from bot.insight.recommend import recommend

    with Session(engine, expire_on_commit=False) as session:
        for task_id, action in decisions:
            try:
                with session.begin_nested():
                    if session.exec(select(RecommendationLog.id).where(
                            RecommendationLog.task_id == task_id)).first() is not None:
                        continue
                    task = session.get(Task, task_id)
                    if task is None:
                        continue
                    rec = recommend(session, task)
                    session.add(RecommendationLog(
                        task_id=task_id, verdict=rec.verdict, score=rec.score,
                        weights_version=rec.policy, decided=action,
                        detail={"factors": rec.factors(),
                                "points": {r.factor: r.points for r in rec.reasons}}))
                    session.flush()
            except Exception:  # noqa: BLE001 - one task's log must not cost the others'
                log.warning("recommendation log failed", exc_info=True,
                            extra={"task_id": task_id})
        session.commit()


def settle(timeout: float = 10.0) -> bool:
    """Wait until every noted decision is logged (tests, shutdown); False on timeout."""
    done = threading.Event()

    def wait() -> None:
        _queue.join()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done.wait(timeout)
