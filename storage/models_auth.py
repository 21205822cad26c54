"""Console login (part of the "dashboard and login" issue): a person's password hash.

One row per person who may log in to the web console; people without a row can still work
from a chat platform. The hash is argon2id (``bot.core.passwords``); the plain password is
never stored or logged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class UserCredential(SQLModel, table=True):
    __tablename__ = "user_credentials"
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"),
                                          primary_key=True, autoincrement=False))
    password_hash: str = Field(max_length=255)
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
