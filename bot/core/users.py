"""People: who someone is on each chat, their roles, and adding them."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core.actors import ROLES
from bot.core.errors import Invalid
from storage.models import ChatIdentity, Team, User


def by_chat(session: Session, chat: str, external_id: str) -> User | None:
    if chat == "web":
        return session.exec(select(User).where(User.name == external_id)).first()
    ident = session.exec(select(ChatIdentity).where(
        ChatIdentity.chat == chat, ChatIdentity.external_id == external_id)).first()
    return session.get(User, ident.user_id) if ident else None


def by_name(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name)).first()


def members_with_role(session: Session, role: str, team_id: int | None = None) -> list[User]:
    users = session.exec(select(User).where(User.active == True)).all()  # noqa: E712
    return [u for u in users if role in (u.roles or [])
            and (team_id is None or u.team_id in (None, team_id))]


def parse_roles(text: str) -> list[str]:
    roles = [r.strip().lower() for r in text.replace(",", ",").split(",") if r.strip()]
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise Invalid("err.usage", usage=f"roles: {', '.join(ROLES)}")
    return roles


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
