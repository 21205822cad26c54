"""Deadline reminders that never miss and never repeat.

One periodic sweep query finds every (task, tier) whose time has come and that has no
``reminder_log`` row yet; each decision is its own transaction that writes the log row
(unique per task + tier) together with the outbox messages. A replica that loses the race
gets an IntegrityError and sends nothing; a process killed mid-sweep has committed whole
decisions only, and the next sweep (after a restart, or on the new leader) does the rest.
After downtime every tier whose time passed is sent once, marked late.

Tier keys carry the deadline's revision (``24h#2``): a changed deadline gets fresh
reminders, while tiers that fell due before we knew that deadline are not sent.

Also here: the unclaimed-at-24 h escalation to managers, 催办 nags of pending approvals at
half and 90 % of their step's SLA (the timeout escalation itself is ``bot.approvals.service``), quiet
hours and the daily digest (``bot.watch.digest``).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, func, literal_column, union_all
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.core import outbox
from bot.core.i18n import t
from bot.core.timefmt import local, zone
from bot.core.users import members_with_role
from bot.watch import digest, routing
from bot.watch.settings import WatchSettings, get_watch_settings
from cards.watch import left_text
from storage.db import Database
from storage.models import ApprovalStep, Campaign, ReminderLog, Task, User
from storage.models_watch import NoticeBody

log = logging.getLogger(__name__)
REMIND_STATES = ("new", "claimed", "drafting", "in_approval", "approved", "platform_rejected")
NAG_POINTS = (50, 90)  # percent of an approval step's SLA
# Other once-per-period cards decided by the sweep (so on the leader only), like the digest:
# ``(session, now) -> cards enqueued``, each in its own transaction; e.g. the review report.
periodic: list = []


@dataclass
class SweepReport:
    sent: list[tuple[int, str]] = field(default_factory=list)
    late: int = 0
    deferred: int = 0
    skipped: int = 0
    raced: int = 0
    nags: int = 0
    digests: int = 0
    periodic: int = 0  # cards from the features' periodic hooks (the weekly review …)


@dataclass(frozen=True)
class Due:
    task_id: int
    deadline: datetime
    state: str
    claimed_by: int | None
    team_id: int
    rev: int
    since: datetime | None
    tier: str
    seconds: float

    @property
    def key(self) -> str:
        return f"{self.tier}#{self.rev}"

    @property
    def due_at(self) -> datetime:
        return self.deadline - timedelta(seconds=self.seconds)


def _branch(tier: str, delta: timedelta, states: tuple[str, ...], now: datetime,
            lookback: timedelta):
    if not re.fullmatch(r"[a-z0-9.]+", tier):
        raise ValueError(f"bad tier name {tier!r}")
    rev = func.coalesce(NoticeBody.deadline_rev, 0)
    key = literal_column(f"'{tier}#'", String) + cast(rev, String)
    return (
        select(Task.id.label("task_id"), Task.deadline, Task.state, Task.claimed_by,
               Task.team_id, rev.label("rev"), NoticeBody.deadline_since.label("since"),
               literal_column(f"'{tier}'", String).label("tier"),
               literal_column(str(int(delta.total_seconds()))).label("seconds"))
        .select_from(Task)
        .outerjoin(NoticeBody, NoticeBody.campaign_id == Task.campaign_id)
        .where(Task.state.in_(states), Task.deadline > now - lookback,
               Task.deadline <= now + delta,
               ~exists().where(ReminderLog.task_id == Task.id, ReminderLog.tier == key))
    )


def due_query(settings: WatchSettings, now: datetime):
    """The sweep: one compound query over the (state, deadline) index, one branch per tier."""
    lookback = timedelta(hours=settings.lookback_hours)
    branches = [_branch(name, delta, REMIND_STATES, now, lookback)
                for name, delta in settings.tiers()]
    if settings.escalate_unclaimed_hours > 0:
        branches.append(_branch("unclaimed", timedelta(hours=settings.escalate_unclaimed_hours),
                                ("new",), now, lookback))
    return union_all(*branches)


def find_due(db: Database, settings: WatchSettings, now: datetime) -> list[Due]:
    with db.session() as session:
        rows = session.execute(due_query(settings, now)).all()
    found = [Due(r.task_id, r.deadline, r.state, r.claimed_by, r.team_id, int(r.rev or 0),
                 r.since, r.tier, float(r.seconds)) for r in rows]
    return sorted(found, key=lambda d: (d.deadline, -d.seconds, d.task_id))


def in_quiet(settings: WatchSettings, moment: datetime, tz: str | None) -> datetime | None:
    """If ``moment`` is in quiet hours, when they end (aware); else None."""
    quiet = settings.quiet()
    if quiet is None:
        return None
    start, end = quiet
    lt = moment.astimezone(zone(tz))
    now_t = lt.time().replace(tzinfo=None)
    inside = (start <= now_t < end) if start < end else (now_t >= start or now_t < end)
    if not inside:
        return None
    end_dt = lt.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_dt <= lt:
        end_dt += timedelta(days=1)
    return end_dt


def sweep(db: Database, *, now: datetime | None = None,
          settings: WatchSettings | None = None) -> SweepReport:
    settings = settings or get_watch_settings()
    now = now or settings.now()
    report = SweepReport()
    tz = None  # the team zone comes from settings.timezone through bot.core.timefmt
    for due in find_due(db, settings, now):
        if due.since is not None and due.due_at < due.since - timedelta(minutes=1):
            report.skipped += 1  # fell due before we knew this deadline
            continue
        quiet_end = in_quiet(settings, now, tz)
        if quiet_end is not None and due.deadline > quiet_end:
            report.deferred += 1  # it can wait for the morning without missing anything
            continue
        late = (now - due.due_at).total_seconds() > settings.late_grace_seconds and \
            in_quiet(settings, due.due_at, tz) is None
        try:
            with db.session() as session:
                session.add(ReminderLog(task_id=due.task_id, tier=due.key, late=late,
                                        sent_at=now))
                session.flush()  # the unique (task, tier) row is the decision
                _send(session, due, late, now)
        except IntegrityError:
            report.raced += 1
            continue
        report.sent.append((due.task_id, due.key))
        report.late += late
        if settings.sweep_pause_ms:
            time.sleep(settings.sweep_pause_ms / 1000)
    report.nags = nag_approvals(db, settings, now)
    with db.session() as session:
        report.digests = digest.enqueue_due(session, settings, now)
    for enqueue in list(periodic):
        try:
            with db.session() as session:
                report.periodic += enqueue(session, now)
        except Exception:  # noqa: BLE001 - one report failing must not stop the reminders
            log.exception("periodic card failed", extra={"hook": getattr(enqueue, "__name__", "?")})
    if report.sent or report.nags or report.digests or report.periodic:
        log.info("reminder sweep", extra={"sent": len(report.sent), "late": report.late,
                                          "deferred": report.deferred, "nags": report.nags,
                                          "digests": report.digests,
                                          "periodic": report.periodic})
    return report


def _send(session: Session, due: Due, late: bool, now: datetime) -> None:
    task = session.get(Task, due.task_id)
    assert task is not None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    escalation = due.tier == "unclaimed"
    people = routing.responsible(session, campaign, task.team_id)
    params: dict = {"task_id": task.id, "tier": due.key, "deadline": due.deadline.isoformat(),
                    "due": due.due_at.isoformat(), "at": now.isoformat(), "late": late,
                    "kind": "escalation" if escalation else "tier"}
    private: list[tuple[User, str]] = []
    if escalation:
        bosses = routing.managers(session, people, task.team_id)
        params["managers_display"] = [m.display_name for m in bosses]
        params["mentions"] = [m.name for m in bosses]
        for boss in bosses:
            private.append((boss, t("rem.private_escalated", boss.lang, task_id=task.id,
                                    title=campaign.title[:80], when=local(due.deadline))))
    else:
        owner = session.get(User, task.claimed_by) if task.claimed_by else None
        params["mentions"] = [owner.name] if owner else [u.name for u in people]
        if owner is not None:
            late_note = t("rem.late", owner.lang, due=local(due.due_at)) if late else ""
            key = "rem.private" if due.deadline > now else "rem.private_passed"
            private.append((owner, t(key, owner.lang, task_id=task.id, title=campaign.title[:80],
                                     left=left_text(due.deadline - now, owner.lang),
                                     when=local(due.deadline), late=late_note).strip()))
    card_key = f"reminder:{task.id}:{due.key}"
    for chat, channel in routing.targets(session, task, campaign):
        outbox.enqueue_card(session, chat, channel, card_key, "reminder", params,
                            key=f"{card_key}:{chat}:{channel}", task_id=task.id)
    for user, text in private:
        outbox.enqueue_private(session, user.id or 0, text, key=f"{card_key}:u{user.id}")


def nag_approvals(db: Database, settings: WatchSettings, now: datetime) -> int:
    """催办: remind a pending step's approvers at 50 % and 90 % of its SLA."""
    sent = 0
    with db.session() as session:
        steps = session.exec(
            select(ApprovalStep).join(Task, Task.id == ApprovalStep.task_id)
            .where(ApprovalStep.state == "pending", ApprovalStep.due_at.is_not(None),
                   ApprovalStep.due_at > now, Task.state == "in_approval")
            .order_by(ApprovalStep.id)).all()
    for step in steps:
        start = step.created_at
        escalations = _escalations(db, step.id or 0)
        if escalations:
            start = max(start, escalations[-1][0])
        assert step.due_at is not None
        window = step.due_at - start
        if window <= timedelta(0):
            continue
        reached = [p for p in NAG_POINTS if now >= start + window * p / 100]
        if not reached:
            continue
        point = reached[-1]
        tier = f"nag{point}:{step.id}:{int(step.due_at.timestamp() // 60)}"
        try:
            with db.session() as session:
                session.add(ReminderLog(task_id=step.task_id, tier=tier, sent_at=now))
                session.flush()
                _send_nag(session, step, tier, point, now, start,
                          escalations[-1][1] if escalations else set())
            sent += 1
        except IntegrityError:
            continue
    return sent


