"""People: who someone is on each chat, their roles, and adding them."""

from __future__ import annotations

from functools import cache
from time import monotonic

from sqlalchemy import Select, bindparam, event
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from bot.core.actors import ROLES, Actor
from bot.core.errors import Invalid
from bot.core.i18n import LANGS, t
from bot.core.i18n import roles as role_names
from storage.db import Database
from storage.models import ChatIdentity, Team, User


def by_chat(session: Session, chat: str, external_id: str) -> User | None:
    if chat == "web":
        return session.exec(select(User).where(User.name == external_id)).first()
    return session.exec(select(User).join(ChatIdentity, ChatIdentity.user_id == User.id).where(
        ChatIdentity.chat == chat, ChatIdentity.external_id == external_id)).first()


def by_name(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name)).first()


ACTOR_SECONDS = 2.0  # how long another process may act on a person's old roles
_actors: dict[tuple[str, str], tuple[float, Actor | None]] = {}


def acting_actor(db: Database, name: str) -> Actor | None:
    """The active person named ``name`` as an ``Actor``, in one read (a row, no model
    object: every API action starts here).

    Kept for two seconds: a burst of one person's actions reads them once (a read was an
    eighth of a claim's CPU). A change to a person made in this process is seen at once (a
    commit that wrote any ``User`` forgets every kept one); one made by another process,
    within two seconds (docs/decisions.md)."""
    key, now = (str(db.url), name), monotonic()
    kept = _actors.get(key)
    if kept is not None and now - kept[0] < ACTOR_SECONDS:
        return kept[1]
    row = db.first(_actor_row(), {"name": name})
    actor = None if row is None or not row.active else Actor(
        name=row.name, display_name=row.display_name, roles=frozenset(row.roles or ()),
        user_id=row.id, lang=row.lang)
    if len(_actors) > 10_000:  # names nobody has, sent on purpose: stay small
        _actors.clear()
    _actors[key] = (now, actor)
    return actor


@event.listens_for(Session, "after_flush")
def _people_changed(session: Session, _context: object) -> None:
    if any(isinstance(o, User) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info["promopilot.people_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_actors(session: Session) -> None:
    if session.info.pop("promopilot.people_changed", False):
        _actors.clear()


@cache
def _actor_row() -> Select:
    u = User.__table__.c
    return sa_select(u.id, u.name, u.display_name, u.roles, u.lang, u.active).where(
        u.name == bindparam("name"))


def members_with_role(session: Session, role: str, team_id: int | None = None) -> list[User]:
    users = session.exec(select(User).where(User.active == True)).all()  # noqa: E712
    return [u for u in users if role in (u.roles or [])
            and (team_id is None or u.team_id in (None, team_id))]


def _role_words() -> dict[str, str]:
    """Each role by its code and by its name in every language (finance, 财务, Finance)."""
    words = {code: code for code in ROLES}
    for code in ROLES:
        for lang in LANGS:
            words.setdefault(t(f"role.{code}", lang).lower(), code)
    return words


def parse_roles(text: str) -> list[str]:
    """``ops,market`` or ``运营、市场`` → role codes; an unknown word is refused by name."""
    words = _role_words()
    given = [r.strip().lower() for r in text.replace(",", ",").replace("、", ",").split(",")
             if r.strip()]
    unknown = [r for r in given if r not in words]
    if unknown or not given:
        raise Invalid("err.unknown_role", value=(unknown[0] if unknown else text)[:40],
                      roles=role_names(ROLES))
    return list(dict.fromkeys(words[r] for r in given))


def add_user(session: Session, name: str, roles: list[str], *, display_name: str | None = None,
             chat: str | None = None, external_id: str | None = None,
             lang: str = "zh-CN") -> User:
    """Create (or update the roles of) a user and link a chat identity if given."""
    user = by_name(session, name)
    if user is None:
        team = session.exec(select(Team).order_by(Team.id)).first()
        user = User(name=name, display_name=display_name or name, roles=roles,
                    team_id=team.id if team else None, lang=lang)
    else:
        user.roles = roles
    session.add(user)
    session.flush()
    if chat and external_id:
        link(session, user, chat, external_id)
    return user


def link(session: Session, user: User, chat: str, external_id: str) -> None:
    ident = session.exec(select(ChatIdentity).where(
        ChatIdentity.chat == chat, ChatIdentity.external_id == external_id)).first()
    if ident is None:
        ident = ChatIdentity(user_id=user.id or 0, chat=chat, external_id=external_id)
    else:
        ident.user_id = user.id or 0
    session.add(ident)
    session.flush()
