"""The reminder sweep over 100,000 open tasks (target: under 200 ms), and its query plan.

    .venv/bin/python bench/sweep.py [--tasks 100000] [--database URL]

Deadlines are spread over the next 90 days; every tier that was already due has its
reminder_log row (the steady state of a sweep every 30 s). Timed: the sweep 30 s later,
which finds and sends the few reminders that fell due meanwhile. The plan printed is the
database's own EXPLAIN of the sweep query; it must use ix_tasks_state_deadline.
Default database: a fresh SQLite file; pass a PostgreSQL URL to measure that instead.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, text  # noqa: E402
from sqlmodel import select  # noqa: E402

from bench.rows import campaign, inserted_ids  # noqa: E402
from bot.watch.reminders import due_query, find_due, sweep  # noqa: E402
from bot.watch.settings import WatchSettings  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Campaign,
    ChatBinding,
    Platform,
    ReminderLog,
    Task,
    Team,
)
from storage.types import utcnow  # noqa: E402

STATES = ["new", "claimed", "drafting", "in_approval", "approved"]


def populate(db: Database, count: int, settings: WatchSettings) -> None:
    now = utcnow()
    rng = random.Random(7)
    with db.session() as s:
        s.add(Team(code="default", name="默认团队"))
        s.add(Platform(code="tmall", name="天猫"))
        s.add(ChatBinding(chat="web", channel_id="tmall-promo", platform="tmall"))
    team_id = 1
    tiers = settings.tiers() + [("unclaimed", timedelta(hours=24))]
    chunk = 10_000
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        with db.session() as s:
            campaign_ids = inserted_ids(s, Campaign, [
                campaign("tmall", f"S-{start + i}", f"活动 {i}", now) for i in range(n)])
            rows = []
            for cid in campaign_ids:
                deadline = now + timedelta(seconds=rng.uniform(60, 90 * 86400))
                rows.append({"campaign_id": cid, "team_id": team_id,
                             "state": rng.choice(STATES), "version": 1, "deadline": deadline,
                             "created_at": now, "updated_at": now})
            task_ids = inserted_ids(s, Task, rows)
            logs = [{"task_id": tid, "tier": f"{name}#0", "late": False, "sent_at": now}
                    for tid, row in zip(task_ids, rows, strict=True)
                    for name, delta in tiers
                    if row["deadline"] - delta <= now
                    and (name != "unclaimed" or row["state"] == "new")]
            if logs:
                s.execute(insert(ReminderLog.__table__), logs)
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def explain(db: Database, settings: WatchSettings) -> str:
    query = due_query(settings, utcnow())
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            rows = conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {compiled}"))
            return "\n".join(r[0] for r in rows)
        rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        return "\n".join(str(r[-1]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    db = Database(url)
    settings = WatchSettings(digest_time="", quiet_hours="", _env_file=None)
    started = time.perf_counter()
    populate(db, args.tasks, settings)
    with db.session() as s:
        open_tasks = s.exec(select(func.count()).select_from(Task)).one()
        logged = s.exec(select(func.count()).select_from(ReminderLog)).one()
    print(f"database: {db.dialect}; {open_tasks:,} open tasks, {logged:,} reminders already "
          f"logged (setup {time.perf_counter() - started:.1f} s)")
    query_ms = []
    for _ in range(5):
        t0 = time.perf_counter()
        find_due(db, settings, utcnow())
        query_ms.append((time.perf_counter() - t0) * 1000)
    print(f"sweep query, nothing due: median {statistics.median(query_ms):.1f} ms "
          f"(of {len(query_ms)})")
    later = utcnow() + timedelta(seconds=30)
    t0 = time.perf_counter()
    report = sweep(db, now=later, settings=settings)
    elapsed = (time.perf_counter() - t0) * 1000
    print(f"sweep 30 s later: {elapsed:.1f} ms, {len(report.sent)} reminders sent "
          f"(target < 200 ms: {'met' if elapsed < 200 else 'MISSED'})")
    plan = explain(db, settings)
    print("plan:\n" + plan)
    print("uses ix_tasks_state_deadline:", "ix_tasks_state_deadline" in plan)
    db.dispose()


if __name__ == "__main__":
    main()
