"""Times are stored in UTC and shown in the team's zone (default Asia/Shanghai).

Every time a person reads goes through this module (docs/decisions.md, "Showing time"):

- ``local``: chat cards, replies, the console — the team's wall clock, no zone label
  (``2026-12-01 06:08``; the team reads its own zone).
- ``stated``: human-readable output read outside the chat (CLI, exports, reports) — the
  same wall clock with the zone named (``2026-12-01 06:08 (Asia/Shanghai)``).
- ``iso``: machine-readable output (JSON lines, CSV, ``--json``) — ISO 8601 in the team's
  zone with its offset (``2026-12-01T06:08:00+08:00``), still exact and parseable.

A naive ``datetime`` has no zone, so its meaning is a guess: in strict mode (the tests turn it
on, as does ``PROMOPILOT_STRICT_TIMES=1``) it raises ``NaiveTime``; otherwise it is logged and
taken as UTC, which is how every time is stored.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.core.settings import get_settings

log = logging.getLogger(__name__)
DEFAULT_FMT = "%Y-%m-%d %H:%M"
_strict = os.environ.get("PROMOPILOT_STRICT_TIMES", "").lower() in ("1", "true", "yes")


class NaiveTime(ValueError):
    """A datetime without a zone was about to be shown to a person."""


def set_strict(on: bool) -> bool:
    """Turn strict mode on or off; returns the previous setting."""
    global _strict
    before, _strict = _strict, bool(on)
    return before


def strict() -> bool:
    return _strict


def zone(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or get_settings().timezone)


def zone_name(name: str | None = None) -> str:
    return str(zone(name))


def aware(dt: datetime) -> datetime:
    """``dt`` with a zone: a naive one raises in strict mode, else is taken as UTC (logged)."""
    if dt.tzinfo is not None and dt.tzinfo.utcoffset(dt) is not None:
        return dt
    if _strict:
        raise NaiveTime(f"naive datetime {dt!r} reached a message; store and pass aware times")
    log.warning("naive datetime shown as UTC", extra={"value": dt.isoformat()})
    return dt.replace(tzinfo=UTC)


def in_zone(dt: datetime, tz: str | None = None) -> datetime:
    return aware(dt).astimezone(zone(tz))


def local(dt: datetime | None, tz: str | None = None, fmt: str = DEFAULT_FMT) -> str:
    """The team's wall clock for chat texts: ``2026-12-01 06:08``."""
    if dt is None:
        return "—"
    return in_zone(dt, tz).strftime(fmt)


def local_date(dt: datetime | None, tz: str | None = None) -> date | None:
    """The team's calendar day of ``dt`` (not the UTC day)."""
    return None if dt is None else in_zone(dt, tz).date()


def stated(dt: datetime | None, tz: str | None = None, fmt: str = DEFAULT_FMT) -> str:
    """The wall clock with the zone named, for output read outside the chat:
    ``2026-12-01 06:08 (Asia/Shanghai)``."""
    if dt is None:
        return "—"
    return f"{local(dt, tz, fmt)} ({zone_name(tz)})"


def iso(dt: datetime | None, tz: str | None = None, timespec: str = "seconds") -> str | None:
    """Machine-readable, in the team's zone with its offset: ``2026-12-01T06:08:00+08:00``."""
    if dt is None:
        return None
    return in_zone(dt, tz).isoformat(timespec=timespec)


def iso_text(value: str, tz: str | None = None) -> str:
    """An ISO timestamp string with a zone (``…+00:00``, ``…Z``) re-expressed in the team's
    zone; any other string unchanged."""
    if len(value) < 16 or value[4:5] != "-" or value[10:11] not in ("T", " "):
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return value
    return iso(parsed, tz) or value


class Shown:
    """A datetime as a message parameter: ``{when}`` is the team's wall clock
    (``DEFAULT_FMT``); ``{when:%m-%d %H:%M}`` picks the strftime format."""

    __slots__ = ("dt", "tz")

    def __init__(self, dt: datetime, tz: str | None = None) -> None:
        self.dt, self.tz = aware(dt), tz

    def __format__(self, spec: str) -> str:
        return local(self.dt, self.tz, spec or DEFAULT_FMT)

    def __str__(self) -> str:
        return local(self.dt, self.tz)
