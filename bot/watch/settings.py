"""Settings of watchers and reminders (``PROMOPILOT_*``), beside the feature that uses them.

``clock_offset_seconds`` / ``fake_now`` shift the clock the sweep and digest read: for
time-controlled tests of a real process (restart test) and for rehearsing a schedule.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.types import utcnow


class WatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOPILOT_", env_file=".env", extra="ignore")

    sources_file: str = Field(default="", description="YAML of notice sources "
                              "(default: config/sources.yaml if present)")
    reminder_tiers: str = Field(default="72h,24h,4h,1h",
                                description="Reminder times before the registration deadline")
    escalate_unclaimed_hours: float = 24
    digest_time: str = Field(default="09:00", description="Daily digest, team local time; "
                             "empty = off")
    quiet_hours: str = Field(default="22:00-08:00", description="No reminders then unless the "
                             "deadline falls before they end; empty = off")
    sweep_interval_seconds: float = 30
    late_grace_seconds: float = 300
    lookback_hours: float = 48
    nag_max: int = 3
    clock_offset_seconds: float = 0
    fake_now: datetime | None = None
    sweep_pause_ms: float = Field(default=0, description="Test knob: pause between reminder "
                                  "decisions (lets a test kill the process mid-sweep)")
    leader_lock_key: int = 7_170_717

    @field_validator("fake_now")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("fake_now needs a time zone offset")
        return value

    def tiers(self) -> list[tuple[str, timedelta]]:
        found = []
        for raw in self.reminder_tiers.split(","):
            raw = raw.strip().lower()
            if not raw:
                continue
            unit = raw[-1]
            value = float(raw[:-1]) if unit in "hmd" else float(raw)
            delta = {"h": timedelta(hours=value), "m": timedelta(minutes=value),
                     "d": timedelta(days=value)}.get(unit, timedelta(hours=value))
            found.append((raw if unit in "hmd" else f"{raw}h", delta))
        return sorted(found, key=lambda item: -item[1])

    def quiet(self) -> tuple[time, time] | None:
        if not self.quiet_hours.strip():
            return None
        start, _, end = self.quiet_hours.partition("-")
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())

    def digest_at(self) -> time | None:
        return time.fromisoformat(self.digest_time.strip()) if self.digest_time.strip() else None

    def now(self) -> datetime:
        if self.fake_now is not None:
            return self.fake_now
        return utcnow() + timedelta(seconds=self.clock_offset_seconds)


@lru_cache
def get_watch_settings() -> WatchSettings:
    return WatchSettings()
