"""The daily digest: one card per notice channel at the configured local time — what closes
today, what waits for approval, what is stuck, and the latest results.

Sent once per channel and day: the outbox key ``digest:<chat>:<channel>:<date>`` is the
log. After downtime the day's digest still goes out (late) the same day; an older one is
not worth sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, select

from bot.core import outbox
from bot.core.lifecycle import OPEN_STATES
from bot.core.timefmt import zone
from bot.watch.settings import WatchSettings
from storage.models import Campaign, ChatBinding, Task, Team
from storage.types import utcnow

STUCK_AFTER = timedelta(hours=48)
RESULTS = ("accepted", "platform_rejected", "finished", "running")


def digest_rows(session: Session, platforms: list[str], team_id: int | None, at: datetime,
                tz: str | None = None) -> dict[str, list[tuple[Task, Campaign]]]:
    local = at.astimezone(zone(tz))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    query = select(Task, Campaign).join(Campaign, Campaign.id == Task.campaign_id)
    if "*" not in platforms:
        query = query.where(Campaign.platform.in_(platforms))
    if team_id is not None:
        query = query.where(Task.team_id == team_id)
    open_states = [s.value for s in OPEN_STATES]
    today = session.exec(query.where(Task.state.in_(open_states), Task.deadline >= day_start,
                                     Task.deadline < day_end).order_by(Task.deadline)).all()
    approval = session.exec(query.where(Task.state == "in_approval")
                            .order_by(Task.deadline)).all()
    stuck = session.exec(query.where(
        Task.state.in_(open_states),
        or_(Task.last_error.is_not(None),
            (Task.state.in_(["claimed", "drafting", "submitting", "submitted"]))
            & (Task.updated_at < at - STUCK_AFTER))).order_by(Task.id)).all()
    results = session.exec(query.where(Task.state.in_(RESULTS),
                                       Task.updated_at >= at - timedelta(hours=24))
                           .order_by(Task.updated_at.desc())).all()
    return {"today": list(today), "approval": list(approval), "stuck": list(stuck),
            "results": list(results)}


def enqueue_due(session: Session, settings: WatchSettings, now: datetime) -> int:
    """Digests whose local time has come today and that were not sent yet."""
    at_time = settings.digest_at()
    if at_time is None:
        return 0
    teams = {team.id: team for team in session.exec(select(Team))}
    channels: dict[tuple[str, str, int | None], list[str]] = {}
    for b in session.exec(select(ChatBinding).where(ChatBinding.purpose == "notices")):
        channels.setdefault((b.chat, b.channel_id, b.team_id), []).append(b.platform)
    sent = 0
    for (chat, channel, team_id), platforms in sorted(channels.items(), key=str):
        team = teams.get(team_id) if team_id is not None else None
        tz = team.timezone if team else None
        local = now.astimezone(zone(tz))
        if local.time() < at_time:
            continue
        day = local.date().isoformat()
        card_key = f"digest:{day}"
        sent += outbox.enqueue_card(
            session, chat, channel, card_key, "digest",
            {"platforms": sorted(set(platforms)), "team_id": team_id, "date": day,
             "at": now.isoformat(), "tz": tz},
            key=f"digest:{chat}:{channel}:{day}")
    return sent


__all__ = ["digest_rows", "enqueue_due", "utcnow"]
