"""Setting a deadline by hand, when the notice text left it unclear ("set deadline" button
or ``deadline <id> <time>`` / ``截止 <编号> <时间>``).

A set deadline starts a new reminder revision (fresh tiers, none for times already past)
and is kept when a later version of the notice still has no readable deadline.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core import lifecycle, outbox
from bot.core.actions import ActionRequest, handles
from bot.core.errors import Conflict, Forbidden, Invalid
from bot.core.i18n import Term, roles
from bot.core.lifecycle import OPEN_STATES, STAFF, Outcome
from bot.core.settings import get_settings
from bot.core.timefmt import local
from bot.watch.extract_dates import extract
from bot.watch.settings import get_watch_settings
from storage.models import AuditEvent, Campaign, Task
from storage.models_watch import NoticeBody


def parse_deadline(value: str, now: datetime, tz: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("/", "-"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=local_zone(tz))
    except ValueError:
        pass
    found = extract(f"报名截止:{value}", now=now, tz=tz)
    return found.registration_end


def local_zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


@handles("set_deadline")
def set_deadline(session: Session, task: Task, req: ActionRequest) -> Outcome:
    actor = req.actor
    if not (actor.has_any(STAFF) or (task.claimed_by and task.claimed_by == actor.user_id)):
        raise Forbidden("err.forbidden_role", roles=roles(actor.roles),
                        action=Term("action.set_deadline"), allowed=roles(STAFF | {"claimant"}))
    if task.state not in OPEN_STATES:
        raise Conflict("err.bad_state", task_id=task.id, state=Term(f"state.{task.state}"),
                       action=Term("action.set_deadline"))
    if req.version is not None and req.version != task.version:
        raise Conflict("err.stale_card", task_id=task.id)
    now = get_watch_settings().now()
    tz = get_settings().timezone
    when = parse_deadline(req.comment or str(req.payload.get("deadline") or ""), now, tz)
    if when is None:
        raise Invalid("deadline.err.format", value=(req.comment or "")[:40])
    if when <= now:
        raise Invalid("deadline.err.past", when=local(when))
    before = task.deadline
    task.deadline = when
    session.add(task)
    body = session.get(NoticeBody, task.campaign_id) or NoticeBody(campaign_id=task.campaign_id)
    body.unclear, body.deadline_since = False, now
    body.deadline_rev += 1
    session.add(body)
    session.flush()
    lifecycle.touch(session, task.id or 0)
    session.refresh(task)
    session.add(AuditEvent(task_id=task.id, actor=actor.name, action="set_deadline",
                           from_state=task.state, to_state=task.state, event_id=req.event_id,
                           detail={"old": before.isoformat() if before else None,
                                   "new": when.isoformat()}))
    campaign = session.get(Campaign, task.campaign_id)
    if campaign is not None:
        outbox.enqueue_task_card(session, task)
    return Outcome(task.id or 0, "set_deadline", task.state, task.state, task.version)
