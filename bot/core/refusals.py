"""Refused attempts are audited like granted ones.

A refusal (wrong role, approving one's own request, out of turn, an override by a role that
may not) is raised inside the action's transaction, which then rolls back: an audit row
added there would vanish with it. ``refused`` keeps the row on the session and writes it in
a transaction of its own as soon as the session's transaction has ended — rolled back, or
committed when a caller caught the refusal — so on SQLite it never waits for the write lock
its own transaction holds.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from sqlalchemy import event
from sqlmodel import Session

from bot.core.actors import Actor
from bot.core.errors import DomainError
from storage.models import AuditEvent

log = logging.getLogger(__name__)
E = TypeVar("E", bound=DomainError)
_PENDING = "promopilot.refusals"


def refused(session: Session, error: E, *, task_id: int | None, actor: Actor, action: str,
            state: str | None = None, detail: dict | None = None) -> E:
    """Audit ``actor``'s refused ``action`` (``<action>_refused``, with the reason in zh-CN and
    en); returns ``error`` so the caller can ``raise refused(…)``."""
    row = {"task_id": task_id, "actor": actor.name[:128], "action": f"{action}_refused"[:64],
           "from_state": state, "detail": {
               "attempted": action, "reason": error.key, "roles": sorted(actor.roles),
               "message": {"zh-CN": error.message("zh-CN")[:500], "en": error.message("en")[:500]},
               **(detail or {})}}
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_transaction_end", _write)
    pending.append(row)
    log.info("refused", extra={"task_id": task_id, "actor": actor.name, "action": action,
                               "reason": error.key})
    return error


def _write(session: Session, transaction) -> None:
    if transaction.parent is not None:  # a savepoint or an inner transaction: not yet
        return
    rows, session.info[_PENDING] = session.info.get(_PENDING) or [], []
    if not rows:
        return
    try:
        with Session(session.get_bind()) as own:
            own.add_all(AuditEvent(**row) for row in rows)
            own.commit()
    except Exception:  # noqa: BLE001 - the refusal itself must still reach the person
        log.exception("could not audit a refused attempt", extra={
            "task_id": rows[0]["task_id"], "action": rows[0]["action"], "n": len(rows)})
