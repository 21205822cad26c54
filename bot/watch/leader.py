"""Who runs the periodic jobs when several replicas share one PostgreSQL.

The holder of a session-level ``pg_try_advisory_lock`` is the leader. The lock lives on one
dedicated connection: if the leader process dies (even ``kill -9``) its connection closes,
PostgreSQL frees the lock, and another replica takes it at its next check (every few
seconds; well within a minute). The leader re-checks its connection too, so a database
restart cannot leave two leaders. SQLite is single-host: always the leader.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database

log = logging.getLogger(__name__)


class Leader:
    def __init__(self, db: Database, key: int, *, recheck_seconds: float = 5.0) -> None:
        self.db = db
        self.key = key
        self.recheck = recheck_seconds
        self._conn: Connection | None = None
        self._held = False
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def applies(self) -> bool:
        return self.db.dialect == "postgresql"

    def is_leader(self) -> bool:
        if not self.applies:
            return True
        with self._lock:
            if time.monotonic() - self._checked < self.recheck:
                return self._held
            self._checked = time.monotonic()
            try:
                self._held = self._check()
            except Exception as exc:  # noqa: BLE001 - lost DB = not the leader, try later
                if self._held:
                    log.warning("leader lock lost", extra={"error": repr(exc)[:200]})
                self._drop()
                self._held = False
            return self._held

    def _check(self) -> bool:
        if self._conn is None:
            self._conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self._held:
            self._conn.execute(text("SELECT 1"))  # still connected → still holding it
            return True
        got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                      {"k": self.key}).scalar())
        if got:
            log.info("became leader", extra={"lock_key": self.key})
        return got

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
                self._conn.close()
        self._conn = None

    def release(self) -> None:
        with self._lock:
            # Closing the connection frees the lock anyway; unlocking is a courtesy.
            if self._conn is not None and self._held:
                with contextlib.suppress(Exception):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            self._conn, self._held, self._checked = None, False, 0.0
