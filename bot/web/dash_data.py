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

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, select

from bot.core.i18n import t
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


def _listed(value: object) -> list[str]:
    found = value if isinstance(value, list) else ([value] if value else [])
    return [str(v) for v in found if str(v).strip()]


def shops_of(campaign: Campaign) -> list[str]:
    req = campaign.requirements if isinstance(campaign.requirements, dict) else {}
    return _listed(req.get("shops") or req.get("shop"))


def categories_of(campaign: Campaign) -> list[str]:
    req = campaign.requirements if isinstance(campaign.requirements, dict) else {}
    return _listed(req.get("categories"))


def choices(session: Session, tags: bool = True) -> dict[str, list[str]]:
    """Every value a filter may take, from the data (platforms, people; with ``tags`` the
    shops and categories, which take a pass over the campaigns)."""
    shops: set[str] = set()
    categories: set[str] = set()
    for req in session.exec(select(Campaign.requirements)) if tags else ():
        req = req if isinstance(req, dict) else {}
        shops.update(_listed(req.get("shops") or req.get("shop")))
        categories.update(_listed(req.get("categories")))
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


def rows(session: Session, f: Filters, now: datetime | None = None,
         limit: int | None = None,
         between: tuple[datetime, datetime] | None = None) -> list[Row]:
    """The tasks that match, soonest deadline first (no deadline last); ``between``: only
    those whose deadline or event window falls in ``[start, end)`` (the calendar)."""
    now = now or utcnow()
    query = (select(Task, Campaign, User.display_name, User.name)
             .join(Campaign, Campaign.id == Task.campaign_id)
             .join(User, User.id == Task.claimed_by, isouter=True))
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
    query = query.order_by(Task.deadline.is_(None), Task.deadline, Task.id)
    out: list[Row] = []
    for task, campaign, display, handle in session.exec(query):
        shops, cats = shops_of(campaign), categories_of(campaign)
        if (f.shop and f.shop not in shops) or (f.category and f.category not in cats):
            continue
        waiting = task.state in UNSUBMITTED and task.deadline is not None
        overdue = waiting and task.deadline <= now
        at_risk = waiting and not overdue and task.deadline - now <= AT_RISK
        out.append(Row(task, campaign, display or "", handle or "", shops, cats, overdue,
                       at_risk))
        if limit is not None and len(out) >= limit:
            break
    return out


def columns(found: list[Row], per_column: int = 100) -> list[dict]:
    """The rows by lifecycle column; each column shows its first ``per_column``."""
    out = []
    for key, states in COLUMNS:
        mine = [r for r in found if r.task.state in states]
        out.append({"key": key, "states": states, "rows": mine[:per_column],
                    "total": len(mine), "more": max(0, len(mine) - per_column)})
    return out


def platform_names(session: Session, lang: str) -> dict[str, str]:
    """Each platform's name in the reader's language (the table's name when we have none)."""
    names = {}
    for p in session.exec(select(Platform)):
        key = f"dash.platform.{p.code}"
        shown = t(key, lang)
        names[p.code] = p.name if shown == key else shown
    return names
