"""Short leases kept alive by a heartbeat: work held by a process that died is free in seconds.

A worker (the outbox dispatcher, the inbox worker) claims a row by writing its owner id to
``lease_owner`` and ``now + lease`` to ``next_attempt_at``. While the process lives its
heartbeat moves ``next_attempt_at`` forward for every row it holds, every third of a lease;
when the process dies (even SIGKILL) the heartbeat stops and any replica — or the restarted
process — takes the rows once the lease has run out: ``PROMOPILOT_LEASE_SECONDS`` (15 s by
default) instead of a long fixed lease.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import timedelta
from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import update

from storage.db import Database
from storage.types import utcnow

log = logging.getLogger(__name__)


class LeaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOPILOT_", env_file=".env", extra="ignore")

    lease_seconds: float = Field(default=15.0, gt=0.5, description="How long a claim on an "
                                 "outbox or inbox row lasts without a heartbeat")
    inbox_poll_seconds: float = Field(default=2.0, description="How often rows left by a "
                                      "process that died (or failed work) are picked up")
    inbox_workers: int = Field(default=16, ge=1, description="Inbound events processed at "
                               "once per process")
    inbox_pause_ms: float = Field(default=0, description="Test knob: each inbound event "
                                  "waits this long before it is processed (lets a test kill "
                                  "the process with acknowledged events unprocessed)")


@lru_cache
def get_lease_settings() -> LeaseSettings:
    return LeaseSettings()


def lease() -> timedelta:
    return timedelta(seconds=get_lease_settings().lease_seconds)


def owner_id(what: str) -> str:
    """Names the holder in ``lease_owner``: host, process and a per-worker nonce."""
    return f"{what}:{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def renew(db: Database, model: Any, owner: str, status: str) -> int:
    """Push out the lease of every row this owner holds in ``status``; how many."""
    with db.session() as session:
        result = session.execute(
            update(model).where(model.lease_owner == owner, model.status == status)
            .values(next_attempt_at=utcnow() + lease())
            .execution_options(synchronize_session=False))
        return result.rowcount or 0


class Heartbeat:
    """A daemon thread renewing one owner's leases while ``active()`` says it holds any."""

    def __init__(self, db: Database, model: Any, owner: str, status: str,
                 active: Any = lambda: True) -> None:
        self.db, self.model, self.owner, self.status = db, model, owner, status
        self.active = active
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"heartbeat-{self.model.__tablename__}")
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(get_lease_settings().lease_seconds / 3):
            if not self.active():
                continue
            try:
                renew(self.db, self.model, self.owner, self.status)
            except Exception as exc:  # noqa: BLE001 - the database is away: try next beat
                log.warning("lease heartbeat failed", extra={
                    "table": self.model.__tablename__, "error": repr(exc)[:200]})

    def stop(self) -> None:
        self._stop.set()
