"""Team cost metrics: what promotion declarations cost the team, per platform and month.

Read from the tasks and their audit events (every transition is one ``audit_events`` row):

- **hours to submission**: from the notice (the task's ``created_at``, when PromoPilot saw
  it) to the task's first ``mark_submitted``; counted in the month of that submission.
- **deadlines missed**: a registration deadline that has passed with no submission at or
  before it, unless the task was skipped at or before it (the team chose not to take part);
  counted in the month of the deadline, beside the number of deadlines that passed.
- **rejections and rework**: every approval rejection (``reject``, ``request_changes``) and
  platform rejection (``platform_reject``); rework runs from the rejection to the next
  ``request_approval`` (approval) or the next ``mark_submitted`` (platform). Rework not done
  yet is counted as open. Counted in the month of the rejection.
- **overtime submissions**: a submission a person made outside the team's working hours
  (``PROMOPILOT_WORK_HOURS``, ``PROMOPILOT_WORK_DAYS``) in the team's zone. The person's
  moment is the ``mark_submitted`` when a person marked it (hand-off done), else their
  ``submit`` click; a submission the robot made on its own is never overtime.

Months and working hours are in the zone of the task's team (``teams.timezone``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import or_
from sqlmodel import Session, select

from bot.core.errors import Invalid
from bot.core.settings import get_settings
from bot.core.timefmt import zone
from storage.models import AuditEvent, Campaign, Task, Team, User
from storage.types import utcnow

INTERNAL_REJECTIONS = ("reject", "request_changes")
EVENTS = ("mark_submitted", "submit", "request_approval", "reject", "request_changes",
          "platform_reject", "accept", "skip")


class InsightSettings(BaseSettings):
    """Settings of the team metrics and the review report (``PROMOPILOT_*``)."""

    model_config = SettingsConfigDict(env_prefix="PROMOPILOT_", env_file=".env", extra="ignore")

    work_hours: str = Field(default="09:00-18:00", description="The team's working hours, "
                            "team local time (overtime submissions fall outside them)")
    work_days: str = Field(default="1-5", description="Working days, ISO weekdays "
                           "(1 = Monday): a range 1-5 or a list 1,2,3,4,5,6")
    minutes_saved_per_declaration: float = Field(
        default=90, description="The team's estimate of the hands-on minutes one declaration "
        "took before PromoPilot (reading the notice, the sheet, chasing approvals, uploading)")
    review_period: str = Field(default="week", description="The review report: week, month "
                               "or off")
    review_time: str = Field(default="09:30", description="When the review card goes out on "
                             "the first day of a period, team local time")
    review_link_days: float = Field(default=14, description="How long the chart link on a "
                                    "review card works")
    chart_font: str = Field(default="", description="A font file with Chinese glyphs for "
                            "the chart (default: one found on the system, else English labels)")

    def hours(self) -> tuple[time, time]:
        start, _, end = self.work_hours.partition("-")
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())

    def days(self) -> frozenset[int]:
        text = self.work_days.replace(" ", "")
        if re.fullmatch(r"[1-7]-[1-7]", text):
            a, b = int(text[0]), int(text[2])
            return frozenset(range(a, b + 1))
        return frozenset(int(d) for d in text.split(",") if d)


@lru_cache
def get_insight_settings() -> InsightSettings:
    return InsightSettings()


def parse_since(value: str | None, now: datetime, tz: str | None = None,
                default: str = "30d") -> datetime:
    """``30d``, ``12h``, ``4w``, a date (``2026-11-01``, midnight in the team's zone) or an
    ISO time with a zone; refused with ``insight.bad_since`` otherwise."""
    raw = (value or default).strip()
    found = re.fullmatch(r"(\d{1,5})\s*([hdw])", raw.lower())
    if found:
        n, unit = int(found.group(1)), found.group(2)
        return now - {"h": timedelta(hours=n), "d": timedelta(days=n),
                      "w": timedelta(weeks=n)}[unit]
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("insight.bad_since", value=raw[:40]) from None
    if parsed.tzinfo is None:
        if len(raw) > 10:
            raise Invalid("insight.bad_since", value=raw[:40])
        parsed = parsed.replace(tzinfo=zone(tz))
    return parsed


@dataclass
class Bucket:
    """One platform in one month (``month`` = ``*`` for a total over months)."""

    platform: str
    month: str
    submitted: int = 0  # declarations first submitted
    hours_to_submit: float = 0.0  # summed over ``submitted``
    submissions: int = 0  # every submission, resubmissions included
    overtime: int = 0
    person_submissions: int = 0  # submissions a person made (the overtime base)
    deadlines: int = 0  # registration deadlines that passed
    missed: int = 0
    rejections_approval: int = 0
    rejections_platform: int = 0
    accepted: int = 0  # platform verdicts: accepted (beside rejections_platform)
    rework_hours: float = 0.0  # summed over ``reworks_done``
    reworks_done: int = 0
    reworks_open: int = 0

    @property
    def rejections(self) -> int:
        return self.rejections_approval + self.rejections_platform

    @property
    def avg_hours_to_submit(self) -> float | None:
        return self.hours_to_submit / self.submitted if self.submitted else None

    @property
    def avg_rework_hours(self) -> float | None:
        return self.rework_hours / self.reworks_done if self.reworks_done else None

    @property
    def acceptance_rate(self) -> float | None:
        verdicts = self.accepted + self.rejections_platform
        return self.accepted / verdicts if verdicts else None

    def add(self, other: Bucket) -> None:
        for name in ("submitted", "hours_to_submit", "submissions", "overtime",
                     "person_submissions", "deadlines", "missed", "rejections_approval",
                     "rejections_platform", "accepted", "rework_hours", "reworks_done",
                     "reworks_open"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        data = asdict(self)
        data["hours_to_submit"] = round(self.hours_to_submit, 2)
        data["rework_hours"] = round(self.rework_hours, 2)
        data.update(rejections=self.rejections, acceptance_rate=_round(self.acceptance_rate, 4),
                    avg_hours_to_submit=_round(self.avg_hours_to_submit, 2),
                    avg_rework_hours=_round(self.avg_rework_hours, 2))
        return data


def _round(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


@dataclass
class Metrics:
    since: datetime
    until: datetime
    rows: list[Bucket] = field(default_factory=list)  # per (platform, month), sorted

    def total(self, platform: str | None = None) -> Bucket:
        out = Bucket(platform or "*", "*")
        for row in self.rows:
            if platform is None or row.platform == platform:
                out.add(row)
        return out

    def platforms(self) -> list[str]:
        return sorted({r.platform for r in self.rows})

    def as_dict(self) -> dict:
        from bot.core.timefmt import iso

        return {"since": iso(self.since), "until": iso(self.until),
                "rows": [r.as_dict() for r in self.rows],
                "platforms": {p: self.total(p).as_dict() for p in self.platforms()},
                "total": self.total().as_dict()}


def outside_hours(moment: datetime, tz: str, settings: InsightSettings) -> bool:
    local = moment.astimezone(zone(tz))
    start, end = settings.hours()
    clock = local.time().replace(tzinfo=None)
    return local.isoweekday() not in settings.days() or not (start <= clock < end)


class TaskRow(NamedTuple):
    id: int
    created_at: datetime
    deadline: datetime | None
    team_id: int | None
    platform: str


class EventRow(NamedTuple):
    task_id: int
    action: str
    actor: str
    created_at: datetime


def _utc(moment: datetime) -> datetime:
    """In UTC, as stored times are: aware times of one tzinfo compare twenty times faster."""
    return moment.astimezone(UTC)


class Months:
    """Which month of a zone a moment falls in, by bisecting the window's month starts:
    the walk asks 400,000 times for 100,000 tasks, and a zone conversion each time was a
    fifth of it."""

    def __init__(self, tz: str, since: datetime, until: datetime) -> None:
        local, end = since.astimezone(zone(tz)), until.astimezone(zone(tz))
        year, month = local.year, local.month
        self.tz, self.starts, self.labels = tz, [], []
        while (year, month) <= (end.year, end.month) or len(self.starts) < 2:
            self.starts.append(_utc(datetime(year, month, 1, tzinfo=zone(tz))))
            self.labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        self.starts.append(_utc(datetime(year, month, 1, tzinfo=zone(tz))))  # the last bound

    def of(self, moment: datetime) -> str:
        i = bisect_right(self.starts, moment) - 1
        if 0 <= i < len(self.labels):
            return self.labels[i]
        local = moment.astimezone(zone(self.tz))  # outside the window: asked directly
        return f"{local.year:04d}-{local.month:02d}"


def _in_scope(query, since: datetime, until: datetime, platforms: Iterable[str] | None,
              team_id: int | None):
    """``query`` (joined to tasks and campaigns) kept to the tasks that may have something
    in the window: noticed before its end and changed, or with a deadline, since its start
    (a transition always moves ``updated_at``)."""
    query = query.where(Task.created_at < until,
                        or_(Task.updated_at >= since, Task.deadline >= since))
    wanted = sorted(set(platforms or ())) if platforms else []
    if wanted and "*" not in wanted:
        query = query.where(Campaign.platform.in_(wanted))
    if team_id is not None:
        query = query.where(Task.team_id == team_id)
    return query


def scope(session: Session, since: datetime, until: datetime, platforms: Iterable[str] | None,
          team_id: int | None) -> list[TaskRow]:
    """The window's tasks as light rows: a year of a busy team is 100,000 tasks, and ORM
    objects cost five times the read (and a Row's attributes ten times a tuple's)."""
    query = (select(Task.id, Task.created_at, Task.deadline, Task.team_id, Campaign.platform)
             .join(Campaign, Campaign.id == Task.campaign_id))
    return [TaskRow._make(row) for row in session.exec(
        _in_scope(query, since, until, platforms, team_id).order_by(Task.id))]


def _events(session: Session, since: datetime, until: datetime,
            platforms: Iterable[str] | None, team_id: int | None) -> dict[int, list[EventRow]]:
    """The scoped tasks' events that count, as light rows in order, in one statement
    joined to the same scope."""
    query = (select(AuditEvent.task_id, AuditEvent.action, AuditEvent.actor,
                    AuditEvent.created_at)
             .join(Task, Task.id == AuditEvent.task_id)
             .join(Campaign, Campaign.id == Task.campaign_id)
             .where(AuditEvent.action.in_(EVENTS)))
    found: dict[int, list[EventRow]] = {}
    for row in session.exec(_in_scope(query, since, until, platforms, team_id)
                            .order_by(AuditEvent.created_at, AuditEvent.id)):
        event = EventRow._make(row)
        found.setdefault(event.task_id or 0, []).append(event)
    return found


def compute(session: Session, since: datetime, until: datetime | None = None, *,
            platforms: Iterable[str] | None = None, team_id: int | None = None,
            now: datetime | None = None, settings: InsightSettings | None = None) -> Metrics:
    """The metrics of the window ``[since, until)`` (``until`` defaults to now)."""
    now = now or utcnow()
    until = until or now
    settings = settings or get_insight_settings()
    tasks = scope(session, since, until, platforms, team_id)
    events = _events(session, since, until, platforms, team_id)
    people = set(session.exec(select(User.name)))
    zones = {team.id: team.timezone for team in session.exec(select(Team))}
    default_zone = get_settings().timezone
    buckets: dict[tuple[str, str], Bucket] = {}
    months: dict[str, Months] = {}

    def bucket(platform: str, moment: datetime, tz: str) -> Bucket:
        calendar = months.get(tz) or months.setdefault(tz, Months(tz, since, until))
        month = calendar.of(moment)
        found = buckets.get((platform, month))
        if found is None:
            found = buckets[(platform, month)] = Bucket(platform, month)
        return found

    def inside(moment: datetime | None) -> bool:
        return moment is not None and since <= moment < until

    for task in tasks:
        platform = task.platform
        tz = zones.get(task.team_id) or default_zone
        history = events.get(task.id or 0, [])
        submitted = [e for e in history if e.action == "mark_submitted"]
        first = submitted[0].created_at if submitted else None
        if inside(first):
            b = bucket(platform, first, tz)
            b.submitted += 1
            b.hours_to_submit += (first - task.created_at).total_seconds() / 3600
        if task.deadline is not None and inside(task.deadline) and task.deadline <= now:
            b = bucket(platform, task.deadline, tz)
            b.deadlines += 1
            skipped = any(e.action == "skip" and e.created_at <= task.deadline for e in history)
            if not skipped and not (first is not None and first <= task.deadline):
                b.missed += 1
        _rejections(history, platform, tz, inside, bucket, now)
        _submissions(history, people, platform, tz, inside, bucket, settings)
    return Metrics(since, until, [buckets[k] for k in sorted(buckets)])


def _rejections(history: list[EventRow], platform: str, tz: str, inside, bucket,
                now: datetime) -> None:
    for i, event in enumerate(history):
        if event.action == "accept" and inside(event.created_at):
            bucket(platform, event.created_at, tz).accepted += 1
        if event.action not in (*INTERNAL_REJECTIONS, "platform_reject") \
                or not inside(event.created_at):
            continue
        b = bucket(platform, event.created_at, tz)
        internal = event.action in INTERNAL_REJECTIONS
        if internal:
            b.rejections_approval += 1
        else:
            b.rejections_platform += 1
        ends = "request_approval" if internal else "mark_submitted"
        end = next((e.created_at for e in history[i + 1:] if e.action == ends), None)
        if end is not None and end <= now:
            b.reworks_done += 1
            b.rework_hours += (end - event.created_at).total_seconds() / 3600
        else:
            b.reworks_open += 1


def _submissions(history: list[EventRow], people: set[str], platform: str, tz: str, inside,
                 bucket, settings: InsightSettings) -> None:
    click: EventRow | None = None  # the latest person's submit click since the last one
    for event in history:
        if event.action == "submit":
            click = event if event.actor in people else click
            continue
        if event.action != "mark_submitted":
            continue
        moment = event.created_at if event.actor in people else (
            click.created_at if click is not None else None)
        click = None
        if not inside(event.created_at):
            continue
        b = bucket(platform, event.created_at, tz)
        b.submissions += 1
        if moment is not None:
            b.person_submissions += 1
            b.overtime += outside_hours(moment, tz, settings)


def hours_saved(bucket: Bucket, settings: InsightSettings | None = None) -> float:
    """The team's estimate: declarations submitted × its minutes per declaration by hand."""
    settings = settings or get_insight_settings()
    return bucket.submitted * settings.minutes_saved_per_declaration / 60
