"""What every dashboard page shares: who is looking, in which language, what they may see.

- **Who** (``Viewer``): a console login is that person; in the local demo the person picked
  in the header (cookie ``pp_as``, the same person the console's "Acting as" picker holds);
  a caller with the team token names one with ``?as=`` or is shown everything.
- **Language**: the toggle's cookie ``pp_lang``, else the browser's ``Accept-Language``
  (its preferred language among zh-CN and en, by q-value), else the person's own language,
  else ``PROMOPILOT_LANGUAGE``.
- **What they may see** (``ACCESS``): board, calendar and task pages for everyone; charts
  for admins, managers and finance; settings for admins and managers, edited by admins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import select

from bot.core.actors import ROLES
from bot.core.i18n import normalise, t
from bot.core.timefmt import local
from bot.web.auth import csrf_token, principal_of
from storage.models import User

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LANG_COOKIE, AS_COOKIE = "pp_lang", "pp_as"
ASSET_VERSION = "1"  # bump when a static file changes, so browsers fetch it again
EVERYONE: frozenset[str] = frozenset()
ACCESS: dict[str, frozenset[str]] = {
    "board": EVERYONE, "calendar": EVERYONE, "task": EVERYONE,
    "charts": frozenset({"admin", "manager", "finance"}),
    "settings": frozenset({"admin", "manager"}),
    "settings_edit": frozenset({"admin"}),
}
NAV = ("board", "calendar", "charts", "settings")


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(
        default=True, default_for_string=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = lambda dt, fmt="%Y-%m-%d %H:%M": local(dt, fmt=fmt) if dt else "—"
    return env


TEMPLATES = _env()


def accept_language(header: str | None) -> str | None:
    """The browser's preferred language among ours (``en-GB,en;q=0.9,zh;q=0.8`` → en)."""
    best: tuple[float, int, str] | None = None
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0 or not (tag.startswith("zh") or tag.startswith("en")):
            continue
        if best is None or (q, -index) > (best[0], best[1]):
            best = (q, -index, "en" if tag.startswith("en") else "zh-CN")
    return best[2] if best else None


def page_lang(request: Request, settings: Any) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in ("en", "zh-CN"):
        return chosen
    browser = accept_language(request.headers.get("accept-language"))
    if browser:
        return browser
    principal = principal_of(request)
    if principal is not None and principal.lang:
        return normalise(principal.lang)
    return normalise(settings.language)


@dataclass(frozen=True)
class Viewer:
    kind: str  # session | demo | token
    name: str | None = None  # None: a token caller naming nobody
    display: str = ""
    user_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def may_pick(self) -> bool:
        """Demo and token callers choose who they look and act as; a login is itself."""
        return self.kind in ("demo", "token")

    def may(self, what: str) -> bool:
        wanted = ACCESS[what]
        return not wanted or bool(self.roles & wanted)

    def acting_fields(self) -> dict[str, str]:
        """What a form or htmx request sends to act: the picked person (a login sends
        nothing: the gate knows who is logged in and refuses any other name)."""
        return {"user": self.name} if self.may_pick and self.name else {}


def viewer_of(request: Request, db: Any) -> Viewer | None:
    principal = principal_of(request)
    if principal is None:
        return None
    if principal.kind == "session":
        return Viewer("session", principal.name, principal.display_name, principal.user_id,
                      frozenset(principal.roles))
    wanted = request.query_params.get("as") or request.cookies.get(AS_COOKIE)
    with db.session() as session:
        people = session.exec(select(User).where(User.active == True)  # noqa: E712
                              .order_by(User.id)).all()
    chosen = next((u for u in people if wanted and u.name == wanted), None)
    if chosen is None and principal.kind == "demo" and people:
        chosen = people[0]  # like the console's picker: the first person until one is picked
    if chosen is None:
        return Viewer(principal.kind, roles=frozenset(ROLES))  # the token: it may do anything
    return Viewer(principal.kind, chosen.name, chosen.display_name, chosen.id,
                  frozenset(chosen.roles or ()))


def refuse(status: int, code: str, lang: str, **params: Any) -> HTTPException:
    return HTTPException(status, {"code": code, "message": t(code, lang, **params)})


def people(db: Any) -> list[dict]:
    with db.session() as session:
        rows = session.exec(select(User).where(User.active == True)  # noqa: E712
                            .order_by(User.id)).all()
    return [{"name": u.name, "display": u.display_name, "roles": list(u.roles or [])}
            for u in rows]


class Pages:
    """Renders a dashboard page with what every page needs (header, language, who)."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.db, self.settings = container.db, container.settings

    def lang(self, request: Request) -> str:
        return page_lang(request, self.settings)

    def viewer(self, request: Request, what: str) -> tuple[Viewer, str]:
        """Who is looking and in which language; a page they may not see is a 403 page."""
        lang = self.lang(request)
        viewer = viewer_of(request, self.db)
        if viewer is None:
            raise refuse(401, "auth.required", lang)
        if not viewer.may(what):
            raise Refused(403, "dash.forbidden", lang, page=t(f"dash.nav.{what}", lang))
        return viewer, lang

    def render(self, request: Request, template: str, viewer: Viewer, lang: str,
               status: int = 200, **context: Any) -> HTMLResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = TEMPLATES.get_template(template).render(
            lang=lang, t=lambda key, **kw: t(key, lang, **kw), viewer=viewer,
            nav=[n for n in NAV if viewer.may(n)], csrf=csrf_token(request)
            if viewer.kind == "session" else "", people=people(self.db) if viewer.may_pick
            else [], other_lang="en" if lang == "zh-CN" else "zh-CN", here=quote(here, safe=""),
            asset=ASSET_VERSION, demo=self.settings.demo, **context)
        return HTMLResponse(html, status_code=status)

    def partial(self, template: str, lang: str, **context: Any) -> str:
        return TEMPLATES.get_template(template).render(
            lang=lang, t=lambda key, **kw: t(key, lang, **kw), **context)


class Refused(Exception):
    """A page the viewer may not see (or asked wrongly): shown as an HTML page in the
    dashboard's frame with the reason, not as JSON."""

    def __init__(self, status: int, code: str, lang: str, **params: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.lang, self.params = status, code, lang, params

    @property
    def message(self) -> str:
        return t(self.code, self.lang, **self.params)
