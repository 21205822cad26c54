"""Ingest of 10,000 notices of which half are duplicates (target: under 2 s).

    .venv/bin/python bench/ingest.py [--notices 10000] [--database URL]

5,000 notices are ingested first (untimed). The timed batch holds those 5,000 again,
unchanged, plus 5,000 new ones: the duplicates cost one lookup per 500, the new ones a
campaign, a task, an audit row, a notice body and a card in the outbox each.
Default database: a fresh SQLite file; pass a PostgreSQL URL to measure that instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.core.ports import Notice  # noqa: E402
from bot.watch.ingest import ingest  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from storage.models import Campaign, ChatBinding, OutboxMessage, Task, Team  # noqa: E402
from storage.types import utcnow  # noqa: E402

BASE = utcnow().replace(microsecond=0)


def notices(start: int, count: int) -> list[Notice]:
    now = BASE
    return [Notice(platform=("tmall", "jd", "douyin", "pdd")[i % 4], external_id=f"B-{i}",
                   title=f"2026年大促招商 第{i}期", type="大促",
                   registration_end=now + timedelta(days=3 + i % 20),
                   requirements={"min_discount": 0.1, "categories": ["食品"]},
                   text="商品需满足近30天最低价要求") for i in range(start, start + count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        if s.exec(select(Team)).first() is None:
            s.add(Team(code="default", name="默认团队"))
        for platform in ("tmall", "jd", "douyin", "pdd"):
            s.add(ChatBinding(chat="web", channel_id=f"{platform}-promo", platform=platform))
    half = args.notices // 2
    ingest(db, notices(0, half))
    batch = notices(0, half) + notices(half, args.notices - half)
    started = time.perf_counter()
    report = ingest(db, batch)
    elapsed = time.perf_counter() - started
    with db.session() as s:
        campaigns = s.exec(select(func.count()).select_from(Campaign)).one()
        tasks = s.exec(select(func.count()).select_from(Task)).one()
        cards = s.exec(select(func.count()).select_from(OutboxMessage)).one()
    print(f"database: {db.dialect}")
    print(f"ingested {len(batch):,} notices ({report.unchanged:,} duplicates, "
          f"{len(report.new):,} new, {len(report.failed)} failed) in {elapsed:.2f} s "
          f"— {len(batch) / elapsed:,.0f} notices/s (target < 2 s: "
          f"{'met' if elapsed < 2 else 'MISSED'})")
    print(f"totals: {campaigns:,} campaigns, {tasks:,} tasks, {cards:,} notice cards queued")
    db.dispose()


if __name__ == "__main__":
    main()
