"""Periodic jobs on APScheduler 3 (AsyncIOScheduler): watch, outbox, submit, review polls.

Blocking work runs in threads so the event loop keeps answering chat platforms in time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from storage.types import utcnow

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[object]]


def threaded(fn: Callable[[], object]) -> Job:
    async def run() -> object:
        return await asyncio.to_thread(fn)

    run.__name__ = getattr(fn, "__name__", "job")
    return run


def guarded(name: str, job: Job, is_leader: Callable[[], bool]) -> Job:
    async def run() -> None:
        if not is_leader():
            return
        try:
            await job()
        except Exception:  # noqa: BLE001 - a failing job is logged and runs again next time
            log.exception("job failed", extra={"job": name})

    return run


def build_scheduler(jobs: list[tuple[str, Job, float]],
                    is_leader: Callable[[], bool] = lambda: True) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    first = utcnow() + timedelta(seconds=1)
    for name, job, seconds in jobs:
        scheduler.add_job(guarded(name, job, is_leader), "interval", seconds=seconds, id=name,
                          next_run_time=first, max_instances=1, coalesce=True,
                          misfire_grace_time=max(1, int(seconds)))
    return scheduler
