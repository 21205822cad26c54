"""The board's rows and its filters: one query for the board, the calendar and the export.

Filters (query parameters; several values comma-separated): ``platform``, ``state``, ``owner``
(a person's handle, ``me`` or ``none`` = unclaimed), ``shop``, ``category``, ``q`` (words of
the title, the notice id or ``#12``) and ``closed`` (``1``: finished, skipped and expired
tasks of any age; by default those of the last 30 days). A value that names nothing known is
refused with 422 and the values that are (never silently an empty board).

Overdue: the registration deadline has passed and nothing was submitted yet. At risk: not
submitted yet and the deadline is within ``AT_RISK`` (24 h).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import Text, case, cast, func, or_
from sqlmodel import Session, select

from bot.core.i18n import platform_name, t
from bot.core.lifecycle import CLOSED_STATES, State
from bot.web.dash_common import Viewer, refuse
from storage.models import Campaign, ChatBinding, Platform, Task, User
from storage.types import utcnow

AT_RISK = timedelta(hours=24)
RECENT_CLOSED = timedelta(days=30)
MAX_QUERY = 200
UNSUBMITTED = frozenset({State.NEW, State.CLAIMED, State.DRAFTING, State.IN_APPROVAL,
                         State.APPROVED, State.PLATFORM_REJECTED})
COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("todo", ("new",)),
    ("working", ("claimed", "drafting", "platform_rejected")),
    ("approval", ("in_approval", "approved")),
    ("submission", ("submitting", "submitted", "in_review")),
    ("result", ("accepted", "running")),
    ("closed", ("finished", "skipped", "expired")),
]
SOONEST_FIRST = (Task.deadline.is_(None), Task.deadline, Task.id)
EXPORT_BATCH = 1000  # rows read at a time for the export
FILTER_KEYS = ("platform", "state", "owner", "shop", "category", "q", "closed")


@dataclass
class Filters:
    platform: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    owner: str = ""  # a handle, "me" or "none"
    owner_id: int | None = None
    shop: str = ""
    category: str = ""
    q: str = ""
    closed: bool = False

    def query(self) -> dict[str, str]:
        """The filters as query parameters (links, the export, htmx requests)."""
        out = {"platform": ",".join(self.platform), "state": ",".join(self.state),
               "owner": self.owner, "shop": self.shop, "category": self.category, "q": self.q,
               "closed": "1" if self.closed else ""}
        return {k: v for k, v in out.items() if v}


@dataclass
class Row:
    task: Task
    campaign: Campaign
    owner: str  # display name, "" when unclaimed
    owner_name: str
    shops: list[str]
    categories: list[str]
    overdue: bool
    at_risk: bool


def _json(text: str | None) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _listed(value: object) -> list[str]:
    found = value if isinstance(value, list) else ([value] if value else [])
    return [str(v) for v in found if str(v).strip()]


def _shops(requirements: object) -> list[str]:
    req = requirements if isinstance(requirements, dict) else {}
    return _listed(req.get("shops") or req.get("shop"))


def _categories(requirements: object) -> list[str]:
    req = requirements if isinstance(requirements, dict) else {}
    return _listed(req.get("categories"))


def shops_of(campaign: Campaign) -> list[str]:
    return _shops(campaign.requirements)


def categories_of(campaign: Campaign) -> list[str]:
    return _categories(campaign.requirements)


def choices(session: Session, tags: bool = True) -> dict[str, list[str]]:
    """Every value a filter may take, from the data (platforms, people; with ``tags`` the
    shops and categories, which take a pass over the campaigns)."""
    shops: set[str] = set()
    categories: set[str] = set()
    distinct = select(cast(Campaign.requirements, Text)).distinct()  # campaigns share them
    for text in session.exec(distinct) if tags else ():
        req = _json(text)
        shops.update(_shops(req))
        categories.update(_categories(req))
    for binding in session.exec(select(ChatBinding)):
        if binding.shop not in ("", "*"):
            shops.add(binding.shop)
        if binding.category not in ("", "*"):
            categories.add(binding.category)
    return {
        "platform": list(session.exec(select(Platform.code).order_by(Platform.code))),
        "state": [s.value for s in State],
        "owner": list(session.exec(select(User.name).order_by(User.id))),
        "shop": sorted(shops), "category": sorted(categories),
    }


def _bad(lang: str, name: str, value: str, allowed: list[str]):
    shown = "、".join(allowed[:30]) if lang != "en" else ", ".join(allowed[:30])
    return refuse(422, "dash.bad_filter", lang, field=t(f"dash.filter.{name}", lang),
                  value=value[:60], allowed=shown or "—")


def parse_filters(session: Session, params: dict[str, str], viewer: Viewer | None,
                  lang: str) -> Filters:
    """The filters of a request, every value checked against ``choices``."""
    known = choices(session, tags=bool(params.get("shop") or params.get("category")))
    found = Filters()
    for name in ("platform", "state"):
        values = [v.strip() for v in (params.get(name) or "").split(",") if v.strip()]
        for value in values:
            if value not in known[name]:
                raise _bad(lang, name, value, known[name])
        setattr(found, name, list(dict.fromkeys(values)))
    owner = (params.get("owner") or "").strip()
    if owner:
        if owner == "me":
            if viewer is None or viewer.user_id is None:
                raise _bad(lang, "owner", owner, known["owner"])
            found.owner_id = viewer.user_id
        elif owner != "none":
            if owner not in known["owner"]:
                raise _bad(lang, "owner", owner, ["me", "none", *known["owner"]])
            found.owner_id = session.exec(select(User.id).where(User.name == owner)).first()
        found.owner = owner
    for name in ("shop", "category"):
        value = (params.get(name) or "").strip()
        if value and value not in known[name]:
            raise _bad(lang, name, value, known[name])
        setattr(found, name, value)
    q = (params.get("q") or "").strip()
    if len(q) > MAX_QUERY:
        raise refuse(422, "dash.query_too_long", lang, limit=MAX_QUERY, n=len(q))
    found.q = q
    closed = (params.get("closed") or "").strip().lower()
    if closed not in ("", "0", "1", "true", "false", "on"):
        raise _bad(lang, "closed", closed, ["1", "0"])
    found.closed = closed in ("1", "true", "on")
    return found


def _filtered(query, f: Filters, now: datetime,
              between: tuple[datetime, datetime] | None = None):
    """``query`` (tasks joined with their campaigns) narrowed by the filters the database can
    apply; shops and categories live in the campaign's requirements (``_tags_match``)."""
    if f.platform:
        query = query.where(Campaign.platform.in_(f.platform))
    if f.state:
        query = query.where(Task.state.in_(f.state))
    if not f.closed and not any(s in CLOSED_STATES for s in f.state):
        query = query.where(or_(Task.state.notin_([s.value for s in CLOSED_STATES]),
                                Task.updated_at >= now - RECENT_CLOSED))
    if between is not None:
        start, end = between
        query = query.where(or_(
            (Task.deadline >= start) & (Task.deadline < end),
            (Campaign.event_start < end) & (func.coalesce(Campaign.event_end,
                                                          Campaign.event_start) >= start)))
    if f.owner == "none":
        query = query.where(Task.claimed_by.is_(None))
    elif f.owner:
        query = query.where(Task.claimed_by == f.owner_id)
    if f.q:
        number = f.q.lstrip("#＃")
        words = [w.lower() for w in f.q.split() if w]
        conditions = [func.lower(Campaign.title).contains(w) | func.lower(
            Campaign.external_id).contains(w) for w in words]
        if number.isascii() and number.isdigit() and len(number) < 10:
            query = query.where(or_(Task.id == int(number), *conditions))
        else:
            query = query.where(*conditions)
    return query


