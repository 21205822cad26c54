"""The calendar (``/dash/calendar``): registration deadlines and event windows per platform,
month or week, coloured by the task's state; a click opens the task.

FullCalendar runs with ``timeZone: "UTC"`` and gets the team's wall-clock times without an
offset, so a deadline sits on the team's day whatever zone the browser is in (FullCalendar
has no named zones without another plugin). The feed takes the board's filters.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bot.core.i18n import t
from bot.core.timefmt import in_zone, zone
from bot.web import dash_data as data
from bot.web.dash_board import _params, filter_context
from bot.web.dash_common import Pages, refuse

# The card colours (cards/builders.STATE_COLOR) as the console shows them.
COLOURS = {"blue": "#3370ff", "green": "#2ea121", "orange": "#ff8800", "red": "#f54a45",
           "grey": "#8f959e", "purple": "#7f3bf5"}
MAX_SPAN = timedelta(days=100)


def _wall(dt: datetime) -> str:
    return in_zone(dt).replace(tzinfo=None).isoformat(timespec="minutes")


def _bound(raw: str, lang: str) -> datetime:
    """A bound FullCalendar sends (``2026-11-30T00:00:00Z`` = the team's wall clock)."""
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00")[:25])
    except ValueError:
        raise refuse(422, "dash.bad_date", lang, value=raw[:40]) from None
    return parsed.replace(tzinfo=zone())


def events(rows: list[data.Row], start: datetime, end: datetime, lang: str,
           platforms: dict[str, str]) -> list[dict]:
    from cards.builders import STATE_COLOR

    out = []
    for r in rows:
        task, campaign = r.task, r.campaign
        colour = COLOURS[STATE_COLOR.get(task.state, "blue")]
        platform = platforms.get(campaign.platform, campaign.platform)
        state = t(f"state.{task.state}", lang)
        common = {"url": f"/dash/tasks/{task.id}", "backgroundColor": colour,
                  "borderColor": colour,
                  "extendedProps": {"task": task.id, "state": task.state, "stateLabel": state,
                                    "platform": campaign.platform, "overdue": r.overdue}}
        if task.deadline is not None and start <= task.deadline < end:
            out.append({**common, "id": f"deadline-{task.id}", "start": _wall(task.deadline),
                        "title": t("dash.cal.deadline", lang, task_id=task.id,
                                   time=task.deadline, platform=platform,
                                   title=campaign.title[:80]),
                        "classNames": ["pp-deadline", f"state-{task.state}"]
                        + (["pp-overdue"] if r.overdue else []),
                        "extendedProps": {**common["extendedProps"], "kind": "deadline"}})
        if campaign.event_start is not None:
            finish = campaign.event_end or campaign.event_start
            if campaign.event_start < end and finish >= start:
                out.append({**common, "id": f"event-{task.id}",
                            "start": _wall(campaign.event_start), "end": _wall(finish),
                            "title": t("dash.cal.event", lang, task_id=task.id,
                                       platform=platform, title=campaign.title[:80]),
                            "classNames": ["pp-window", f"state-{task.state}"],
                            "backgroundColor": colour + "33", "textColor": "#1f2329",
                            "extendedProps": {**common["extendedProps"], "kind": "event"}})
    return out


def build_router(container, pages: Pages) -> APIRouter:
    db = container.db
    router = APIRouter(include_in_schema=False)

    @router.get("/dash/calendar", response_class=HTMLResponse)
    def calendar_page(request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "calendar")
        with db.session() as session:
            f = data.parse_filters(session, _params(request), viewer, lang)
            context = filter_context(session, f, viewer, lang)
        legend = [(s, t(f"state.{s}", lang)) for s in
                  ("new", "claimed", "drafting", "in_approval", "approved", "accepted",
                   "platform_rejected", "finished")]
        return pages.render(request, "dashboard/calendar.html", viewer, lang, page="calendar",
                            title=t("dash.nav.calendar", lang), form_action="/dash/calendar",
                            legend=legend, **context)

    @router.get("/dash/api/calendar")
    def calendar_feed(request: Request, start: str, end: str) -> list[dict]:
        viewer, lang = pages.viewer(request, "calendar")
        since, until = _bound(start, lang), _bound(end, lang)
        if until <= since or until - since > MAX_SPAN:
            raise refuse(422, "dash.bad_range", lang, days=MAX_SPAN.days)
        with db.session() as session:
            f = data.parse_filters(session, _params(request), viewer, lang)
            f.closed = True  # a past month shows what happened, finished or not
            found = data.rows(session, f, between=(since, until))
            names = data.platform_names(session, lang)
        return events(found, since, until, lang, names)

    return router
