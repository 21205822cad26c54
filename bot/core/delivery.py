"""The outbox dispatcher's database work, a batch at a time (``bot.core.dispatcher.Dispatcher``).

Per delivered row the dispatcher used to open three transactions (build the card and reserve
its message, store the reference, mark the row sent), each a commit PostgreSQL waits for the
disk on: with two cards per click that was six commits against the click's one. Now a batch
of claimed rows is prepared in one transaction (a savepoint per row, so one row's failure
costs only that row), sent, and settled in one. Rows of one card in one channel that a
batch holds several versions of collapse into the newest: the card is built from the
database at delivery, so the older ones would show the same card again.

What stays per row is what makes a retry safe: the record of a post before it is made
(``bot.core.attempts``) and a failure's own retry schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import Update, bindparam, event, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from bot.core.views import BUILDERS
from storage.db import Database
from storage.models import ChatMessage, OutboxMessage
from storage.queries import preload_card_reads, remember_card_reads
from storage.types import utcnow

if TYPE_CHECKING:
    from cards.model import Card

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A card row ready to send: the card, the message that shows it, its reference."""

    card: Card | None
    message_id: int = 0
    message_ref: str = ""
    error: Exception | None = None  # building failed: raised when the row is delivered


@dataclass
class Settled:
    """What one batch delivered, stored in one transaction at its end."""

    sent: list[int] = field(default_factory=list)  # outbox ids
    cards: list[tuple[int, str, Card]] = field(default_factory=list)  # message id, ref, card
    notes: dict[int, str] = field(default_factory=dict)  # outbox id → last_error note


def collapse(rows: list[OutboxMessage]) -> tuple[list[OutboxMessage], dict[int, list[int]]]:
    """The rows worth sending (the newest of each card per channel) and, per row sent, the
    older rows it stands for (they end as it ends: sent, retried or dead)."""
    def ident(row: OutboxMessage) -> tuple | None:
        if row.kind != "card" or not row.card_key:
            return None
        return (row.chat, row.channel_id, row.card_key, repr(row.payload))

    newest: dict[tuple, OutboxMessage] = {}
    for row in rows:
        key = ident(row)
        if key is not None and (key not in newest or (row.id or 0) > (newest[key].id or 0)):
            newest[key] = row
    sending, stands_for = [], {}
    for row in rows:
        key = ident(row)
        if key is None or newest[key] is row:
            sending.append(row)
        else:
            stands_for.setdefault(newest[key].id or 0, []).append(row.id or 0)
    return sending, stands_for


def prepare(db: Database, rows: list[OutboxMessage], language: str,
            unbuildable: Callable[[OutboxMessage, Exception], Exception]) -> dict[int, Prepared]:
    """Build every card row's card and reserve its message, in one transaction.

    A card shown in several channels (the console, a Slack channel, a Feishu chat) is built
    once per batch: its builder reads the database, the chats only render it differently.
    The batch is built under one savepoint; when a card fails, that is undone and the batch
    built again with a savepoint per card, so one card's failure costs only its rows (two
    statements a card saved on the usual path, where none fails). The batch's messages are
    found in one query.

    First the batch is built from a read (``_prepare_reading``): on SQLite that holds no
    write lock while the cards are built, so the claims of the moment do not wait for it,
    and a batch whose cards all show already writes nothing. A card that fails there, or
    a builder that wants to write (the rules stored on first use), sends the batch down the
    write transaction above, where each failure costs only its own rows."""
    groups: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        payload = row.payload if isinstance(row.payload, dict) else {}
        groups.setdefault(repr((payload.get("builder"), payload.get("params"))), []).append(row)
    try:
        return _prepare_reading(db, groups, language)
    except Exception:  # noqa: BLE001 - a card failed or wanted to write: the full path below
        log.debug("outbox batch built again in one write transaction", exc_info=True)
    out: dict[int, Prepared] = {}
    broken: list[tuple[OutboxMessage, Exception]] = []
    with db.session() as session:
        hold_loaded(session)
        _preload(session, rows)
        found = _messages(session, rows)
        try:
            with session.begin_nested():
                shown = dict(found)
                for group in groups.values():
                    _build(session, group, language, shown, out)
            return out
        except Exception:  # noqa: BLE001 - which card failed, and why, is found below
            out.clear()
        shown = dict(found)  # the reserved messages went with the savepoint
        for group in groups.values():
            try:
                with session.begin_nested():
                    _build(session, group, language, shown, out)
            except DBAPIError as exc:  # the database, not the data: retried as usual
                for row in group:
                    out[row.id or 0] = Prepared(None, error=exc)
            except Exception as exc:  # noqa: BLE001 - the data cannot make this card
                broken += [(row, exc) for row in group]
    for row, exc in broken:  # reported once this transaction is over (SQLite: its lock)
        out[row.id or 0] = Prepared(None, error=unbuildable(row, exc))
    return out


