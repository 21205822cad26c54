"""Plugs the decisions feature (``bot.insight``) in. Installed from ``bot.wiring.PLUGINS``.

Team metrics, review report and BI export: ``GET /api/metrics``, ``GET /api/export``, the
review card through the reminder sweep (leader only), and the signed, expiring chart and page
links on that card (``/insight/review.png``, ``/insight/review.html``: outside ``/api`` and
``/console``, so a person opens them from the chat without a login; the signature is the
credential).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import select

from bot.core.errors import DomainError
from bot.core.i18n import normalise, t
from bot.core.users import by_name
from bot.insight import bi_export, metrics, review
from cards import review as layout
from storage.models import Team
from storage.types import utcnow

log = logging.getLogger(__name__)


def install(container: Any, api: Any) -> None:
    _install_reports(container, api)
    _install_decisions(container, api)
    from bot.insight import decide_plugin  # part 2: recommendation, forecast, alerts, ROI

    decide_plugin.install(container, api)


# -- metrics, review report, BI export --------------------------------------------------------

def _lang(request: Request, settings: Any) -> str:
    principal = getattr(request.state, "principal", None)
    if principal is not None and principal.lang:
        return normalise(principal.lang)
    header = request.headers.get("accept-language")
    return normalise(header.split(",")[0] if header else settings.language)


def _refuse(status: int, key: str, lang: str, **params: Any) -> HTTPException:
    return HTTPException(status, {"code": key, "message": t(key, lang, **params)})


def _caller_roles(request: Request, container: Any, actor: str | None, lang: str) -> frozenset:
    """The roles of who asks: a logged-in person's own; a token or demo caller's named
    ``actor`` (nobody named: no role)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise _refuse(401, "auth.required", lang)
    if principal.kind == "session":
        if actor and actor != principal.name:
            raise _refuse(403, "auth.not_you", lang, me=principal.display_name, name=actor[:64])
        return frozenset(principal.roles)
    if not actor:
        return frozenset()
    with container.db.session() as session:
        user = by_name(session, actor)
    if user is None or not user.active:
        raise _refuse(403, "insight.unknown_actor", lang, name=actor[:64])
    return frozenset(user.roles or ())


def _window(since: str | None, until: str | None, team: str | None, platform: str | None,
            container: Any, lang: str) -> tuple[datetime, datetime | None, int | None, list]:
    now = utcnow()
    try:
        start = metrics.parse_since(since, now)
        end = metrics.parse_since(until, now) if until else None
    except DomainError as exc:
        raise HTTPException(exc.status, {"code": exc.key, "message": exc.message(lang)}) \
            from None
    team_id = None
    if team:
        with container.db.session() as session:
            row = session.exec(select(Team).where(Team.code == team)).first()
        if row is None:
            raise _refuse(404, "insight.unknown_team", lang, team=team[:64])
        team_id = row.id
    platforms = [p.strip() for p in (platform or "").split(",") if p.strip()]
    return start, end, team_id, platforms


