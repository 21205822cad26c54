"""Notices in, campaigns and tasks out — idempotently.

Same platform + external id + content → nothing. Changed content → the same campaign gets
a new version and its task's card shows the change. New → a campaign, one task per team and
a notice card in the channels bound to that platform.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from adapters.platforms.base import Notice
from bot import lifecycle, outbox
from storage.db import Database
from storage.models import AuditEvent, Campaign, Platform, Task, Team
from storage.types import utcnow

log = logging.getLogger(__name__)
TRACKED = ("title", "type", "registration_start", "registration_end", "event_start",
           "event_end", "requirements", "source_url")


@dataclass
class IngestReport:
    new: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)


def ingest(db: Database, notices: list[Notice]) -> IngestReport:
    report = IngestReport()
    for notice in notices:
        try:
            with db.session() as session:
                _ingest_one(session, notice, report)
        except IntegrityError:
            # Another replica ingested the same notice at the same moment: it is there now.
            report.unchanged += 1
        except Exception as exc:  # noqa: BLE001 - one bad notice must not stop the rest
            log.exception("ingest failed", extra={"platform": notice.platform,
                                                  "external_id": notice.external_id})
            report.failed.append(f"{notice.platform}/{notice.external_id}: {exc!r}"[:300])
    return report


def _changes(campaign: Campaign, notice: Notice) -> dict[str, list]:
    changes = {}
    for name in TRACKED:
        old, new = getattr(campaign, name), getattr(notice, name)
        if old != new:
            changes[name] = [_show(old), _show(new)]
    return changes


def _show(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _ingest_one(session: Session, notice: Notice, report: IngestReport) -> None:
    content_hash = notice.content_hash
    campaign = session.exec(select(Campaign).where(
        Campaign.platform == notice.platform, Campaign.external_id == notice.external_id,
    )).first()
    if campaign is not None and campaign.content_hash == content_hash:
        report.unchanged += 1
        return
    if session.get(Platform, notice.platform) is None:
        session.add(Platform(code=notice.platform, name=notice.platform))
        session.flush()
    fields = {name: getattr(notice, name) for name in TRACKED}
    if campaign is None:
        campaign = Campaign(platform=notice.platform, external_id=notice.external_id,
                            content_hash=content_hash, **fields)
        session.add(campaign)
        session.flush()
        for team in session.exec(select(Team)):
            task = Task(campaign_id=campaign.id or 0, team_id=team.id or 0,
                        deadline=notice.registration_end)
            session.add(task)
            session.flush()
            session.add(AuditEvent(task_id=task.id, actor="watcher", action="notice_new",
                                   to_state=task.state,
                                   detail={"external_id": notice.external_id}))
            outbox.enqueue_task_card(session, task, notice.platform)
        report.new.append(campaign.id or 0)
        return
    changes = _changes(campaign, notice)
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.content_hash = content_hash
    campaign.version += 1
    campaign.updated_at = utcnow()
    session.add(campaign)
    for task in session.exec(select(Task).where(Task.campaign_id == campaign.id)):
        task.deadline = notice.registration_end
        session.add(task)
        session.flush()
        lifecycle.touch(session, task.id or 0)
        session.refresh(task)
        session.add(AuditEvent(task_id=task.id, actor="watcher", action="notice_updated",
                               from_state=task.state, to_state=task.state,
                               detail={"version": campaign.version, "changes": changes}))
        outbox.enqueue_task_card(session, task, notice.platform)
        for listener in notice_listeners:
            listener(session, task, campaign, changes)
    report.updated.append(campaign.id or 0)


notice_listeners: list = []  # (session, task, campaign, changes) → e.g. a "notice updated" card