class _Wrote(Exception):
    """A builder tried to write while the batch was built from a read."""


def _prepare_reading(db: Database, groups: dict[str, list[OutboxMessage]],
                     language: str) -> dict[int, Prepared]:
    """Build every card from a read, then reserve the messages still missing in one short
    write (read again there: another dispatcher may have reserved one meanwhile). Raises
    on the first card that fails and on any statement that is not a read."""
    rows = [row for group in groups.values() for row in group]
    cards: dict[int, Card | None] = {}
    with db.read() as session:
        event.listen(session, "before_flush", _refuse_write)
        event.listen(session.connection(), "before_cursor_execute", _refuse_write_statement)
        hold_loaded(session)
        _preload(session, rows)
        shown = {where: (m.id or 0, m.message_ref) for where, m in
                 _messages(session, rows).items()}
        for group in groups.values():
            card = _card(session, group, language)
            cards.update((row.id or 0, card) for row in group)
    missing = [row for row in rows if cards[row.id or 0] is not None
               and _where(row) not in shown]
    if missing:
        with db.session() as session:
            found = _messages(session, missing)
            for row in missing:
                if _where(row) not in shown:
                    message = found.get(_where(row)) or reserve(session, row)
                    found[_where(row)] = message
                    shown[_where(row)] = (message.id or 0, message.message_ref)
    return {row.id or 0: Prepared(None) if cards[row.id or 0] is None
            else Prepared(cards[row.id or 0], *shown[_where(row)]) for row in rows}


def _refuse_write(*_args: object) -> None:
    raise _Wrote("a card builder wrote to the database")


def _refuse_write_statement(_conn: object, _cursor: object, statement: str,
                            *_rest: object) -> None:
    if not statement.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
        raise _Wrote(f"a card builder ran {statement[:40]!r}")


def _card(session: Session, group: list[OutboxMessage], language: str) -> Card | None:
    """The card the rows of one group show (they share builder and parameters)."""
    payload = group[0].payload if isinstance(group[0].payload, dict) else {}
    return BUILDERS[str(payload.get("builder"))](session, payload.get("params") or {},
                                                  language)


def _build(session: Session, group: list[OutboxMessage], language: str,
           shown: dict[tuple, ChatMessage], out: dict[int, Prepared]) -> None:
    """One card, built once for the rows of every channel showing it, and their messages."""
    card = _card(session, group, language)
    for row in group:
        if card is None:
            out[row.id or 0] = Prepared(None)
            continue
        message = shown.get(_where(row)) or reserve(session, row)
        shown[_where(row)] = message
        out[row.id or 0] = Prepared(card, message.id or 0, message.message_ref)


def hold_loaded(session: Session) -> None:
    """Keep every object this session loads alive until it ends. The identity map holds
    objects weakly: a builder's task, campaign or platform went away with its local
    variable, and the next ``session.get`` of it (the next part of the same card) read it
    from the database again — thirteen statements a task card, now about half."""
    held: list = session.info.setdefault("promopilot.held", [])

    @event.listens_for(session, "loaded_as_persistent")
    def _hold(_session: Session, instance: object) -> None:
        held.append(instance)


def _preload(session: Session, rows: list[OutboxMessage]) -> None:
    """The batch's tasks, their campaigns, notice texts and claimants, the platforms, and
    the tasks' declarations and last audit events, a query each (the builders then find
    them in the session), instead of a few queries per card."""
    from storage.models import Campaign, Platform, Task, User
    from storage.models_watch import NoticeBody

    ids = sorted({row.task_id for row in rows if row.task_id})[:1000]
    if not ids:
        return
    tasks = session.exec(select(Task).where(Task.id.in_(ids))).all()
    campaigns = sorted({task.campaign_id for task in tasks})
    if campaigns:
        session.exec(select(Campaign).where(Campaign.id.in_(campaigns))).all()
        session.exec(select(NoticeBody).where(NoticeBody.campaign_id.in_(campaigns))).all()
    claimants = sorted({task.claimed_by for task in tasks if task.claimed_by})
    if claimants:
        session.exec(select(User).where(User.id.in_(claimants))).all()
    session.exec(select(Platform)).all()
    preload_card_reads(session, ids)  # declarations, their lines, the last audit events


