"""Polls every notice source and ingests what it finds; keeps each source's health.

Health, backoff and HTTP validators live in ``source_states`` so every replica, the CLI and
the next leader see the same picture. A failing source is retried with exponential backoff
plus jitter; after ``alert_after`` failures in a row one error card goes to the ops channel,
and one recovery card when it works again (both decided in the transaction that records it).
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.core import outbox, timefmt
from bot.core.ports import NoticeSource
from bot.watch import rejections
from bot.watch.ingest import IngestReport, ingest
from storage.db import Database
from storage.models_watch import SourceState
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=1)
_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")  # query strings may carry tokens: never shown


@dataclass
class SourceHealth:
    name: str
    ok: bool = True
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_counts: dict = field(default_factory=dict)
    platform: str = ""
    kind: str = ""
    next_attempt_at: datetime | None = None
    alerting: bool = False
    rejections: dict = field(default_factory=dict)  # ref → {reason, first, last}: not stored

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "platform": self.platform, "kind": self.kind,
                "consecutive_failures": self.consecutive_failures,
                "last_success": timefmt.iso(self.last_success),  # team zone, with offset
                "next_attempt_at": timefmt.iso(self.next_attempt_at),
                "alerting": self.alerting,
                "last_error": self.last_error, "last_counts": self.last_counts,
                "rejected": len(self.rejections),
                "rejections": rejections.shown(self.rejections)}

    @classmethod
    def of(cls, state: SourceState) -> SourceHealth:
        counts = dict(state.last_counts or {})
        kept = counts.pop("rejections", None) or {}
        counts.pop("rejection_seq", None)
        return cls(state.name, state.ok, state.consecutive_failures, state.last_success,
                   state.last_error, counts, state.platform, state.kind,
                   state.next_attempt_at, state.alerting, dict(kept))


def backoff(interval: float, failures: int) -> timedelta:
    """Exponential in the failures so far, capped at an hour, with ±20 % jitter."""
    seconds = min(interval * 2 ** max(0, failures - 1), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


class Watcher:
    def __init__(self, db: Database, sources: list[NoticeSource], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.sources = sources
        self.clock = clock
        self.respect_schedule = False  # the server's watcher polls only due sources
        self._memory: dict[str, SourceHealth] = {}
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Shutting down: a pass in progress polls no further source, and a fetch that
        fails meanwhile (the app's own server is going away) is not counted against it."""
        self._stopping.set()

    @property
    def health(self) -> dict[str, SourceHealth]:
        """Every configured source's health, as stored (any replica sees the same)."""
        names = [s.name for s in self.sources]
        try:
            with self.db.session() as session:
                states = {s.name: s for s in session.exec(
                    select(SourceState).where(SourceState.name.in_(names)))} if names else {}
        except Exception as exc:  # noqa: BLE001 - healthz must answer even then
            log.warning("source health unreadable", extra={"error": repr(exc)[:200]})
            return dict(self._memory)
        result = {}
        for source in self.sources:
            state = states.get(source.name)
            result[source.name] = SourceHealth.of(state) if state else SourceHealth(
                source.name, platform=source.platform, kind=getattr(source, "kind", ""))
        return result

    def run_once(self) -> IngestReport:
        """One pass over every source (or, for the server's watcher, every due source)."""
        return self._run(only_due=self.respect_schedule)

    def run_due(self) -> IngestReport:
        return self._run(only_due=True)

    def _run(self, only_due: bool) -> IngestReport:
        total = IngestReport()
        for source in list(self.sources):
            if self._stopping.is_set():
                break
            try:
                report = self.poll(source, only_due=only_due)
            except Exception:  # noqa: BLE001 - a broken source never stops the others
                log.exception("polling failed", extra={"source": source.name})
                continue
            if report is not None:
                total.new += report.new
                total.updated += report.updated
                total.unchanged += report.unchanged
                total.failed += report.failed
                total.rejected += report.rejected
        return total

    def _state(self, session: Session, source: NoticeSource) -> SourceState:
        state = session.get(SourceState, source.name)
        if state is None:
            state = SourceState(name=source.name, platform=source.platform,
                                kind=getattr(source, "kind", ""))
            session.add(state)
            session.flush()
        return state

    def poll(self, source: NoticeSource, *, only_due: bool = False) -> IngestReport | None:
        now = self.clock()
        with self.db.session() as session:
            state = self._state(session, source)
            if only_due and state.next_attempt_at and state.next_attempt_at > now:
                return None
            if hasattr(source, "validators"):
                source.validators = dict(state.validators or {})  # type: ignore[attr-defined]
        try:
            notices = source.fetch()
        except Exception as exc:  # noqa: BLE001 - reported in health, retried with backoff
            if self._stopping.is_set():
                log.info("fetch interrupted by shutdown; not counted",
                         extra={"source": source.name, "error": repr(exc)[:200]})
                return IngestReport()
            self._failed(source, exc, now)
            return IngestReport()
        channel = getattr(source, "channel", None)
        try:
            report = ingest(self.db, notices, extra_targets=[tuple(channel.split(":", 1))]
                            if channel else None, now=now)
        except Exception as exc:  # noqa: BLE001 - e.g. the database is away: the source
            # shows failing (health, backoff, ops card) instead of ok with nothing stored
            log.exception("ingest failed", extra={"source": source.name,
                                                  "notices": len(notices)})
            self._failed(source, exc, now)
            return IngestReport()
        self._succeeded(source, report, now)
        return report

    def _failed(self, source: NoticeSource, exc: Exception, now: datetime) -> None:
        interval = float(getattr(source, "interval", 300))
        alert_after = int(getattr(source, "alert_after", 3))
        error = _QUERY.sub(r"\1?…", f"{type(exc).__name__}: {exc}")[:500]
        with self.db.session() as session:
            state = self._state(session, source)
            state.ok = False
            state.consecutive_failures += 1
            state.last_attempt, state.last_error = now, error
            state.next_attempt_at = now + backoff(interval, state.consecutive_failures)
            state.updated_at = now
            if state.consecutive_failures >= alert_after and not state.alerting:
                state.alerting = True
                state.incidents += 1
                _announce(session, state, "source_down")
            session.add(state)
            self._memory[source.name] = SourceHealth.of(state)
        log.warning("source failed", extra={"source": source.name, "platform": source.platform,
                                            "failures": self._memory[source.name]
                                            .consecutive_failures, "error": error})

    def _succeeded(self, source: NoticeSource, report: IngestReport, now: datetime) -> None:
        with self.db.session() as session:
            state = self._state(session, source)
            recovered = state.alerting
            state.ok, state.consecutive_failures, state.alerting = True, 0, False
            state.last_attempt, state.last_success, state.last_error = now, now, None
            state.next_attempt_at = now + timedelta(seconds=float(getattr(source, "interval",
                                                                          300)))
            state.validators = dict(getattr(source, "validators", {}) or {})
            found = rejections.collect(source, report.rejected)
            kept, seq, new = rejections.remember(state, found, now)
            state.last_counts = {"new": len(report.new), "updated": len(report.updated),
                                 "unchanged": report.unchanged, "rejected": len(found),
                                 "failed": len(report.failed), "rejections": kept,
                                 "rejection_seq": seq}
            state.updated_at = now
            if recovered:
                _announce(session, state, "source_recovered")
            if new:
                rejections.announce(session, state, new)
            session.add(state)
            self._memory[source.name] = SourceHealth.of(state)
        if recovered:
            log.info("source recovered", extra={"source": source.name})


def _announce(session: Session, state: SourceState, what: str) -> None:
    """An outage (or its end) to every ops channel; the key makes it once per incident."""
    bindings = outbox.bindings_for(session, state.platform or "*", "ops")
    for b in bindings:
        outbox.enqueue_card(
            session, b.chat, b.channel_id, f"{what}:{state.name}:{state.incidents}", what,
            {"source": state.name, "incident": state.incidents},
            key=f"{what}:{state.name}:{state.incidents}:{b.chat}:{b.channel_id}")
    if not bindings:
        log.error("no ops channel bound for source alerts", extra={"source": state.name,
                                                                   "what": what})
