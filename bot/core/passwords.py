"""Console passwords: argon2id hashes in ``user_credentials``; the plain text is never kept.

``promopilot user passwd <name>`` sets one; the console's login form checks it. A session
remembers a short fingerprint of the hash it logged in with (``fingerprint``), so changing
the password or deactivating the person ends every open session on the next request.
"""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from bot.core.errors import Invalid, NotFound
from bot.core.users import by_name
from storage.models import User
from storage.models_auth import UserCredential
from storage.types import utcnow

MIN_LENGTH = 10
_hasher = PasswordHasher()  # argon2id, the library's current recommended parameters
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("promopilot-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def set_password(session: Session, name: str, password: str) -> User:
    """Store a new hash for ``name`` (refuses unknown people and short passwords)."""
    user = by_name(session, name)
    if user is None:
        raise NotFound("auth.unknown_user", name=name[:64])
    if len(password) < MIN_LENGTH:
        raise Invalid("auth.password_too_short", n=MIN_LENGTH)
    row = session.get(UserCredential, user.id)
    if row is None:
        row = UserCredential(user_id=user.id or 0, password_hash="")
    row.password_hash, row.updated_at = hash_password(password), utcnow()
    session.add(row)
    session.flush()
    return user


def check(session: Session, name: str, password: str) -> tuple[User, str] | None:
    """The active person with this name and password and their hash fingerprint, or None."""
    user = by_name(session, name[:64])
    row = session.get(UserCredential, user.id) if user is not None else None
    if row is None or user is None:
        _verify(_DUMMY, password)
        return None
    if not _verify(row.password_hash, password) or not user.active:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash, row.updated_at = hash_password(password), utcnow()
        session.add(row)
    return user, fingerprint(row.password_hash)


def current_fingerprint(session: Session, user_id: int) -> str | None:
    row = session.get(UserCredential, user_id)
    return fingerprint(row.password_hash) if row is not None else None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
