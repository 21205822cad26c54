"""The dashboard: board (``/``), calendar, task and campaign pages, charts and settings.

Server-rendered with Jinja2 (``bot/web/templates/dashboard/``) plus three kept front-end
libraries served from ``bot/web/static/vendor/`` (htmx, Apache ECharts, FullCalendar; no
build step). One module per page, ``bot/web/dash_*.py`` (modules of ``bot.web``, not a
subpackage: they use its credential helpers, and ``bot.web`` installs them); docs/dashboard.md
says what each page shows and who sees it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from bot.core.i18n import t
from bot.web import dash_board, dash_calendar, dash_charts, dash_detail, dash_settings_page
from bot.web.dash_common import (
    LANG_COOKIE,
    NAV,
    TEMPLATES,
    Pages,
    Refused,
    Viewer,
    page_lang,
    viewer_of,
)
from bot.web.login import safe_next

STATIC = Path(__file__).resolve().parent / "static"
YEAR = 365 * 24 * 3600


def install(app: FastAPI, container) -> None:
    pages = Pages(container)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (dash_board, dash_calendar, dash_detail, dash_charts, dash_settings_page):
        app.include_router(module.build_router(container, pages))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/lang", include_in_schema=False)
    def choose_language(request: Request, to: str = "zh-CN", next: str = "/") -> Response:
        """The language toggle: remembered in a cookie, then back to the page."""
        lang = "en" if to == "en" else "zh-CN"
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(LANG_COOKIE, lang, max_age=YEAR, samesite="lax", path="/",
                            secure=container.settings.base_url.startswith("https://"))
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        """A page the viewer may not see: the reason in the dashboard's frame (a browser)
        or the one JSON error shape (anyone else)."""
        if not is_page(request) and (request.method == "GET" or "text/html" not in
                                     request.headers.get("accept", "")):
            return JSONResponse({"detail": {"code": exc.code, "message": exc.message}},
                                status_code=exc.status)
        return error_page(pages, request, exc.status, exc.message, exc.lang)

    container.extras["dashboard_pages"] = pages


def is_page(request: Request) -> bool:
    """A dashboard page a browser asked for (not a feed, a partial or a form's answer)."""
    path = request.url.path
    return (request.method == "GET" and (path == "/" or path.startswith("/dash/"))
            and not path.startswith("/dash/api/") and not request.headers.get("hx-request")
            and "text/html" in request.headers.get("accept", ""))


def error_page(pages: Pages, request: Request, status: int, message: str,
               lang: str | None = None) -> Response:
    lang = lang or page_lang(request, pages.settings)
    viewer = viewer_of(request, pages.db) or Viewer("demo")
    return pages.render(request, "dashboard/error.html", viewer, lang, status=status, page="",
                        title=t("dash.refused_title", lang), message=message)


def html_errors(container):
    """For ``bot.web.errors``: a refused dashboard page is shown as a page, with the reason."""

    def page(request: Request, status: int, code: str, message: str) -> Response | None:
        pages = container.extras.get("dashboard_pages")
        if pages is None or status == 401 or not is_page(request):
            return None
        return error_page(pages, request, status, message)

    return page


__all__ = ["install", "html_errors", "NAV", "TEMPLATES", "page_lang"]
