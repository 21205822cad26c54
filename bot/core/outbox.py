"""Outbound chat messages: decided inside a transaction, delivered after it, with retries.

``enqueue_*`` write rows in the caller's transaction. ``bot.core.dispatcher.Dispatcher`` claims due rows
(a lease, so two workers never send the same row), builds the card fresh from the database,
and posts it — or updates the message already showing that ``card_key`` in that channel, so
a task keeps one message per channel. Each row's ``key`` is stable for its intent: enqueuing
the same intent twice is a no-op, and a retry never posts twice.

Crash safety: a row is leased to one dispatcher (``lease_owner``) for a short lease that a
heartbeat renews while it works (``bot.core.leases``), so rows of a process that died are
taken over within seconds. Before each post the attempt is recorded durably — the card's
``ChatMessage.post_key`` (its idempotency key) and ``post_started_at``, a text's
``attempt_started_at`` — and the post carries that key; a retry whose earlier attempt has
an unknown outcome passes ``unsure_since`` so the adapter can check first. What each
platform then guarantees is in docs/decisions.md.
"""

from __future__ import annotations

import logging
from functools import cache

from sqlalchemy import CompoundSelect, bindparam, null, or_, union_all
from sqlmodel import Session, select

from storage.db import Database, connection, insert_if_new
from storage.models import ChatBinding, ChatIdentity, ChatMessage, OutboxMessage, Task
from storage.types import utcnow

log = logging.getLogger(__name__)


def _add(session: Session, row: OutboxMessage) -> bool:
    return _add_many(session, [row]) == 1


def _add_many(session: Session, rows: list[OutboxMessage] | list[dict]) -> int:
    """Insert the rows whose key is new, in one statement (``ON CONFLICT DO NOTHING`` on the
    unique key: an intent enqueued twice, even by two transactions at once, stays one row);
    how many were new. Rows are models or plain column dicts (``row_values``)."""
    if not rows:
        return 0
    values = [row if isinstance(row, dict) else row.model_dump(exclude={"id"}) for row in rows]
    # One statement whatever the row count, its rows as parameters (not rendered VALUES), so
    # it is compiled once per process: a rendered multi-row VALUES was compiled on every call,
    # a quarter of a claim's time under load (py-spy, docs/benchmarks.md).
    statement = insert_if_new(OutboxMessage.__table__, "key", "id",
                              session.get_bind().dialect.name)
    result = connection(session).execute(statement, values[0] if len(values) == 1 else values)
    return len(result.all())  # rowcount is -1 for this statement on psycopg: count the ids


def row_values(**columns: object) -> dict:
    """An outbox row as the insert's parameters, with the model's defaults, without building
    (and validating) a model object: the card of every transition goes through here."""
    now = utcnow()
    return {"card_key": None, "task_id": None, "payload": {}, "status": "pending",
            "attempts": 0, "next_attempt_at": now, "lease_owner": "",
            "attempt_started_at": None, "last_error": None, "created_at": now,
            "sent_at": None, **columns}


def enqueue_card(
    session: Session, chat: str, channel_id: str, card_key: str, builder: str,
    params: dict, *, key: str, task_id: int | None = None,
) -> bool:
    return _add(session, OutboxMessage(
        key=key, chat=chat, channel_id=channel_id, kind="card", card_key=card_key,
        task_id=task_id, payload={"builder": builder, "params": params},
    ))


def enqueue_text(session: Session, chat: str, channel_id: str, text: str, *, key: str) -> bool:
    return _add(session, OutboxMessage(
        key=key, chat=chat, channel_id=channel_id, kind="text", payload={"text": text}))


def enqueue_private(session: Session, user_id: int, text: str, *, key: str) -> int:
    """Tell a user privately on every chat where we know them."""
    sent = 0
    for ident in session.exec(select(ChatIdentity).where(ChatIdentity.user_id == user_id)):
        sent += _add(session, OutboxMessage(
            key=f"{key}:{ident.chat}", chat=ident.chat, channel_id="",
            kind="private", payload={"text": text, "user": ident.external_id,
                                     "user_id": user_id}))
    return sent


def bindings_for(
    session: Session, platform: str, purpose: str = "notices", team_id: int | None = None,
) -> list[ChatBinding]:
    return list(session.exec(select(ChatBinding).where(*bound_to(purpose, platform, team_id))
                             .order_by(ChatBinding.id)))


