"""Console login and logout: the form, argon2 password check, a fresh session per login.

The session cookie is Starlette's (signed, HttpOnly, SameSite=Lax; set up in
``bot.web.auth.install``); it holds the person's id, a fingerprint of their password hash (a
changed password ends the session) and the CSRF token the console's JS sends back. Failed
logins are throttled per name and per client in this process.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.core.i18n import normalise, t
from bot.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_PATH,
    REFRESH,
    csrf_token,
    principal_of,
    refuse,
    request_lang,
)

log = logging.getLogger(__name__)
LOGIN_WINDOW, LOGIN_MAX_PER_NAME, LOGIN_MAX_PER_CLIENT = 300.0, 5, 20


class Throttle:
    """Failed logins per name and per client in a sliding window (in this process)."""

    def __init__(self) -> None:
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.setdefault(key, deque())
        while times and times[0] < now - LOGIN_WINDOW:
            times.popleft()
        return times

    def blocked(self, name: str, client: str) -> bool:
        now = time.monotonic()
        return (len(self._recent(f"u:{name}", now)) >= LOGIN_MAX_PER_NAME
                or len(self._recent(f"c:{client}", now)) >= LOGIN_MAX_PER_CLIENT)

    def failed(self, name: str, client: str) -> None:
        now = time.monotonic()
        if len(self.failures) > 10_000:
            self.failures.clear()
        self._recent(f"u:{name}", now).append(now)
        self._recent(f"c:{client}", now).append(now)

    def succeeded(self, name: str) -> None:
        self.failures.pop(f"u:{name}", None)


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://…``) to go back to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/console"
    return target


def build_router(container, templates) -> APIRouter:
    db, settings = container.db, container.settings
    router = APIRouter(prefix="/console", include_in_schema=False)
    throttle = Throttle()
    container.extras["login_throttle"] = throttle

    def login_page(request: Request, lang: str, next_url: str, message: str = "",
                   name: str = "", status: int = 200, info: bool = False) -> HTMLResponse:
        return HTMLResponse(templates.get_template("login.html").render(
            lang=lang, t=lambda key, **kw: t(key, lang, **kw), csrf=csrf_token(request),
            next=next_url, message=message, info=info, name=name), status_code=status)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/console", lang: str | None = None):
        person = principal_of(request)
        if person is not None and person.kind == "session":
            return RedirectResponse(safe_next(next), status_code=303)
        chosen = lang or request.cookies.get("pp_lang")  # ?lang=, or the dashboard's toggle
        lang = normalise(chosen) if chosen else request_lang(request, settings)
        bye = t("auth.logged_out", lang) if request.query_params.get("bye") else ""
        return login_page(request, lang, safe_next(next), bye, info=True)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        from bot.core import passwords

        form = await request.form()
        name = str(form.get("username") or "").strip()[:64]
        password = str(form.get("password") or "")
        next_url = safe_next(str(form.get("next") or ""))
        lang = request_lang(request, settings)
        expected = request.session.get("csrf") or ""
        sent = str(form.get(CSRF_FIELD) or "")
        if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
            return login_page(request, lang, next_url, t("auth.csrf", lang), name, 403)
        client = request.client.host if request.client else "-"
        if throttle.blocked(name, client):
            log.warning("login refused: too many failures", extra={"user": name, "client": client})
            return login_page(request, lang, next_url,
                              t("auth.too_many_attempts", lang, minutes=int(LOGIN_WINDOW // 60)),
                              name, 429)

        def check():
            with db.session() as s:
                found = passwords.check(s, name, password)
                return (found[0].id, found[0].name, found[0].lang, found[1]) if found else None

        found = await asyncio.to_thread(check)
        if found is None:
            throttle.failed(name, client)
            log.warning("login failed", extra={"user": name, "client": client})
            return login_page(request, lang, next_url, t("auth.login_failed", lang), name, 401)
        throttle.succeeded(name)
        user_id, user_name, user_lang, fp = found
        request.session.clear()  # a fresh session and CSRF token at every login
        request.session.update(uid=user_id, fp=fp, csrf=secrets.token_urlsafe(32),
                               seen=int(time.time()) // REFRESH)
        log.info("login", extra={"user": user_name, "client": client})
        return RedirectResponse(next_url, status_code=303)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        person = principal_of(request)
        lang = request_lang(request, settings)
        if person is None or person.kind != "session":
            request.session.clear()
            return RedirectResponse(LOGIN_PATH, status_code=303)
        form = await request.form()
        sent = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD) or "")
        expected = request.session.get("csrf") or ""
        if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
            raise refuse(403, "auth.csrf", lang)
        request.session.clear()
        log.info("logout", extra={"user": person.name})
        return RedirectResponse(f"{LOGIN_PATH}?lang={lang}&bye=1", status_code=303)

    return router
