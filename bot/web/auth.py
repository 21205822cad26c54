"""Who is asking: a credential on every request that acts, console login and logout, CSRF.

Three kinds of caller (``Principal.kind``):

- ``token``: ``Authorization: Bearer <PROMOPILOT_API_TOKEN>``, compared in constant time.
  The team's integration credential: it may name any user (``actor`` on ``/api``, ``user``
  on the console API) — whoever holds it can already act as anyone.
- ``session``: a person logged in at ``/console/login`` (Starlette's signed, HttpOnly,
  SameSite=Lax cookie). Acts as that person only: a body or form naming someone else in
  ``user``/``actor`` is refused, and every state-changing request carries the session's CSRF
  token (``X-CSRF-Token`` header from the console's JS, or a ``csrf_token`` form field).
- ``demo``: ``PROMOPILOT_DEMO=true`` and nobody logged in: the open local demo (``make run``),
  where the console's "Acting as" picker names anyone. ``/api`` still wants the token when
  one is set, as it always did.

``AuthGate`` (pure ASGI, so server-sent events stream through untouched) decides before
routing: ``/api``, ``/console``, ``/sandbox`` and the dashboard (``/``, ``/dash``) need a
credential for every method, and so does every other POST/PUT/PATCH/DELETE the app serves,
except the chat webhooks and the RPA callback, which check their own signatures
(``SIGNED_ELSEWHERE``), and the login form.
Default-deny: a route a plugin adds later is covered without anyone remembering to.
Role checks stay in the domain (a refused approval is the domain's refusal, in zh-CN/en).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.core.i18n import normalise, t
from bot.core.settings import ROOT, Settings
from storage.db import Database
from storage.models import User

log = logging.getLogger(__name__)

SESSION_COOKIE = "promopilot_session"
SESSION_MAX_AGE = 12 * 3600  # idle: refreshed by activity at most every REFRESH seconds
REFRESH = 600
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
IDENTITY_FIELDS = ("user", "actor")  # who a body says is acting
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROTECTED_PREFIXES = ("/api", "/console", "/sandbox", "/dash")
PROTECTED_PATHS = frozenset({"/"})  # the dashboard's board (its other pages are under /dash)
# Acting endpoints that verify their own signature and stay as they are.
SIGNED_ELSEWHERE = frozenset({"/slack/events", "/feishu/events", "/submissions/rpa/callback"})
LOGIN_PATH, LOGOUT_PATH = "/console/login", "/console/logout"
# The sandbox marketplace's public notice feed (the watcher reads it like any real feed).
PUBLIC_READS = re.compile(r"^/sandbox/[^/]+/notices(/[^/]+)?$")
MAX_BODY = 2 * 1024 * 1024  # what the gate reads to check a session's CSRF token and identity


@dataclass(frozen=True)
class Principal:
    kind: str  # "token" | "session" | "demo"
    name: str | None = None  # session: the person logged in
    user_id: int | None = None
    display_name: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    lang: str | None = None

    @property
    def may_name_anyone(self) -> bool:
        return self.kind in ("token", "demo")


def principal_of(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def request_lang(request: Request, settings: Settings) -> str:
    principal = principal_of(request)
    if principal is not None and principal.lang:
        return normalise(principal.lang)
    header = request.headers.get("accept-language")
    return normalise(header.split(",")[0] if header else settings.language)


def refuse(status: int, code: str, lang: str, **params: Any) -> HTTPException:
    """An HTTPException carrying ``{"code", "message"}`` like the API's domain errors."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, {"code": code, "message": t(code, lang, **params)},
                         headers=headers)


def acting_name(request: Request, named: str | None, settings: Settings) -> str:
    """Who a console request acts as: the logged-in person, or the name a token/demo caller
    gives. A session naming someone else is refused (the gate refuses it first)."""
    principal = principal_of(request)
    lang = request_lang(request, settings)
    if principal is None:
        raise refuse(401, "auth.required", lang)
    if principal.kind == "session":
        if named and named != principal.name:
            raise refuse(403, "auth.not_you", lang, me=principal.display_name, name=named[:64])
        return principal.name or ""
    if not named:
        raise refuse(422, "auth.name_required", lang)
    return named


