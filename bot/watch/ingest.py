"""Notices in, campaigns and tasks out — idempotently.

Same platform + external id + content → nothing. Changed content → the same campaign gets
a new version, its task's card updates in place and a "notice updated" card says what
changed (old → new); never a second task. New → a campaign, one task per team and a notice
card in the channels routed to it (platform / category / shop bindings).

A notice without dates gets them from its text (``bot.watch.extract_dates``); when that is unsure
the card says the deadline is unclear and offers a button to set it.

Large batches take a fast path: one query finds what is already known, new notices are
inserted in chunks (one transaction each), and only changed ones go one by one.

Nothing blocks, nothing is lost: every notice is checked first (``bot.watch.validate``) and
one that cannot be read is rejected with its id and reason (``IngestReport.rejected``; the
watcher logs and announces each once); a chunk that fails as a whole is stored again row by
row, so one poisonous notice costs only itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import insert, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.core import lifecycle, outbox
from bot.core.ports import Notice
from bot.core.settings import get_settings
from bot.watch import routing
from bot.watch.extract_dates import extract
from bot.watch.validate import TIME_FIELDS, Unreadable, check_notice, clean_text, sane_time
from storage.db import Database
from storage.models import AuditEvent, Campaign, OutboxMessage, Platform, Task, Team
from storage.models_watch import NoticeBody
from storage.types import utcnow

log = logging.getLogger(__name__)
TRACKED = ("title", "type", "registration_start", "registration_end", "event_start",
           "event_end", "requirements", "source_url")
CHUNK = 2000


@dataclass
class IngestReport:
    new: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    # (platform/external id, why) for every notice not stored: unreadable, or the database
    # refused it even alone. The watcher remembers them, so each is told once.
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def reject(self, notice: object, reason: str) -> None:
        self.rejected.append((ref(notice), reason[:300]))


def ref(notice: object) -> str:
    """``platform/external_id`` of whatever a source handed in, printable and short."""
    return (f"{clean_text(getattr(notice, 'platform', '?'), 32) or '?'}/"
            f"{clean_text(getattr(notice, 'external_id', '?'), 128) or '?'}")


@dataclass
class Prepared:
    """A notice with its hash (of what the source said) and the dates read from its text."""

    notice: Notice
    content_hash: str
    dates_from: str = "feed"
    unclear: bool = False


def prepare(notice: Notice, now: datetime, tz: str) -> Prepared:
    content_hash = notice.content_hash  # before filling: extraction never fakes a change
    if notice.registration_end is not None:
        return Prepared(notice, content_hash)
    found = extract(f"{notice.title}\n{notice.text}", now=now, tz=tz)
    if not found.found:
        return Prepared(notice, content_hash, "none", True)
    filled = dataclasses.replace(
        notice,
        registration_start=notice.registration_start or found.registration_start,
        registration_end=found.registration_end,
        event_start=notice.event_start or found.event_start,
        event_end=notice.event_end or found.event_end,
    )
    try:
        for name in TIME_FIELDS:
            sane_time(getattr(filled, name), name)
    except Unreadable:  # the text named an impossible year: ask a person instead
        return Prepared(notice, content_hash, "none", True)
    return Prepared(filled, content_hash, "text", found.unclear)


def ingest(db: Database, notices: list[Notice], *,
           extra_targets: list[tuple[str, str]] | None = None,
           now: datetime | None = None) -> IngestReport:
    report = IngestReport()
    now = now or utcnow()
    tz = get_settings().timezone
    latest: dict[tuple[str, str], Notice] = {}
    for given in notices:  # the same notice twice in one batch: the last one counts
        try:
            notice = check_notice(given)
        except Exception as exc:  # noqa: BLE001 - one unreadable notice, not the batch
            report.reject(given, str(exc) if isinstance(exc, Unreadable)
                          else f"unreadable notice ({type(exc).__name__}: {exc})")
            continue
        key = (notice.platform, notice.external_id)
        if key in latest and latest[key].content_hash == notice.content_hash:
            report.unchanged += 1
        latest[key] = notice
    items = list(latest.values())
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        known = _known(db, chunk)
        fresh: list[Prepared] = []
        for notice in chunk:
            have = known.get((notice.platform, notice.external_id))
            if have is not None and have == notice.content_hash:
                report.unchanged += 1
                continue
            try:
                prepared = prepare(notice, now, tz)
            except Exception as exc:  # noqa: BLE001 - one unreadable notice, not the batch
                report.reject(notice, f"dates could not be read ({type(exc).__name__}: {exc})")
                continue
            if have is None:
                fresh.append(prepared)
            else:
                _one(db, prepared, report, extra_targets, now)
        if fresh:
            try:
                with db.session() as session:
                    ids = _create_many(session, fresh, extra_targets, now)
                report.new += ids
            except Exception as exc:  # noqa: BLE001 - the chunk is retried row by row
                # IntegrityError: another replica took some of these at the same moment.
                # Anything else: one row the database refuses costs only that row.
                if not isinstance(exc, IntegrityError):
                    log.warning("chunk insert failed; storing its notices one by one",
                                extra={"notices": len(fresh), "error": repr(exc)[:300]})
                for prepared in fresh:
                    _one(db, prepared, report, extra_targets, now)
    return report


def _known(db: Database, notices: list[Notice]) -> dict[tuple[str, str], str]:
    keys = [(n.platform, n.external_id) for n in notices]
    with db.session() as session:
        rows = session.exec(select(Campaign.platform, Campaign.external_id, Campaign.content_hash)
                            .where(tuple_(Campaign.platform, Campaign.external_id).in_(keys)))
        return {(p, e): h for p, e, h in rows}


def _one(db: Database, prepared: Prepared, report: IngestReport,
         extra_targets: list[tuple[str, str]] | None, now: datetime) -> None:
    notice = prepared.notice
    try:
        with db.session() as session:
            _ingest_one(session, prepared, report, extra_targets, now)
    except IntegrityError as exc:
        # Another replica ingested the same notice at the same moment: it is there now.
        # If it is not, the database refused this notice itself: that is a rejection.
        if _known(db, [notice]):
            report.unchanged += 1
            return
        report.failed.append(f"{notice.platform}/{notice.external_id}: {exc!r}"[:300])
        report.reject(notice, f"could not be stored ({type(exc).__name__}: {exc})")
    except Exception as exc:  # noqa: BLE001 - one bad notice must not stop the rest
        # The watcher logs each rejection once (not on every poll); the trace is for debugging.
        log.debug("notice not stored", exc_info=True,
                  extra={"platform": notice.platform, "external_id": notice.external_id})
        report.failed.append(f"{notice.platform}/{notice.external_id}: {exc!r}"[:300])
        report.reject(notice, f"could not be stored ({type(exc).__name__}: {exc})")


def _ensure_platforms(session: Session, codes: set[str]) -> None:
    have = set(session.exec(select(Platform.code).where(Platform.code.in_(codes))))
    for code in sorted(codes - have):
        session.add(Platform(code=code, name=code))
    session.flush()


def _create_many(session: Session, items: list[Prepared],
                 extra_targets: list[tuple[str, str]] | None, now: datetime) -> list[int]:
    """New notices in one transaction: campaigns, bodies, tasks, audit and notice cards.

    Core inserts (executemany, RETURNING in parameter order) rather than ORM objects: a
    batch of thousands is the normal first poll of a busy feed, and the rows are simple.
    """
    _ensure_platforms(session, {p.notice.platform for p in items})
    teams = list(session.exec(select(Team.id).order_by(Team.id)))
    campaign_rows = [{"platform": p.notice.platform, "external_id": p.notice.external_id,
                      "content_hash": p.content_hash, "version": 1, "created_at": now,
                      "updated_at": now, **{name: getattr(p.notice, name) for name in TRACKED}}
                     for p in items]
    for row in campaign_rows:
        row["requirements"] = row["requirements"] or {}
        row["type"], row["source_url"] = row["type"] or "", row["source_url"] or ""
    campaign_ids = _insert_returning(session, Campaign, campaign_rows)
    _insert(session, NoticeBody, [
        {"campaign_id": cid, "text": p.notice.text, "dates_from": p.dates_from,
         "unclear": p.unclear, "deadline_rev": 0, "updated_at": now,
         "deadline_since": now if p.notice.registration_end else None}
        for cid, p in zip(campaign_ids, items, strict=True)])
    task_rows = [{"campaign_id": cid, "team_id": team_id, "state": "new", "version": 1,
                  "deadline": p.notice.registration_end, "created_at": now, "updated_at": now}
                 for cid, p in zip(campaign_ids, items, strict=True) for team_id in teams]
    task_ids = _insert_returning(session, Task, task_rows)
    by_id = {cid: SimpleNamespace(id=cid, **row)  # what routing reads, without ORM cost
             for cid, row in zip(campaign_ids, campaign_rows, strict=True)}
    cache: dict = {}
    audits, cards = [], []
    real_now = utcnow()  # the outbox runs on the dispatcher's clock
    for task_id, row in zip(task_ids, task_rows, strict=True):
        campaign = by_id[row["campaign_id"]]
        audits.append({"task_id": task_id, "actor": "watcher", "action": "notice_new",
                       "to_state": "new", "created_at": now,
                       "detail": {"external_id": campaign.external_id}})
        found = {(b.chat, b.channel_id) for b in routing.bindings(
            session, campaign, row["team_id"], cache=cache)} | set(  # type: ignore[arg-type]
            extra_targets or [])
        card_key = f"task:{task_id}"
        # A brand-new task's card keys cannot exist yet, so no per-row lookup is needed.
        cards += [{"key": f"{card_key}:v1:{chat}:{channel}", "chat": chat,
                   "channel_id": channel, "kind": "card", "card_key": card_key,
                   "task_id": task_id, "status": "pending", "attempts": 0,
                   "payload": {"builder": "task", "params": {"task_id": task_id}},
                   "next_attempt_at": real_now, "created_at": real_now}
                  for chat, channel in sorted(found)]
    _insert(session, AuditEvent, audits)
    _insert(session, OutboxMessage, cards)
    return campaign_ids


def _insert_returning(session: Session, model: type, rows: list[dict]) -> list[int]:
    """Insert rows, return their new ids in order.

    PostgreSQL: the ids are drawn from the sequence first and the rows sent as a pipelined
    executemany (a multi-VALUES statement with RETURNING is slow for psycopg to prepare).
    """
    table = model.__table__  # type: ignore[attr-defined]
    if not rows:  # an empty executemany would insert one row of defaults
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": len(rows)}).scalars())
        session.execute(insert(table), [{**row, "id": i} for i, row in zip(ids, rows, strict=True)])
        return ids
    result = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                             rows)
    return [row[0] for row in result]


def _insert(session: Session, model: type, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]


def _changes(campaign: Campaign, notice: Notice) -> dict[str, list]:
    changes = {}
    for name in TRACKED:
        old, new = getattr(campaign, name), getattr(notice, name)
        if old != new:
            changes[name] = [_show(old), _show(new)]
    return changes


def _text_change(old: str, new: str, limit: int = 400) -> list[str] | None:
    """The lines that differ, old → new (rule text is long; the card shows what moved)."""
    if (old or "").strip() == (new or "").strip():
        return None
    removed, added = [], []
    for line in difflib.ndiff((old or "").splitlines(), (new or "").splitlines()):
        if line.startswith("- ") and line[2:].strip():
            removed.append(line[2:].strip())
        elif line.startswith("+ ") and line[2:].strip():
            added.append(line[2:].strip())
    return ["\n".join(removed)[:limit], "\n".join(added)[:limit]]


def _show(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _ingest_one(session: Session, prepared: Prepared, report: IngestReport,
                extra_targets: list[tuple[str, str]] | None, now: datetime) -> None:
    notice, content_hash = prepared.notice, prepared.content_hash
    campaign = session.exec(select(Campaign).where(
        Campaign.platform == notice.platform, Campaign.external_id == notice.external_id,
    )).first()
    if campaign is not None and campaign.content_hash == content_hash:
        report.unchanged += 1
        return
    if campaign is None:
        report.new += _create_many(session, [prepared], extra_targets, now)
        return
    body = session.get(NoticeBody, campaign.id)
    changes = _changes(campaign, notice)
    text_change = _text_change(body.text if body else "", notice.text)
    if text_change:
        changes["text"] = text_change
    if prepared.dates_from != "feed" and "registration_end" in changes and \
            notice.registration_end is None:
        changes.pop("registration_end")  # unreadable now: keep what we knew (or was set)
    fields = {name: getattr(notice, name) for name in TRACKED if name in changes}
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.content_hash = content_hash
    deadline_moved = "registration_end" in changes and notice.registration_end is not None
    if body is None:
        body = NoticeBody(campaign_id=campaign.id or 0)
    body.text, body.dates_from, body.unclear, body.updated_at = (
        notice.text, prepared.dates_from, prepared.unclear, now)
    if deadline_moved:
        body.deadline_rev += 1
        body.deadline_since = now
    session.add(body)
    if not changes:
        session.add(campaign)  # same content in other words: nothing anyone needs to see
        report.unchanged += 1
        return
    campaign.version += 1
    campaign.updated_at = now
    session.add(campaign)
    for task in session.exec(select(Task).where(Task.campaign_id == campaign.id)):
        if deadline_moved:
            task.deadline = notice.registration_end
        session.add(task)
        session.flush()
        lifecycle.touch(session, task.id or 0)
        session.refresh(task)
        session.add(AuditEvent(task_id=task.id, actor="watcher", action="notice_updated",
                               from_state=task.state, to_state=task.state,
                               detail={"version": campaign.version, "changes": changes}))
        outbox.enqueue_task_card(session, task)
        _enqueue_update_card(session, task, campaign, changes, extra_targets)
        for listener in notice_listeners:
            listener(session, task, campaign, changes)
    report.updated.append(campaign.id or 0)


def _enqueue_update_card(session: Session, task: Task, campaign: Campaign, changes: dict,
                         extra_targets: list[tuple[str, str]] | None) -> None:
    """A "notice updated" card (old → new) beside the task's card, once per version."""
    card_key = f"notice_updated:{task.id}:{campaign.version}"
    found = set(routing.targets(session, task, campaign)) | set(extra_targets or [])
    for chat, channel in sorted(found):
        outbox.enqueue_card(session, chat, channel, card_key, "notice_updated",
                            {"task_id": task.id, "version": campaign.version,
                             "changes": changes},
                            key=f"{card_key}:{chat}:{channel}", task_id=task.id)


notice_listeners: list = []  # (session, task, campaign, changes) → more "notice updated" hooks
