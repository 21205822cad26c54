"""Polls every notice source and ingests what it finds; keeps each source's health."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from adapters.platforms.base import NoticeSource
from bot.ingest import IngestReport, ingest
from storage.db import Database
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class SourceHealth:
    name: str
    ok: bool = True
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_counts: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok,
                "consecutive_failures": self.consecutive_failures,
                "last_success": self.last_success.isoformat() if self.last_success else None,
                "last_error": self.last_error, "last_counts": self.last_counts}


class Watcher:
    def __init__(self, db: Database, sources: list[NoticeSource]) -> None:
        self.db = db
        self.sources = sources
        self.health: dict[str, SourceHealth] = {s.name: SourceHealth(s.name) for s in sources}

    def run_once(self) -> IngestReport:
        total = IngestReport()
        for source in self.sources:
            health = self.health.setdefault(source.name, SourceHealth(source.name))
            try:
                notices = source.fetch()
            except Exception as exc:  # noqa: BLE001 - reported in health, retried next round
                health.ok = False
                health.consecutive_failures += 1
                health.last_error = repr(exc)[:500]
                log.warning("source failed", extra={"source": source.name,
                                                    "failures": health.consecutive_failures,
                                                    "error": health.last_error})
                continue
            report = ingest(self.db, notices)
            health.ok, health.consecutive_failures = True, 0
            health.last_success, health.last_error = utcnow(), None
            health.last_counts = {"new": len(report.new), "updated": len(report.updated),
                                  "unchanged": report.unchanged,
                                  "rejected": len(getattr(source, "rejected", []) or [])}
            total.new += report.new
            total.updated += report.updated
            total.unchanged += report.unchanged
            total.failed += report.failed
        return total
