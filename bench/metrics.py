"""The team metrics over a big window: what ``/dash/api/charts``, ``GET /api/metrics`` and the
review card compute (``bot.insight.metrics.compute``), at 10,000 and 100,000 tasks.

    .venv/bin/python bench/metrics.py [--tasks 10000,100000] [--database URL]

Every task has a history in the window (claim, request_approval, approve, submit,
mark_submitted, then accept or platform_reject, a few of them skipped or late), spread over
four platforms and 90 days. Printed per size: the median of three ``compute`` runs and of
three ``chart_data`` runs (the charts feed: metrics, rejection reasons, ROI), beside a floor
from the same run: one bare ``SELECT`` of the same task and event columns as tuples (the
least the metrics could cost without aggregating in SQL).
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

from sqlalchemy import delete, insert, select, text  # noqa: E402

from bench.rows import campaign, inserted_ids  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from storage.models import AuditEvent, Campaign, Platform, Task, Team  # noqa: E402
from storage.types import utcnow  # noqa: E402

PLATFORMS = ("tmall", "jd", "douyin", "pdd")
HISTORY = ("claim", "request_approval", "approve", "submit", "mark_submitted")


def populate(db: Database, count: int) -> None:
    """``count`` tasks with their histories (the tables are emptied first)."""
    now = utcnow()
    rng = random.Random(11)
    with db.session() as s:
        for table in (AuditEvent, Task, Campaign):
            s.execute(delete(table))
        if s.get(Team, 1) is None:
            s.add(Team(id=1, code="default", name="默认团队"))
        for code in PLATFORMS:
            if s.get(Platform, code) is None:
                s.add(Platform(code=code, name=code))
    chunk = 5_000
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        with db.session() as s:
            campaign_ids = inserted_ids(s, Campaign, [
                campaign(PLATFORMS[(start + i) % len(PLATFORMS)], f"M-{start + i}",
                         f"活动 {i}", now, type="大促") for i in range(n)])
            tasks, births = [], []
            for cid in campaign_ids:
                born = now - timedelta(days=rng.uniform(1, 90))
                births.append(born)
                tasks.append({"campaign_id": cid, "team_id": 1, "state": "accepted",
                              "version": 8, "deadline": born + timedelta(days=rng.uniform(1, 5)),
                              "created_at": born, "updated_at": born + timedelta(days=1)})
            task_ids = inserted_ids(s, Task, tasks)
            events = []
            for task_id, born in zip(task_ids, births, strict=True):
                at = born
                for action in HISTORY + (rng.choice(("accept", "accept", "platform_reject")),):
                    at += timedelta(hours=rng.uniform(0.5, 20))
                    events.append({"task_id": task_id, "actor": "li.na", "action": action,
                                   "detail": {"note": "x" * 40}, "created_at": at})
            s.execute(insert(AuditEvent.__table__), events)
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def median_ms(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="10000,100000")
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/metrics.db"
    upgrade(url)
    db = Database(url)
    from bot.insight.metrics import compute
    from bot.web.dash_charts import chart_data

    print(f"team metrics over 90 days, {db.dialect}")
    for size in [int(s) for s in args.tasks.split(",") if s]:
        populate(db, size)
        until = utcnow() + timedelta(days=1)
        since = until - timedelta(days=91)

        def bare() -> None:
            with db.engine.connect() as conn:
                conn.execute(select(Task.id, Task.created_at, Task.deadline, Task.team_id,
                                    Campaign.platform)
                             .join(Campaign, Campaign.id == Task.campaign_id)).all()
                conn.execute(select(AuditEvent.task_id, AuditEvent.action, AuditEvent.actor,
                                    AuditEvent.created_at)).all()

        def metrics(since=since, until=until) -> None:
            with db.session() as session:
                compute(session, since, until)

        def charts(since=since, until=until) -> None:
            with db.session() as session:
                chart_data(session, since, until, [], "zh-CN")

        floor, took, feed = median_ms(bare), median_ms(metrics), median_ms(charts)
        print(f"  {size:>7,} tasks: metrics {took:7.0f} ms, charts feed {feed:7.0f} ms "
              f"(floor: the same columns read as tuples, {floor:5.0f} ms)", flush=True)
    db.dispose()


if __name__ == "__main__":
    main()
