"""Times are stored in UTC and shown in the team's zone (default Asia/Shanghai)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.settings import get_settings


def zone(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or get_settings().timezone)


def local(dt: datetime | None, tz: str | None = None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if dt is None:
        return "—"
    return dt.astimezone(zone(tz)).strftime(fmt)