def bound_to(purpose: object, platform: object, team_id: object = None) -> list:
    """Which bindings hear a platform's ``purpose`` (their platform or ``*``) for a team
    (theirs or every team's; ``None``: any): values or SQL expressions, one rule for the
    bindings list and the task card's one-statement targets."""
    where = [ChatBinding.purpose == purpose,
             or_(ChatBinding.platform == platform, ChatBinding.platform == "*")]
    if team_id is not None:
        where.append(or_(ChatBinding.team_id == team_id, ChatBinding.team_id.is_(None)))
    return where


# (session, task, binding) -> bool: narrows bound channels, e.g. by category/shop (#7).
binding_filters: list = []


def enqueue_task_card(session: Session, task: Task) -> None:
    """Show the task's current card everywhere it belongs (bound channels + where it is)."""
    card_key = f"task:{task.id}"
    found = connection(session).execute(_task_targets(), {"campaign_id": task.campaign_id,
                                              "team_id": task.team_id, "task_id": task.id,
                                              "card_key": card_key}).all()
    # a bound channel (id set) may be narrowed by category/shop; where it shows, it stays
    targets = {(row.chat, row.channel_id) for row in found
               if row.id is None or all(keep(session, task, row) for keep in binding_filters)}
    payload = {"builder": "task", "params": {"task_id": task.id}}
    _add_many(session, [row_values(
        key=f"{card_key}:v{task.version}:{chat}:{channel}", chat=chat, channel_id=channel,
        kind="card", card_key=card_key, task_id=task.id, payload=payload)
        for chat, channel in sorted(targets)])


@cache
def _task_targets() -> CompoundSelect:
    """Where a task's card goes, in one statement compiled once: the notice bindings of its
    campaign's platform and team (as ``bindings_for``), then the messages showing it now
    (indexed: ``task_id``)."""
    from storage.models import Campaign

    b, m = ChatBinding.__table__.c, ChatMessage.__table__.c
    c = Campaign.__table__.c
    platform = select(c.platform).where(c.id == bindparam("campaign_id")).scalar_subquery()
    bound = select(b.id, b.chat, b.channel_id, b.category, b.shop).where(
        *bound_to("notices", platform, bindparam("team_id")))
    shown = select(null().label("id"), m.chat, m.channel_id, null(), null()).where(
        m.task_id == bindparam("task_id"), m.card_key == bindparam("card_key"))
    return union_all(bound, shown)


class CardUnbuildable(Exception):
    """The row's card cannot be built from what is stored: retrying cannot help."""

    permanent = True


def report_unbuildable(db: Database, row: OutboxMessage, exc: Exception) -> None:
    """Tell the ops channel once per card (``card_unbuildable``), logged with the trace.

    The row itself is marked dead by the caller; a report that cannot itself be built is
    only logged, never reported again."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    builder = str(payload.get("builder"))
    log.error("card cannot be built", exc_info=exc,
              extra={"outbox_id": row.id, "builder": builder, "card_key": row.card_key,
                     "chat": row.chat, "channel": row.channel_id})
    if builder == "card_unbuildable":
        return
    subject = (row.card_key or row.key or "")[:100]
    try:
        with db.session() as session:
            platform = "*"
            if row.task_id:
                from storage.models import Campaign

                task = session.get(Task, row.task_id)
                campaign = session.get(Campaign, task.campaign_id) if task else None
                platform = campaign.platform if campaign else "*"
            params = {"builder": builder[:64], "card_key": subject, "chat": row.chat,
                      "channel": row.channel_id, "error": repr(exc)[:300]}
            bindings = bindings_for(session, platform, "ops")
            for b in bindings:
                enqueue_card(session, b.chat, b.channel_id, f"card_unbuildable:{subject}",
                             "card_unbuildable", params,
                             key=f"card_unbuildable:{subject}:{b.chat}:{b.channel_id}"[:256])
            if not bindings:
                log.error("no ops channel bound for unbuildable cards",
                          extra={"card_key": subject})
    except Exception:  # noqa: BLE001 - the report must not hide the original failure
        log.exception("could not report an unbuildable card", extra={"card_key": subject})


def task_card_listener(session: Session, task: Task, outcome: object, actor: object) -> None:
    """Lifecycle listener: every transition refreshes the task's card where it is shown."""
    enqueue_task_card(session, task)