def _tags_match(f: Filters, requirements: object) -> bool:
    return (not f.shop or f.shop in _shops(requirements)) and (
        not f.category or f.category in _categories(requirements))


def _full(f: Filters, now: datetime, between: tuple[datetime, datetime] | None = None):
    return _filtered(select(Task, Campaign, User.display_name, User.name)
                     .join(Campaign, Campaign.id == Task.campaign_id)
                     .join(User, User.id == Task.claimed_by, isouter=True), f, now, between
                     ).order_by(*SOONEST_FIRST)


def _each(session: Session, query, f: Filters, now: datetime) -> Iterator[Row]:
    for task, campaign, display, handle in session.exec(query):
        if _tags_match(f, campaign.requirements):
            yield _row(task, campaign, display, handle, now)


def _rows(session: Session, query, f: Filters, now: datetime,
          limit: int | None = None) -> list[Row]:
    return list(islice(_each(session, query, f, now), limit))


def _lateness(state: str, deadline: datetime | None, now: datetime) -> tuple[bool, bool]:
    """(overdue, at risk) of a task not submitted yet; ``_late`` is the same in SQL."""
    if state not in UNSUBMITTED or deadline is None:
        return False, False
    return deadline <= now, now < deadline <= now + AT_RISK


def _row(task: Task, campaign: Campaign, display: str | None, handle: str | None,
         now: datetime) -> Row:
    overdue, at_risk = _lateness(task.state, task.deadline, now)
    return Row(task, campaign, display or "", handle or "", shops_of(campaign),
               categories_of(campaign), overdue, at_risk)


