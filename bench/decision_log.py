"""What the recommendation log costs a decision under a 双11 burst of claims, before and after
the batch path (docs/benchmarks.md, "Recommendation log").

A realistic database (``bench/peak_setup.prepare``: the demo data and N new Tmall tasks with
their cards, plus the made-up year of Tmall campaigns with results of
tests/insight_decisions.py so every factor has data), the tasks claimed; then, in this
process, side by side on separate tasks:

- **per task** (before): the log as it was — one transaction per batch, a savepoint per
  task with its existence check and the per-task ``recommend`` of before
  (tests/recommend_reference.py);
- **batch** (after): ``bot.insight.decision_log._write`` — ``recommend_many`` in a read-only
  transaction, one insert for the batch through the owning ``Database``.

Each prints ms per decision (wall and this process's CPU) and SQL statements per decision;
"compute" is the recommendation alone (no write).

    .venv/bin/python bench/decision_log.py [--decisions 600] [--batch 200] [--backend both]
        [--dated] [--no-history]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, update  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

import bot.wiring  # noqa: E402,F401  (registers every feature)
from bench.peak_setup import drop_pg, fresh_pg, prepare  # noqa: E402
from bot.insight import decision_log  # noqa: E402
from bot.insight.recommend import recommend_many  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Campaign, Task  # noqa: E402
from storage.models_results import RecommendationLog  # noqa: E402
from tests import insight_decisions  # noqa: E402
from tests import recommend_reference as reference  # noqa: E402

WARM = 10


def old_write(engine, decisions: list[tuple[int, str]]) -> None:
    """The log's write before the batch path (bot/insight/decision_log.py at 8ac432d)."""
    with Session(engine, expire_on_commit=False) as session:
        for task_id, action in decisions:
            with session.begin_nested():
                if session.exec(select(RecommendationLog.id).where(
                        RecommendationLog.task_id == task_id)).first() is not None:
                    continue
                task = session.get(Task, task_id)
                if task is None:
                    continue
                rec = reference.recommend(session, task)
                session.add(RecommendationLog(
                    task_id=task_id, verdict=rec.verdict, score=rec.score,
                    weights_version=rec.policy, decided=action,
                    detail={"factors": rec.factors(),
                            "points": {r.factor: r.points for r in rec.reasons}}))
                session.flush()
        session.commit()


def compute_old(db: Database, ids: list[int]) -> None:
    with db.read() as s:
        for task_id in ids:
            reference.recommend(s, s.get(Task, task_id))


def compute_new(db: Database, ids: list[int]) -> None:
    with db.read() as s:
        recommend_many(s, list(s.exec(select(Task).where(Task.id.in_(ids)))))


def timed(db: Database, ids: list[int], batch: int,
          run: Callable[[list[int]], None]) -> dict:
    statements = [0]

    def count(*_args) -> None:
        statements[0] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        for start in range(0, len(ids), batch):
            run(ids[start:start + batch])
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    n = len(ids)
    return {"ms": (time.perf_counter() - wall) * 1000 / n,
            "cpu": (time.process_time() - cpu) * 1000 / n, "sql": statements[0] / n}


def bench(url: str, decisions: int, batch: int, history: bool,
          dated: bool) -> dict[str, dict]:
    ids = prepare(url, 4 * decisions + 4 * WARM)
    db = Database(url)
    if history:
        insight_decisions.build(db)
    with db.session() as s:  # the burst: every task was just claimed
        s.exec(update(Task).where(Task.id.in_(ids)).values(state="claimed"))  # type: ignore[call-overload]
        if dated:  # each its own dates, type and slot: little a batch can share
            kinds = list(insight_decisions.TYPES)
            for n, task in enumerate(s.exec(select(Task).where(Task.id.in_(ids)))):
                c = s.get(Campaign, task.campaign_id)
                kind = kinds[n % len(kinds)]
                c.type, c.requirements = kind, {"slot": insight_decisions.TYPES[kind][0]}
                c.event_start = insight_decisions.NOW + timedelta(hours=n)
                c.event_end = c.event_start + timedelta(days=3)
                s.add(c)
    parts = [ids[i * (decisions + WARM):(i + 1) * (decisions + WARM)] for i in range(4)]
    runs: dict[str, tuple[list[int], Callable[[list[int]], None]]] = {
        "compute, per task": (parts[0], lambda b: compute_old(db, b)),
        "compute, batch": (parts[1], lambda b: compute_new(db, b)),
        "log, per task (before)": (parts[2], lambda b: old_write(
            db.engine, [(t, "claim") for t in b])),
        "log, batch (after)": (parts[3], lambda b: decision_log._write(
            db.engine, [(t, "claim") for t in b])),
    }
    out = {}
    for name, (part, run) in runs.items():
        run(part[:WARM])  # first use: rules stored, caches filled
        out[name] = timed(db, part[WARM:], batch, run)
    with db.read() as s:
        logged = s.exec(select(func.count()).select_from(RecommendationLog)).one()
    assert logged == 2 * (decisions + WARM), logged  # one row per decision, both paths
    db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=600, help="measured per path")
    parser.add_argument("--batch", type=int, default=decision_log.BATCH)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--no-history", action="store_true",
                        help="without the year of Tmall results (most factors: no data)")
    parser.add_argument("--dated", action="store_true",
                        help="each campaign its own event dates, type and slot (the notices "
                             "of the peak have none: the batch shares the most)")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        name = None
        if backend == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp()}/decision_log.db"
        else:
            url, name = fresh_pg()
        try:
            found = bench(url, args.decisions, args.batch, not args.no_history, args.dated)
        finally:
            if name:
                drop_pg(name)
        print(f"{backend}: {args.decisions} decisions, batches of {args.batch}"
              + (", campaigns with their own dates" if args.dated else ""))
        for label, row in found.items():
            print(f"  {label:24} {row['ms']:7.3f} ms/decision  cpu {row['cpu']:7.3f} ms"
                  f"  {row['sql']:6.2f} SQL/decision")


if __name__ == "__main__":
    main()