def preload_task(session: Session, task_id: int) -> None:
    """One task's card parts — the task, its campaign, notice text, platform, claimant,
    latest declaration and last audit event — in one joined statement (a click's answer
    card: seven reads became one)."""
    from sqlalchemy import func

    from storage.models import AuditEvent, Campaign, Declaration, Platform, Task, User
    from storage.models_watch import NoticeBody

    newest = (select(func.max(Declaration.version)).where(Declaration.task_id == task_id)
              .scalar_subquery())
    last = select(func.max(AuditEvent.id)).where(AuditEvent.task_id == task_id).scalar_subquery()
    row = session.exec(
        select(Task, Campaign, NoticeBody, Platform, User, Declaration, AuditEvent)
        .join(Campaign, Campaign.id == Task.campaign_id)
        .join(NoticeBody, NoticeBody.campaign_id == Campaign.id, isouter=True)
        .join(Platform, Platform.code == Campaign.platform, isouter=True)
        .join(User, User.id == Task.claimed_by, isouter=True)
        .join(Declaration, (Declaration.task_id == Task.id) & (Declaration.version == newest),
              isouter=True)
        .join(AuditEvent, AuditEvent.id == last, isouter=True)
        .where(Task.id == task_id)).first()
    if row is not None:
        remember_card_reads(session, task_id, row[5], row[6])


def _where(row: OutboxMessage | ChatMessage) -> tuple[str, str, str]:
    """Where a card shows: (chat, channel, card key), of an outbox row or a message."""
    return (row.chat, row.channel_id, row.card_key or "")


def _messages(session: Session, rows: list[OutboxMessage]) -> dict[tuple, ChatMessage]:
    """The messages already showing the batch's cards, by (chat, channel, card key)."""
    keys = sorted({row.card_key for row in rows if row.card_key})
    wanted = {_where(row) for row in rows}
    found: dict[tuple, ChatMessage] = {}
    for start in range(0, len(keys), 500):
        for message in session.exec(select(ChatMessage).where(
                ChatMessage.card_key.in_(keys[start:start + 500]))):
            if _where(message) in wanted:
                found[_where(message)] = message
    return found


def reserve(session: Session, row: OutboxMessage) -> ChatMessage:
    """The message that shows this card in this channel, created (reserved) if there is none.

    A reserved row without a reference means an earlier post failed or its outcome is
    unknown (``post_key`` set): the next post reuses that key.
    """
    message = ChatMessage(chat=row.chat, channel_id=row.channel_id, card_key=row.card_key,
                          task_id=row.task_id)
    session.add(message)
    session.flush()
    return message


def settle(db: Database, done: Settled, stands_for: dict[int, list[int]]) -> None:
    """Store the batch's message references and mark its rows sent, in one transaction."""
    superseded = [old for sent in done.sent for old in stands_for.get(sent, [])]
    if not (done.sent or done.cards):
        return
    now = utcnow()
    with db.session() as session:
        if done.cards:  # one statement, compiled once, the batch's rows as its parameters
            shown: dict[int, dict] = {}
            for message_id, ref, card in done.cards:  # a message's last version wins
                shown[message_id] = {"b_id": message_id, "b_ref": ref,
                                     "b_card": card.model_dump(mode="json"), "b_now": now}
            session.execute(_store_shown(), list(shown.values()))
        plain = [i for i in done.sent if i not in done.notes]
        if plain:
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(plain))
                            .values(status="sent", sent_at=now, last_error=None, lease_owner="")
                            .execution_options(synchronize_session=False))
        for outbox_id, note in done.notes.items():
            session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                            .values(status="skipped" if note.startswith("no adapter") else "sent",
                                    sent_at=now, last_error=note, lease_owner="")
                            .execution_options(synchronize_session=False))
        if superseded:
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(superseded))
                            .values(status="sent", sent_at=now, lease_owner="",
                                    last_error="superseded by a newer version in the same batch")
                            .execution_options(synchronize_session=False))


@cache
def _store_shown() -> Update:
    m = ChatMessage.__table__.c
    return (update(ChatMessage.__table__).where(m.id == bindparam("b_id"))
            .values(message_ref=bindparam("b_ref"), card=bindparam("b_card", type_=m.card.type),
                    revision=m.revision + 1, updated_at=bindparam("b_now"), post_key="",
                    post_started_at=None))


def by_channel(rows: list[OutboxMessage]) -> list[list[OutboxMessage]]:
    """Rows grouped per (chat, channel), each group in id order: channels are sent to at
    once, one channel's rows in order (its rate limiter paces them)."""
    groups: dict[tuple[str, str], list[OutboxMessage]] = {}
    for row in sorted(rows, key=lambda r: r.id or 0):
        groups.setdefault((row.chat, row.channel_id), []).append(row)
    return list(groups.values())