def rows(session: Session, f: Filters, now: datetime | None = None,
         limit: int | None = None,
         between: tuple[datetime, datetime] | None = None) -> list[Row]:
    """The tasks that match, soonest deadline first (no deadline last); ``between``: only
    those whose deadline or event window falls in ``[start, end)`` (the calendar)."""
    now = now or utcnow()
    return _rows(session, _full(f, now, between), f, now, limit)


def each_row(session: Session, f: Filters, now: datetime | None = None) -> Iterator[Row]:
    """``rows`` one at a time, read in batches (the export of 100,000 tasks held them all:
    +50 MB that the process kept)."""
    now = now or utcnow()
    return _each(session, _full(f, now).execution_options(yield_per=EXPORT_BATCH), f, now)


@dataclass
class Counts:
    """How many matching tasks the board has, by state, and how many are late or at risk."""
    by_state: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    at_risk: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_state.values())


def board(session: Session, f: Filters, now: datetime | None = None,
          per_column: int = 100) -> tuple[list[dict], Counts]:
    """The board's columns, each with its first ``per_column`` rows, and the counts — without
    loading every matching task (100,000 open tasks took 7 s and 400 MB that way)."""
    now = now or utcnow()
    tagged = bool(f.shop or f.category)
    counts = _tagged_counts(session, f, now) if tagged else _counts(session, f, now)
    out = []
    for key, states in COLUMNS:
        total = sum(counts.by_state.get(s, 0) for s in states)
        query = _full(f, now).where(Task.state.in_(states))
        query = query.execution_options(yield_per=per_column) if tagged else \
            query.limit(per_column)
        shown = _rows(session, query, f, now, per_column) if total else []
        out.append({"key": key, "states": states, "rows": shown, "total": total,
                    "more": max(0, total - len(shown))})
    return out, counts


def _late(now: datetime):
    """``_lateness`` as SQL conditions, for the counts."""
    waiting = Task.state.in_([s.value for s in UNSUBMITTED]) & Task.deadline.is_not(None)
    return waiting & (Task.deadline <= now), waiting & (Task.deadline > now) & (
        Task.deadline <= now + AT_RISK)


def _counts(session: Session, f: Filters, now: datetime) -> Counts:
    overdue, at_risk = _late(now)
    query = _filtered(select(Task.state, func.count(), func.sum(case((overdue, 1), else_=0)),
                             func.sum(case((at_risk, 1), else_=0)))
                      .select_from(Task).join(Campaign, Campaign.id == Task.campaign_id),
                      f, now).group_by(Task.state)
    counts = Counts()
    for state, n, late, risky in session.exec(query):
        counts.by_state[state] = int(n)
        counts.overdue += int(late or 0)
        counts.at_risk += int(risky or 0)
    return counts


def _tagged_counts(session: Session, f: Filters, now: datetime) -> Counts:
    """Shops and categories are in each campaign's requirements: one pass over the matching
    tasks' few columns, streamed (never the tasks themselves)."""
    query = _filtered(select(Task.state, Task.deadline, Campaign.requirements)
                      .join(Campaign, Campaign.id == Task.campaign_id), f, now)
    counts = Counts()
    for state, deadline, requirements in session.exec(
            query.execution_options(yield_per=2000)):
        if not _tags_match(f, requirements):
            continue
        counts.by_state[state] = counts.by_state.get(state, 0) + 1
        overdue, at_risk = _lateness(state, deadline, now)
        counts.overdue += overdue
        counts.at_risk += at_risk
    return counts


def platform_names(session: Session, lang: str) -> dict[str, str]:
    """Each platform's name in the reader's language (the table's name when we have none)."""
    return {p.code: platform_name(p.code, lang, p.name) for p in session.exec(select(Platform))}