def _install_reports(container: Any, api: Any) -> None:
    from bot.watch import reminders

    db, settings = container.db, container.settings
    review.configure_links(settings)
    if review.enqueue_due not in reminders.periodic:
        reminders.periodic.append(review.enqueue_due)
    router = APIRouter(tags=["insight"])

    @router.get("/api/metrics")
    def team_metrics(request: Request, since: str = Query("30d", examples=["30d"]),
                     until: str | None = None, platform: str | None = None,
                     team: str | None = None) -> dict:
        """Team cost metrics per platform and month (docs/insight.md)."""
        lang = _lang(request, settings)
        _caller_roles(request, container, None, lang)
        start, end, team_id, platforms = _window(since, until, team, platform, container, lang)
        with db.session() as session:
            found = metrics.compute(session, start, end, platforms=platforms, team_id=team_id)
        work = metrics.get_insight_settings()
        return {**found.as_dict(), "work_hours": work.work_hours, "work_days": work.work_days}

    @router.get("/api/export")
    def export(request: Request, format: str = Query("csv", description="csv, xlsx or parquet"),
               since: str = Query("30d"), until: str | None = None,
               platform: str | None = None, team: str | None = None,
               unmasked: bool = Query(False, description="names and phone numbers in the "
                                      "clear: admins only"),
               actor: str | None = Query(None, description="token callers: who asks")) -> Response:
        """Every declaration line as CSV, Excel or Parquet; names and phone numbers masked
        unless an admin asks for them."""
        lang = _lang(request, settings)
        roles = _caller_roles(request, container, actor, lang)
        try:
            fmt = bi_export.check_format(format)
        except DomainError as exc:
            raise HTTPException(exc.status, {"code": exc.key, "message": exc.message(lang)}) \
                from None
        if unmasked and "admin" not in roles:
            raise _refuse(403, "insight.unmasked_admins_only", lang)
        start, end, team_id, platforms = _window(since, until, team, platform, container, lang)
        with db.session() as session:
            data = bi_export.rows(session, start, end, platforms=platforms, team_id=team_id,
                                  unmasked=unmasked)
        log.info("BI export", extra={"format": fmt, "rows": len(data), "unmasked": unmasked,
                                     "actor": actor or getattr(request.state.principal, "name",
                                                               None)})
        name = f"declarations-{utcnow():%Y%m%d}.{fmt}"
        return Response(bi_export.to_bytes(fmt, data), media_type=bi_export.MEDIA[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _review(request: Request, fmt: str) -> tuple[dict, str]:
        query = dict(request.query_params)
        lang = normalise(query.get("lang"))
        why = review.check_link(fmt, query, utcnow())
        if why is not None:
            raise _refuse(410 if why == "insight.link_expired" else 403, why, lang)
        try:
            start, end = (datetime.fromisoformat(query[k]) for k in ("start", "end"))
            team_id = int(query["team"]) if query.get("team") else None
        except (KeyError, ValueError):
            raise _refuse(403, "insight.link_bad", lang) from None
        platforms = [p for p in query.get("p", "*").split(",") if p]
        with db.session() as session:
            data = review.gather(session, start, end, team_id=team_id, platforms=platforms)
        return data, lang

    @router.get("/insight/review.png", include_in_schema=False)
    def review_png(request: Request) -> Response:
        data, lang = _review(request, "png")
        png = layout.chart_png(data, lang, metrics.get_insight_settings().chart_font)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private"})

    @router.get("/insight/review.html", include_in_schema=False)
    def review_page(request: Request) -> HTMLResponse:
        data, lang = _review(request, "html")
        png = layout.chart_png(data, lang, metrics.get_insight_settings().chart_font)
        return HTMLResponse(layout.page_html(data, lang, png, utcnow()),
                            headers={"Cache-Control": "private"})

    api.include_router(router)


# -- costs, margin, guards, scenarios (part 1) ---------------------------------------------------

def _install_decisions(container: Any, api: Any) -> None:
    """The cost sync job (leader only), the guard before ``approve``, the pricing policy
    checked at start (a broken file stops start-up), ``GET /api/tasks/{id}/scenarios``."""
    from bot.core import actions
    from bot.core.scheduler import threaded
    from bot.insight import acceptance, costs, guards, pricing
    from bot.insight import scenarios as options

    pricing.current()
    actions.guard("approve")(acceptance.before_approve)
    sync = costs.CostSync(container.db, container.cost_sources)
    container.extras["cost_sync"] = sync

    def sync_then_kick() -> None:
        if sync.run(only_due=True):
            kick = container.extras.get("kick")
            if kick is not None:
                kick()  # an ops card decided in the sync goes out now

    container.jobs.append(("cost_sync", threaded(sync_then_kick), 60.0))
    if api is None:
        return
    router = APIRouter(tags=["insight"])

    @router.get("/api/tasks/{task_id}/scenarios")
    def task_scenarios(task_id: int, request: Request) -> dict:
        """The options for a task's declaration side by side (minimum, deeper, skip …) with
        expected units, margin after fees, stock against the red line, budget and risks;
        and the guards' findings (docs/insight.md)."""
        from storage.models import Task

        principal = getattr(request.state, "principal", None)
        lang = normalise(getattr(principal, "lang", None) or (request.headers.get(
            "accept-language") or container.settings.language).split(",")[0])
        with container.db.session() as session:
            task = session.get(Task, task_id)
            if task is None:
                raise HTTPException(404, {"code": "err.not_found", "message": t(
                    "err.not_found", lang, task_id=task_id)})
            found, listed = options.scenarios(session, task)
            if found is None:
                raise HTTPException(422, {"code": "err.no_declaration", "message": t(
                    "err.no_declaration", lang, task_id=task_id)})
            body = options.as_dict(found, listed, lang)
            skip = acceptance.accepted(session, task_id, found.declaration.version)
            body["risks"] = [{**f.as_dict(lang), "accepted": f.ack_key in skip}
                             for f in guards.findings(session, found)]
        return body

    api.include_router(router)
