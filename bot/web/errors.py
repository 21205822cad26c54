"""One error body everywhere: ``{"detail": {"code": "…", "message": "…"}}``.

``detail`` because it is what FastAPI already answers and what the credential checks, the
domain refusals and every client (the console's JS, the tests, integrations) read; the
inside is always an object with a stable ``code`` and a ``message`` in the caller's language
(zh-CN or en). Converted here: an ``HTTPException`` raised with a plain string, a request
that fails validation (422, with the fields in ``errors``), an unknown path or method
(404/405), and any unexpected exception (500, with a reference that is in the log).
A page a browser asks for may be answered as a page instead (``html``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.core.i18n import t
from bot.web.auth import request_lang

log = logging.getLogger(__name__)
GENERIC = {400: "weberr.400", 401: "auth.required", 403: "weberr.403", 404: "weberr.404",
           405: "weberr.405", 409: "weberr.409", 410: "weberr.410", 413: "weberr.413",
           422: "weberr.422", 429: "weberr.429"}
HtmlPage = Callable[[Request, int, str, str], Response | None]


def body(code: str, message: str, **extra: object) -> dict:
    return {"detail": {"code": code, "message": message, **extra}}


def install(app: FastAPI, settings, html: HtmlPage | None = None) -> None:
    def lang(request: Request) -> str:
        return request_lang(request, settings)

    def answer(request: Request, status: int, code: str, message: str,
               headers: dict | None = None, **extra: object) -> Response:
        if html is not None:
            page = html(request, status, code, message)
            if page is not None:
                return page
        return JSONResponse(body(code, message, **extra), status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail
        if isinstance(detail, dict) and "code" in detail:
            code = str(detail["code"])
            message = str(detail.get("message") or t(code, lang(request)))
            extra = {k: v for k, v in detail.items() if k not in ("code", "message")}
        else:
            code = GENERIC.get(exc.status_code, f"weberr.{exc.status_code}")
            generic = t(code, lang(request)) if code in GENERIC.values() else ""
            given = str(detail) if detail and detail != _phrase(exc.status_code) else ""
            message, extra = given or generic or str(detail), {}
        return answer(request, exc.status_code, code, message,
                      headers=getattr(exc, "headers", None), **extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                   "problem": str(e.get("msg", ""))[:200]} for e in exc.errors()][:20]
        fields = ", ".join(e["field"] for e in errors if e["field"]) or "-"
        return answer(request, 422, "weberr.invalid_request",
                      t("weberr.invalid_request", lang(request), fields=fields), errors=errors)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(4)
        log.error("request failed", exc_info=exc,
                  extra={"ref": ref, "path": request.url.path, "method": request.method})
        return JSONResponse(body("weberr.500", t("weberr.500", lang(request), ref=ref), ref=ref),
                            status_code=500)


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
