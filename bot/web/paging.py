"""Pages for every list under ``/api``: a bounded ``limit``, an opaque ``cursor``, checked
parameters.

A list answers ``{"items": [...], "next_cursor": "…" | null, "limit": n}``. Items come in id
order (``order=asc``, the default, oldest first; ``desc`` newest first) and the cursor is a
keyset on that id — "after id N" — so a page never shifts when rows are inserted or deleted
meanwhile: following ``next_cursor`` from the first page to the last returns every row that
existed throughout exactly once, and in ascending order the rows inserted meanwhile too
(they get higher ids). ``next_cursor`` is null on the last page.

The cursor is base64url JSON naming the list, the position and a digest of the filters and
order it was made for; it is opaque to clients (its format may change). One used with another
list or other filters is refused (422), as is one that does not decode, and so is a ``limit``
outside 1…``MAX_LIMIT`` or a query parameter the list does not take (a typo such as
``?stat=new`` would otherwise answer every row). Refusals use the one error body
(``{"detail": {"code", "message"}}``, bot/web/errors.py) in the caller's language.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement

from bot.core.i18n import t

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
PAGING = ("limit", "cursor", "order")
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page")
    limit: int


def refuse(code: str, lang: str, **params: Any) -> HTTPException:
    return HTTPException(422, {"code": code, "message": t(code, lang, **params)})


@dataclass(frozen=True)
class Listing:
    """One checked list request: how many, which way, and after which id."""

    name: str
    limit: int
    descending: bool
    after: int | None
    digest: str

    def cursor(self, last_id: int) -> str:
        raw = json.dumps({"l": self.name, "a": last_id, "f": self.digest},
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def keyset(self, id_column: Any) -> tuple[list[ColumnElement], list[Any]]:
        """(where, order_by) for this page on ``id_column``."""
        where = [] if self.after is None else [
            id_column < self.after if self.descending else id_column > self.after]
        return where, [id_column.desc() if self.descending else id_column.asc()]

    def page(self, rows: list, id_of: Callable[[Any], int],
             out: Callable[[Any], Any] = lambda r: r) -> dict:
        """The answer from up to ``limit + 1`` rows fetched in keyset order."""
        more = len(rows) > self.limit
        rows = rows[:self.limit]
        return {"items": [out(r) for r in rows], "limit": self.limit,
                "next_cursor": self.cursor(id_of(rows[-1])) if more and rows else None}


def listing(request: Request, name: str, takes: Iterable[str], lang: str,
            filters: dict[str, Any], limit: int, cursor: str | None,
            order: str) -> Listing:
    """Check the paging parameters and that no unknown parameter was given."""
    allowed = [*takes, *PAGING]
    for given in request.query_params:
        if given not in allowed:
            raise refuse("api.unknown_param", lang, name=given[:60],
                         allowed=", ".join(allowed))
    if not 1 <= limit <= MAX_LIMIT:
        raise refuse("api.bad_limit", lang, name="limit", max=MAX_LIMIT, value=limit)
    if order not in ("asc", "desc"):
        raise refuse("dash.bad_filter", lang, field="order", value=order[:60],
                     allowed="asc, desc")
    digest = hashlib.sha256(json.dumps([name, order, filters], sort_keys=True,
                                       default=str).encode()).hexdigest()[:16]
    return Listing(name, limit, order == "desc", _after(cursor, name, digest, lang), digest)


def _after(cursor: str | None, name: str, digest: str, lang: str) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found = json.loads(raw)
        after = found["a"]
        if not (isinstance(after, int) and not isinstance(after, bool)
                and 0 <= after < 2**63 and isinstance(found.get("l"), str)):
            raise ValueError(after)
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise refuse("api.bad_cursor", lang, name="cursor") from None
    if found["l"] != name or found.get("f") != digest:
        raise refuse("api.cursor_mismatch", lang, name="cursor")
    return after


def known(lang: str, field: str, given: str | None, allowed: list[str]) -> list[str]:
    """The comma-separated values of a filter, each one of ``allowed``; else the
    dashboard's 422 naming the known values (never a 200 with an empty list)."""
    values = list(dict.fromkeys(v.strip() for v in (given or "").split(",") if v.strip()))
    for value in values:
        if value not in allowed:
            shown = "、".join(allowed[:30]) if lang != "en" else ", ".join(allowed[:30])
            raise refuse("dash.bad_filter", lang, field=field, value=value[:60],
                         allowed=shown or "—")
    return values


def when(lang: str, field: str, value: str | None, zone: str) -> datetime | None:
    """An ISO 8601 date or time; without an offset it is the team's wall clock."""
    if value is None or value == "":
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise refuse("api.bad_time", lang, name=field, value=value[:60]) from None
    return found if found.tzinfo else found.replace(tzinfo=ZoneInfo(zone))
