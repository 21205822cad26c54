"""Read queries that several layers share (domain services, card builders, the web app).

A batch of cards built in one session (the outbox's ``bot.core.delivery.prepare``) reads each
task's latest declaration, its lines and its last audit event once for the whole batch
(``preload_card_reads``): the per-card queries then answer from the session's memory. Each
was a statement a card, and together about 60 % of building a task card (py-spy,
docs/benchmarks.md). Only a session that asked for the preload is affected.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from storage.models import AuditEvent, Declaration, DeclarationLine, User

_PRELOADED = "promopilot.card_reads"  # session.info key: {"latest": …, "lines": …, "last": …}


def _preloaded(session: Session) -> dict[str, dict]:
    """The reads made ahead in this session, by kind (empty until a preload)."""
    return session.info.setdefault(_PRELOADED, {"latest": {}, "lines": {}, "last": {}})


def latest_declaration(session: Session, task_id: int) -> Declaration | None:
    known = _preloaded(session)["latest"]
    if task_id in known:
        return known[task_id]
    return session.exec(
        select(Declaration).where(Declaration.task_id == task_id)
        .order_by(Declaration.version.desc()).limit(1)
    ).first()


def declaration_lines(session: Session, declaration_id: int) -> list[DeclarationLine]:
    known = _preloaded(session)["lines"]
    if declaration_id in known:
        return list(known[declaration_id])
    return list(session.exec(
        select(DeclarationLine).where(DeclarationLine.declaration_id == declaration_id)
        .order_by(DeclarationLine.id)
    ))


def last_event(session: Session, task_id: int) -> AuditEvent | None:
    """The task's newest audit event (the card's "last: who did what, when")."""
    known = _preloaded(session)["last"]
    if task_id in known:
        return known[task_id]
    return session.exec(select(AuditEvent).where(AuditEvent.task_id == task_id)
                        .order_by(AuditEvent.id.desc()).limit(1)).first()


def preload_card_reads(session: Session, task_ids: list[int]) -> None:
    """The latest declaration (with its lines) and the last audit event of every task in
    ``task_ids``, three statements in all; later reads of them in this session are free.

    For a session that only reads them from here on (building cards): what it writes itself
    afterwards is not seen by these reads."""
    if not task_ids:
        return
    found = _preloaded(session)
    newest = (select(Declaration.task_id, func.max(Declaration.version).label("version"))
              .where(Declaration.task_id.in_(task_ids)).group_by(Declaration.task_id)
              .subquery())
    latest = {d.task_id: d for d in session.exec(select(Declaration).join(
        newest, (Declaration.task_id == newest.c.task_id)
        & (Declaration.version == newest.c.version)))}
    found["latest"].update({task_id: latest.get(task_id) for task_id in task_ids})
    declared = sorted(d.id for d in latest.values() if d.id is not None)
    lines: dict[int, list[DeclarationLine]] = {i: [] for i in declared}
    if declared:
        for line in session.exec(select(DeclarationLine).where(
                DeclarationLine.declaration_id.in_(declared)).order_by(DeclarationLine.id)):
            lines[line.declaration_id].append(line)
    found["lines"].update(lines)
    last_ids = (select(func.max(AuditEvent.id)).where(AuditEvent.task_id.in_(task_ids))
                .group_by(AuditEvent.task_id).scalar_subquery())
    last = {e.task_id: e for e in session.exec(select(AuditEvent).where(
        AuditEvent.id.in_(last_ids)))}
    found["last"].update({task_id: last.get(task_id) for task_id in task_ids})


def remember_card_reads(session: Session, task_id: int, declaration: Declaration | None,
                        last: AuditEvent | None) -> None:
    """What a joined read found for one task's card (``bot.core.delivery.preload_task``):
    its latest declaration (lines still read when there is one) and last audit event."""
    found = _preloaded(session)
    found["latest"][task_id] = declaration
    found["last"][task_id] = last


def user_name(session: Session, user_id: int | None) -> str:
    """A person's display name for a message or card; "—" when nobody (or unknown)."""
    user = session.get(User, user_id) if user_id else None
    return user.display_name if user else "—"
