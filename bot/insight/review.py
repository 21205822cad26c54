"""The review report: what a period of declarations brought and cost, for the team leader.

Once per team and period (weekly by default, ``PROMOPILOT_REVIEW_PERIOD``) the reminder
sweep — on the leader only — enqueues a ``review`` card into the team's ops channels (or,
without one, its notice channels), after ``PROMOPILOT_REVIEW_TIME`` on the period's first
day, about the period before. The outbox key ``review:<team>:<period>:<chat>:<channel>`` is
the log: enqueuing it again changes nothing, so each channel gets the card once.

The card shows the numbers and links to the chart (a PNG) and the page (HTML) behind a
signed, expiring console URL (``/insight/review.png?…&exp=…&sig=…``); the chat platforms
post cards, not images. ``promopilot report review`` writes the same PNG or HTML to a file.
The layouts (card, chart, page) are ``cards/review.py``; this module selects the numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from sqlmodel import Session, select

from bot.core import outbox
from bot.core.settings import ROOT, Settings, get_settings
from bot.core.timefmt import local, zone
from bot.core.views import builder
from bot.insight.metrics import InsightSettings, compute, get_insight_settings, hours_saved
from cards.model import Card
from cards.review import review_card
from storage.models import ChatBinding, Task, Team
from storage.models_data import RejectionRecord
from storage.types import utcnow

log = logging.getLogger(__name__)
PURPOSES = ("ops", "notices")  # ops channels first; the notice channels when a team has none
TREND = 6  # earlier periods on the chart

# ROI of the window, from the campaign results when that feature is installed (it appends a
# ``(session, start, end, platforms, team_id) -> Decimal | None``); "—" until one answers.
ROI_SOURCES: list[Callable[..., Decimal | None]] = []


# -- periods --------------------------------------------------------------------------------

def period_start(moment: datetime, tz: str, kind: str) -> datetime:
    """The start (aware, team zone) of the week (Monday) or month ``moment`` falls in."""
    day = moment.astimezone(zone(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "month":
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())


def previous(start: datetime, kind: str) -> datetime:
    """The start of the period before the one starting at ``start`` (wall-clock arithmetic
    in the team's zone: a week is seven local days whatever the offset does)."""
    return (start - timedelta(days=1)).replace(day=1) if kind == "month" else \
        start - timedelta(days=7)


def period_key(start: datetime, kind: str) -> str:
    if kind == "month":
        return start.strftime("%Y-%m")
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


def due_period(now: datetime, tz: str, settings: InsightSettings) -> tuple[str, datetime,
                                                                          datetime] | None:
    """The period to review now — ``(key, start, end)`` of the one before the current one —
    once the review time of the current one's first day has come; else None."""
    kind = settings.review_period.strip().lower()
    if kind not in ("week", "month"):
        return None
    current = period_start(now, tz, kind)
    at = datetime.combine(current.date(), datetime.strptime(settings.review_time.strip(),
                                                           "%H:%M").time(), current.tzinfo)
    if now < at:
        return None
    start = previous(current, kind)
    return period_key(start, kind), start.astimezone(UTC), current.astimezone(UTC)


def enqueue_due(session: Session, now: datetime, settings: InsightSettings | None = None) -> int:
    """Review cards whose time has come and that were not enqueued yet (one per team,
    period and channel). Called by the reminder sweep."""
    settings = settings or get_insight_settings()
    if settings.review_period.strip().lower() not in ("week", "month"):
        return 0
    bindings = list(session.exec(select(ChatBinding).where(ChatBinding.purpose.in_(PURPOSES))
                                 .order_by(ChatBinding.id)))
    sent = 0
    for team in session.exec(select(Team).order_by(Team.id)):
        due = due_period(now, team.timezone, settings)
        mine = [b for b in bindings if b.team_id in (team.id, None)]
        chosen = [b for b in mine if b.purpose == "ops"] or mine
        if due is None or not chosen:
            continue
        key, start, end = due
        channels: dict[tuple[str, str], set[str]] = {}
        for b in chosen:
            channels.setdefault((b.chat, b.channel_id), set()).add(b.platform)
        card_key = f"review:{team.id}:{key}"
        for (chat, channel), platforms in sorted(channels.items()):
            sent += outbox.enqueue_card(
                session, chat, channel, card_key, "review",
                {"team_id": team.id, "period": key, "start": start.isoformat(),
                 "end": end.isoformat(), "platforms": sorted(platforms)},
                key=f"{card_key}:{chat}:{channel}")
    return sent


# -- the numbers ----------------------------------------------------------------------------

def _reasons(session: Session, start: datetime, end: datetime, platforms: list[str] | None,
             team_id: int | None, top: int = 3) -> list[dict]:
    query = (select(RejectionRecord).join(Task, Task.id == RejectionRecord.task_id)
             .where(RejectionRecord.created_at >= start, RejectionRecord.created_at < end)
             .order_by(RejectionRecord.id))
    if platforms and "*" not in platforms:
        query = query.where(RejectionRecord.platform.in_(platforms))
    if team_id is not None:
        query = query.where(Task.team_id == team_id)
    counts: Counter = Counter()
    samples: dict[str, str] = {}
    seen: set[tuple] = set()
    for r in session.exec(query):
        samples.setdefault(r.category, r.reason_text or r.reason_code)
        if (r.task_id, r.declaration_version, r.category) in seen:
            continue  # one rejected declaration counts once per reason, however many lines
        seen.add((r.task_id, r.declaration_version, r.category))
        counts[r.category] += 1
    return [{"category": c, "count": n, "sample": samples[c][:120]}
            for c, n in counts.most_common(top)]


def _roi(session: Session, start: datetime, end: datetime, platforms: list[str] | None,
         team_id: int | None) -> str | None:
    for source in ROI_SOURCES:
        try:
            value = source(session, start, end, platforms, team_id)
        except Exception:  # noqa: BLE001 - the report shows "—" rather than failing
            log.exception("ROI source failed", extra={"source": repr(source)[:100]})
            continue
        if value is not None:
            return f"{Decimal(value):.2f}"
    return None


def gather(session: Session, start: datetime, end: datetime, *, team_id: int | None = None,
           platforms: list[str] | None = None, now: datetime | None = None,
           settings: InsightSettings | None = None) -> dict:
    """The review's numbers for ``[start, end)``, as plain data for the card, chart, page."""
    settings = settings or get_insight_settings()
    now = now or utcnow()
    team = session.get(Team, team_id) if team_id is not None else None
    tz = team.timezone if team else get_settings().timezone
    metrics = compute(session, start, end, platforms=platforms, team_id=team_id, now=now,
                      settings=settings)
    total = metrics.total()
    trend = []
    span, cursor = end - start, start
    for _ in range(TREND):
        cursor -= span
        earlier = compute(session, cursor, cursor + span, platforms=platforms, team_id=team_id,
                          now=now, settings=settings).total()
        trend.insert(0, {"label": local(cursor, tz, "%m-%d"), "declarations": earlier.submitted,
                         "acceptance_rate": earlier.acceptance_rate})
    trend.append({"label": local(start, tz, "%m-%d"), "declarations": total.submitted,
                  "acceptance_rate": total.acceptance_rate})
    return {
        "team": team.name if team else "", "team_code": team.code if team else "",
        "team_id": team_id, "tz": tz, "start": start.isoformat(), "end": end.isoformat(),
        "period": f"{local(start, tz, '%Y-%m-%d')} – "
                  f"{local(end - timedelta(seconds=1), tz, '%Y-%m-%d')}",
        "declarations": total.submitted, "accepted": total.accepted,
        "rejected_platform": total.rejections_platform,
        "rejections_approval": total.rejections_approval,
        "acceptance_rate": total.acceptance_rate, "deadlines": total.deadlines,
        "missed": total.missed, "avg_hours_to_submit": total.avg_hours_to_submit,
        "overtime": total.overtime, "person_submissions": total.person_submissions,
        "rework_hours": round(total.rework_hours, 1), "reworks_open": total.reworks_open,
        "hours_saved": round(hours_saved(total, settings), 1),
        "roi": _roi(session, start, end, platforms, team_id),
        "reasons": _reasons(session, start, end, platforms, team_id),
        "platforms": [{"code": p, "submitted": b.submitted, "accepted": b.accepted,
                       "rejected": b.rejections_platform, "missed": b.missed}
                      for p in metrics.platforms() for b in [metrics.total(p)]],
        "trend": trend,
    }


# -- signed links ---------------------------------------------------------------------------

_link: dict[str, object] = {}


def link_key(settings: Settings) -> bytes:
    """The key that signs review links: from the console's session secret (set it when
    several replicas serve links), else its generated file, else one for this process."""
    if settings.session_secret is not None and settings.session_secret.get_secret_value():
        secret = settings.session_secret.get_secret_value()
    elif (ROOT / "var" / "session_secret").is_file():
        secret = (ROOT / "var" / "session_secret").read_text().strip()
    else:
        log.warning("no session secret: review links work in this process only")
        secret = secrets.token_urlsafe(32)
    return hashlib.sha256(b"promopilot-review-link\0" + secret.encode()).digest()


def configure_links(settings: Settings) -> None:
    _link.update(key=link_key(settings), base=settings.base_url)


def _signature(key: bytes, fields: dict[str, str]) -> str:
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def signed_url(fmt: str, params: dict, lang: str, now: datetime,
               settings: InsightSettings | None = None) -> str:
    if "key" not in _link:
        configure_links(get_settings())
    days = (settings or get_insight_settings()).review_link_days
    fields = {"team": str(params.get("team_id") or ""), "start": params["start"],
              "end": params["end"], "p": ",".join(params.get("platforms") or ["*"]),
              "lang": lang, "exp": str(int((now + timedelta(days=days)).timestamp())),
              "fmt": fmt}
    fields["sig"] = _signature(_link["key"], fields)  # type: ignore[arg-type]
    del fields["fmt"]
    return f"{_link['base']}/insight/review.{fmt}?{urlencode(fields)}"


def check_link(fmt: str, query: dict[str, str], now: datetime) -> str | None:
    """None when the link is good; else the message key of why not."""
    if "key" not in _link:
        configure_links(get_settings())
    fields = {k: query.get(k, "") for k in ("team", "start", "end", "p", "lang", "exp")}
    fields["fmt"] = fmt
    expected = _signature(_link["key"], fields)  # type: ignore[arg-type]
    if not hmac.compare_digest(expected, query.get("sig", "")):
        return "insight.link_bad"
    if not fields["exp"].isdigit() or int(fields["exp"]) < now.timestamp():
        return "insight.link_expired"
    return None


# -- the card -------------------------------------------------------------------------------

@builder("review")
def build_review_card(session: Session, params: dict, lang: str) -> Card | None:
    start, end = (datetime.fromisoformat(params[k]) for k in ("start", "end"))
    platforms = params.get("platforms") or ["*"]
    data = gather(session, start, end, team_id=params.get("team_id"), platforms=platforms)
    now = utcnow()
    return review_card(data, lang, chart_url=signed_url("png", params, lang, now),
                       page_url=signed_url("html", params, lang, now))