def _escalations(db: Database, step_id: int) -> list[tuple[datetime, set[int]]]:
    """Escalation levels recorded by the approvals feature, if it is installed."""
    try:
        from storage.models_approval import ApprovalEscalation
    except ImportError:
        return []
    with db.session() as session:
        rows = session.exec(select(ApprovalEscalation).where(
            ApprovalEscalation.step_id == step_id).order_by(ApprovalEscalation.level)).all()
    return [(r.created_at, set(r.escalated_to or [])) for r in rows]


def _send_nag(session: Session, step: ApprovalStep, tier: str, point: int, now: datetime,
              start: datetime, escalated: set[int]) -> None:
    task = session.get(Task, step.task_id)
    assert task is not None and step.due_at is not None
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    approvers = {u.id: u for u in members_with_role(session, step.role, task.team_id)
                 if u.id != step.requested_by}
    for uid in escalated:
        user = session.get(User, uid)
        if user is not None:
            approvers[uid] = user
    params = {"task_id": task.id, "kind": "nag", "role": step.role,
              "n": NAG_POINTS.index(point) + 1, "waited": int((now - start).total_seconds()),
              "due": step.due_at.isoformat(), "at": now.isoformat(),
              "deadline": task.deadline.isoformat() if task.deadline else None,
              "mentions": sorted(u.name for u in approvers.values())}
    card_key = f"reminder:{task.id}:{tier}"
    bindings = outbox.bindings_for(session, campaign.platform, "approvals", task.team_id) or \
        outbox.bindings_for(session, campaign.platform, "notices", task.team_id)
    for b in bindings:
        outbox.enqueue_card(session, b.chat, b.channel_id, card_key, "reminder", params,
                            key=f"{card_key}:{b.chat}:{b.channel_id}", task_id=task.id)
    for user in approvers.values():
        outbox.enqueue_private(session, user.id or 0, t(
            "rem.private_nag", user.lang, task_id=task.id, title=campaign.title[:80],
            due=local(step.due_at)), key=f"{card_key}:u{user.id}")
