"""Read queries that several layers share (domain services, card builders, the web app)."""

from __future__ import annotations

from sqlmodel import Session, select

from storage.models import Declaration, DeclarationLine, User


def latest_declaration(session: Session, task_id: int) -> Declaration | None:
    return session.exec(
        select(Declaration).where(Declaration.task_id == task_id)
        .order_by(Declaration.version.desc()).limit(1)
    ).first()


def declaration_lines(session: Session, declaration_id: int) -> list[DeclarationLine]:
    return list(session.exec(
        select(DeclarationLine).where(DeclarationLine.declaration_id == declaration_id)
        .order_by(DeclarationLine.id)
    ))


def user_name(session: Session, user_id: int | None) -> str:
    """A person's display name for a message or card; "—" when nobody (or unknown)."""
    user = session.get(User, user_id) if user_id else None
    return user.display_name if user else "—"
