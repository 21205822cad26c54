"""Charts (``/dash/charts``, Apache ECharts): acceptance rate and top rejection reasons per
platform, deadlines met vs missed, hours from notice to submission, ROI by campaign type.

The numbers are the team metrics' (``bot.insight.metrics.compute``, the same definitions as
the review report and ``GET /api/metrics``); rejection reasons are the learning feature's
categories (``rejection_records``). ROI by campaign type is ``bot.insight.roi`` over the
imported campaign results (``campaign_results``: ``promopilot import results``); without
results in the window the chart says which import fills it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select

from bot.core.errors import DomainError
from bot.core.i18n import t
from bot.web import dash_data as data
from bot.web.dash_common import Pages, refuse
from storage.models_data import RejectionRecord
from storage.types import utcnow

log = logging.getLogger(__name__)
WINDOWS = ("30d", "90d", "365d")
TOP_REASONS = 5
ROI_IMPORT = "promopilot import results <file>"  # what fills the ROI chart (docs/dashboard.md)


def roi_by_type(session: Session, start: datetime, end: datetime, platforms: list[str],
                names: dict[str, str]) -> dict | None:
    """ROI (GMV ÷ fees) per campaign type and platform from the imported campaign results
    (``bot.insight.roi``), or None while there are none in the window."""
    from bot.insight import roi

    pairs = roi.rows_in(session, start, end, platforms or None)
    if not pairs:
        return None
    groups = roi.group(session, pairs, "type")  # keys (platform, campaign type)
    types = sorted({g.key[1] or "—" for g in groups})
    series = []
    for code in sorted({g.key[0] for g in groups}):
        values = {g.key[1] or "—": g.roi for g in groups if g.key[0] == code}
        series.append({"platform": code, "name": names.get(code, code),
                       "values": [None if values.get(k) is None else float(values[k])
                                  for k in types]})
    return {"types": types, "series": series}


def reasons(session: Session, start: datetime, end: datetime, platforms: list[str],
            lang: str) -> dict[str, list[dict]]:
    """Per platform the most frequent rejection reasons (one declaration counts once)."""
    query = select(RejectionRecord).where(RejectionRecord.created_at >= start,
                                          RejectionRecord.created_at < end)
    if platforms:
        query = query.where(RejectionRecord.platform.in_(platforms))
    counts: dict[str, Counter] = {}
    seen: set[tuple] = set()
    for r in session.exec(query):
        if (r.task_id, r.declaration_version, r.category) in seen:
            continue
        seen.add((r.task_id, r.declaration_version, r.category))
        counts.setdefault(r.platform, Counter())[r.category] += 1
    out = {}
    for platform, counter in counts.items():
        out[platform] = [{"reason": _category(c, lang), "count": n}
                         for c, n in counter.most_common(TOP_REASONS)]
    return out


def _category(code: str, lang: str) -> str:
    shown = t(f"learn.cat.{code}", lang)
    return code if shown.startswith("learn.cat.") else shown


def chart_data(session: Session, start: datetime, end: datetime, platforms: list[str],
               lang: str) -> dict:
    from bot.insight.metrics import compute

    found = compute(session, start, end, platforms=platforms or None)
    names = data.platform_names(session, lang)
    per = []
    for code in found.platforms():
        b = found.total(code)
        per.append({"platform": code, "name": names.get(code, code),
                    "accepted": b.accepted, "rejected": b.rejections_platform,
                    "acceptance_rate": None if b.acceptance_rate is None
                    else round(b.acceptance_rate * 100, 1),
                    "deadlines": b.deadlines, "met": b.deadlines - b.missed, "missed": b.missed,
                    "submitted": b.submitted,
                    "avg_hours": None if b.avg_hours_to_submit is None
                    else round(b.avg_hours_to_submit, 1)})
    top = reasons(session, start, end, platforms, lang)
    roi = roi_by_type(session, start, end, platforms, names)
    return {
        "platforms": per,
        "reasons": [{"platform": p, "name": names.get(p, p), "reasons": rs}
                    for p, rs in sorted(top.items())],
        "roi": roi,
        "roi_empty": None if roi else t("dash.charts.roi_empty", lang, command=ROI_IMPORT),
        "labels": {k: t(f"dash.charts.{k}", lang) for k in (
            "accepted", "rejected", "rate", "met", "missed", "hours", "roi", "count",
            "no_data")},
    }


def build_router(container, pages: Pages) -> APIRouter:
    db = container.db
    router = APIRouter(include_in_schema=False)

    def window(request: Request, lang: str) -> tuple[datetime, datetime, list[str], str]:
        from bot.insight.metrics import parse_since

        since = request.query_params.get("since") or "90d"
        if since not in WINDOWS:
            raise refuse(422, "dash.bad_filter", lang, field=t("dash.charts.window", lang),
                         value=since[:20], allowed=", ".join(WINDOWS))
        now = utcnow()
        try:
            start = parse_since(since, now)
        except DomainError as exc:
            raise refuse(422, exc.key, lang, **exc.params) from None
        with db.session() as session:
            f = data.parse_filters(session, {"platform": request.query_params.get(
                "platform", "")}, None, lang)
        return start, now, f.platform, since

    @router.get("/dash/charts", response_class=HTMLResponse)
    def charts_page(request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "charts")
        start, end, platforms, since = window(request, lang)
        with db.session() as session:
            names = data.platform_names(session, lang)
        return pages.render(request, "dashboard/charts.html", viewer, lang, page="charts",
                            title=t("dash.nav.charts", lang), since=since, windows=WINDOWS,
                            platform=",".join(platforms), platforms=names)

    @router.get("/dash/api/charts")
    def charts_feed(request: Request) -> dict:
        viewer, lang = pages.viewer(request, "charts")
        start, end, platforms, since = window(request, lang)
        with db.session() as session:
            return {"since": since, **chart_data(session, start, end, platforms, lang)}

    return router
