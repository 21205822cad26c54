"""Plugs part 2 of the decisions feature in (called from ``bot.insight.plugin.install``):

- the forecast becomes the scenarios' expected units (``scenarios.set_forecast``) and the
  results' ROI the review report's (``review.ROI_SOURCES``);
- the alert job (leader only, every ``PROMOPILOT_ALERT_INTERVAL_SECONDS``): competitors'
  prices from ``PROMOPILOT_COMPETITOR_PRICES_URL`` when set, then one alert sweep;
- ``GET /api/tasks/{id}/recommendation``, ``/forecast``, ``GET /api/roi`` (under ``/api``,
  so ``bot/web/auth.py`` authenticates them).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from bot.core.i18n import normalise, t
from bot.core.timefmt import zone
from bot.insight import alerts, feeds, forecast, recommend, review, roi, scenarios, supply
from storage.models import Task

log = logging.getLogger(__name__)


def _lang(request: Request, settings: Any) -> str:
    principal = getattr(request.state, "principal", None)
    if principal is not None and getattr(principal, "lang", None):
        return normalise(principal.lang)
    header = request.headers.get("accept-language")
    return normalise(header.split(",")[0] if header else settings.language)


def _task(session, task_id: int, lang: str) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise HTTPException(404, {"code": "err.not_found",
                                  "message": t("err.not_found", lang, task_id=task_id)})
    return task


def run_alerts(container: Any) -> int:
    """One round of the alert job: fetch competitors' prices (a failure is logged and the
    sweep still runs on what is stored), then decide the alerts and kick the outbox."""
    is_leader = container.extras.get("is_leader")
    if is_leader is not None and not is_leader():
        return 0
    settings = alerts.get_alert_settings()
    if settings.competitor_prices_url:
        try:
            items = feeds.fetch(settings.competitor_prices_url,
                                settings.competitor_prices_token or None)
            report = alerts.import_prices_items(container.db, items, "http-json",
                                                timezone=container.settings.timezone)
            for error in report.errors[:20]:
                log.warning("competitor price rejected", extra={"why": error.message("en")})
        except feeds.FeedError as exc:
            log.warning("competitor prices unavailable", extra={"error": str(exc)[:300]})
    with container.db.session() as session:
        sent = alerts.sweep(session)
    if sent and container.extras.get("kick") is not None:
        container.extras["kick"]()
    return sent


def install(container: Any, api: Any) -> None:
    from bot.core.scheduler import threaded
    from bot.insight import recommend_policy

    recommend_policy.current()  # a broken policies/recommendation.yaml stops start-up
    scenarios.set_forecast(forecast.expected_units)
    if roi.review_roi not in review.ROI_SOURCES:
        review.ROI_SOURCES.append(roi.review_roi)
    container.jobs.append(("insight_alerts", threaded(lambda: run_alerts(container)),
                           alerts.get_alert_settings().alert_interval_seconds))
    if api is None:
        return
    router = APIRouter(tags=["insight"])
    db, settings = container.db, container.settings

    @router.get("/api/tasks/{task_id}/recommendation")
    def task_recommendation(task_id: int, request: Request) -> dict:
        """Apply / caution / skip with the score and a reason per factor, each naming its
        data (docs/insight.md)."""
        lang = _lang(request, settings)
        with db.session() as session:
            return recommend.recommend(session, _task(session, task_id, lang)).as_dict(lang)

    @router.get("/api/tasks/{task_id}/forecast")
    def task_forecast(task_id: int, request: Request) -> dict:
        """Units forecast per SKU of the declaration (low, expected, high), the method and
        history used, and the replenishment each needs."""
        lang = _lang(request, settings)
        with db.session() as session:
            found, lines = supply.plan(session, _task(session, task_id, lang))
            if found is None:
                raise HTTPException(422, {"code": "err.no_declaration", "message": t(
                    "err.no_declaration", lang, task_id=task_id)})
            return supply.as_dict(found, lines, lang)

    @router.get("/api/roi")
    def roi_report(request: Request, since: str | None = Query(None, description="ISO date"),
                   until: str | None = None, platform: str | None = None) -> dict:
        """ROI (GMV ÷ fees), margin and net per platform, campaign type and slot."""
        lang = _lang(request, settings)
        try:
            start = datetime.fromisoformat(since) if since else None
            end = datetime.fromisoformat(until) if until else None
        except ValueError:
            raise HTTPException(422, {"code": "results.bad_date", "message": t(
                "results.bad_date", lang)}) from None
        start, end = (None if x is None else x if x.tzinfo else x.replace(
            tzinfo=zone(settings.timezone)) for x in (start, end))
        platforms = [p.strip() for p in (platform or "").split(",") if p.strip()]
        with db.session() as session:
            return roi.report(session, start, end, platforms)

    api.include_router(router)