def sandbox_writer(settings: Settings):
    """Who may publish on the sandbox feed or register there: the team token (the sandbox
    submitter sends it), the demo, or a logged-in admin (the sandbox plays the marketplace)."""

    def writer(request: Request) -> None:
        principal = principal_of(request)
        lang = request_lang(request, settings)
        if principal is None:
            raise refuse(401, "auth.required", lang)
        if principal.kind == "session" and "admin" not in principal.roles:
            raise refuse(403, "auth.sandbox_admins_only", lang)

    return writer


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use) for pages and forms to send back."""
    session = request.scope.get("session")
    if session is None:
        return ""
    if not session.get("csrf"):
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


# -- the session secret ----------------------------------------------------------------------

def session_secret(settings: Settings, var_dir: Path | None = None) -> str:
    """``PROMOPILOT_SESSION_SECRET``, or one generated once into ``var/session_secret`` (0600).

    Replicas behind one address must share it: set the variable there."""
    if settings.session_secret is not None and settings.session_secret.get_secret_value():
        return settings.session_secret.get_secret_value()
    path = (var_dir or ROOT / "var") / "session_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
        if secret:
            return secret
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    log.info("generated a console session secret", extra={"path": str(path)})
    return path.read_text().strip()


# -- the gate ----------------------------------------------------------------------------------

def needs_credential(method: str, path: str) -> bool:
    if path in SIGNED_ELSEWHERE or path in (LOGIN_PATH, LOGOUT_PATH):
        return False
    if path in PROTECTED_PATHS:
        return True
    if any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES):
        return not (method in SAFE_METHODS and PUBLIC_READS.match(path))
    return method not in SAFE_METHODS


class AuthGate:
    """Resolves the caller, puts it on ``request.state.principal``, refuses what needs a
    credential and has none, and checks a session's CSRF token and identity fields."""

    def __init__(self, app: ASGIApp, settings: Settings, db: Database) -> None:
        self.app, self.settings, self.db = app, settings, db
        token = settings.api_token.get_secret_value() if settings.api_token else ""
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        method, path = scope["method"], scope["path"]
        bearer_given, principal = await self._resolve(request, path)
        scope.setdefault("state", {})["principal"] = principal
        if not needs_credential(method, path):
            await self.app(scope, receive, send)
            return
        lang = request_lang(request, self.settings)
        if principal is None:
            wants_page = method in SAFE_METHODS and "text/html" in request.headers.get("accept", "")
            if wants_page and not bearer_given:
                target = path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
                await RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}",
                                       status_code=303)(scope, receive, send)
                return
            code = "auth.bad_token" if bearer_given else "auth.required"
            await _json(401, code, lang, headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send)
            return
        if principal.kind != "session" or method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _json(413, "auth.too_large", lang)(scope, receive, send)
            return
        replay = _replay(body, receive)
        fields = await _fields(scope, body)
        sent = request.headers.get(CSRF_HEADER) or _first(fields.get(CSRF_FIELD))
        expected = scope["session"].get("csrf") or ""
        if not expected or not sent or not secrets.compare_digest(sent.encode(), expected.encode()):
            log.warning("console request refused: CSRF token missing or wrong",
                        extra={"path": path, "user": principal.name})
            await _json(403, "auth.csrf", lang)(scope, replay, send)
            return
        query = parse_qs(scope["query_string"].decode(errors="replace"))
        for key in IDENTITY_FIELDS:
            for named in [*fields.get(key, []), *query.get(key, [])]:
                if isinstance(named, str) and named and named != principal.name:
                    await _json(403, "auth.not_you", lang, me=principal.display_name,
                                name=named[:64])(scope, replay, send)
                    return
        await self.app(scope, replay, send)

    async def _resolve(self, request: Request, path: str) -> tuple[bool, Principal | None]:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        bearer_given = scheme.lower() == "bearer" and bool(value.strip())
        demo_here = self.settings.demo and not (
            self.token is not None and (path == "/api" or path.startswith("/api/")))
        if bearer_given and (self.token is not None or not demo_here):
            if self.token is not None and secrets.compare_digest(value.strip().encode(),
                                                                 self.token):
                return True, Principal("token")
            return True, None  # a wrong token is refused, never topped up by a cookie
        person = await self._from_session(request.scope.get("session"))
        if person is not None:
            return False, person
        return False, Principal("demo") if demo_here else None

    async def _from_session(self, session: dict | None) -> Principal | None:
        if not session or not session.get("uid"):
            return None
        found = await asyncio.to_thread(self._load, int(session["uid"]), str(session.get("fp")))
        if found is None:
            session.clear()  # password changed, person deactivated or removed: log out
            return None
        if session.get("seen") != int(time.time()) // REFRESH:
            session["seen"] = int(time.time()) // REFRESH  # re-signs the cookie: idle expiry
        return found

    def _load(self, user_id: int, fp: str) -> Principal | None:
        from bot.core.passwords import current_fingerprint

        with self.db.read() as s:
            user = s.get(User, user_id)
            if user is None or not user.active:
                return None
            current = current_fingerprint(s, user_id)
            if current is None or not secrets.compare_digest(current, fp):
                return None
            return Principal("session", name=user.name, user_id=user.id,
                             display_name=user.display_name, roles=frozenset(user.roles or ()),
                             lang=user.lang)


def _json(status: int, code: str, lang: str, headers: dict | None = None,
          **params: Any) -> JSONResponse:
    return JSONResponse({"detail": {"code": code, "message": t(code, lang, **params)}},
                        status_code=status, headers=headers)


def _first(values: list | None) -> str | None:
    return values[0] if values and isinstance(values[0], str) else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    done = False

    async def again() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _fields(scope: Scope, body: bytes) -> dict[str, list]:
    """The body's fields as ``{name: [values]}`` (JSON object, urlencoded or multipart)."""
    kind = Request(scope).headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return {}
        return {k: [v] for k, v in data.items()} if isinstance(data, dict) else {}
    if kind == "application/x-www-form-urlencoded":
        return parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    if kind == "multipart/form-data":
        form = await Request(scope, _replay(body, _nothing)).form()
        try:
            return {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
        finally:
            await form.close()
    return {}


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def install(app: Any, settings: Settings, db: Database) -> None:
    """The gate inside the session middleware (which must run first to read the cookie)."""
    app.add_middleware(AuthGate, settings=settings, db=db)
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE, same_site="lax",
                       https_only=settings.base_url.startswith("https://"))
    if settings.demo:
        log.warning("demo mode: the console, the API (unless PROMOPILOT_API_TOKEN is set) and "
                    "the sandbox act for anyone who can reach the port",
                    extra={"host": settings.host})
