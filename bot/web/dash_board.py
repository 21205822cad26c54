"""The board (``/``): tasks by lifecycle column, filters, search, actions and the export.

An action clicked here is the task card's own button — the same packed ``CallbackData`` —
and goes through ``commands.router.handle_click`` like a click in any chat, so it is refused
the same way (wrong role, someone else's task, an out-of-date card), in the reader's language.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlmodel import select

from bot.core.i18n import t
from bot.core.lifecycle import State
from bot.core.timefmt import local
from bot.web import dash_data as data
from bot.web.auth import acting_name
from bot.web.dash_common import Pages, Viewer, refuse
from bot.web.dash_export import CSV_MEDIA, XLSX_MEDIA, csv_chunks, xlsx_file
from cards.builders import BUTTONS_BY_STATE, button
from commands import Inbound
from commands import router as command_router
from storage.models import User
from storage.types import utcnow

MAX_REASON = 2000  # as many characters as a typed console message


def _params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in data.FILTER_KEYS}


def board_context(session, f: data.Filters, viewer: Viewer, lang: str,
                  now: datetime | None = None) -> dict:
    cols, counts = data.board(session, f, now)
    shown = [r for c in cols for r in c["rows"]]
    buttons = {r.task.id: [button(a, r.task, lang, style) for a, style in
                           BUTTONS_BY_STATE.get(r.task.state, [])] for r in shown}
    return {"columns": cols, "total": counts.total, "buttons": buttons,
            "overdue": counts.overdue, "at_risk": counts.at_risk,
            "platforms": data.platform_names(session, lang),
            "states": {s: t(f"state.{s}", lang) for _, states in data.COLUMNS for s in states},
            "acting": viewer.acting_fields(), "limit": MAX_REASON}


def filter_context(session, f: data.Filters, viewer: Viewer, lang: str) -> dict:
    """What the filter form shows: every value each filter may take, and the current ones."""
    choices = data.choices(session)
    owners = {"me": t("dash.owner.me", lang), "none": t("dash.owner.none", lang)}
    owners.update({u.name: u.display_name for u in session.exec(select(User).order_by(User.id))})
    return {"choices": choices, "owners": owners, "current": f.query(),
            "owner_values": (["me"] if viewer.user_id else []) + ["none", *choices["owner"]],
            "query": urlencode(f.query()), "platforms": data.platform_names(session, lang),
            "states": {s.value: t(f"state.{s.value}", lang) for s in State}}


def build_router(container, pages: Pages) -> APIRouter:
    db = container.db
    router = APIRouter(include_in_schema=False)

    def filters(request: Request, viewer: Viewer, lang: str) -> data.Filters:
        with db.scan() as session:
            return data.parse_filters(session, _params(request), viewer, lang)

    @router.get("/", response_class=HTMLResponse)
    def board_page(request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "board")
        f = filters(request, viewer, lang)
        with db.scan() as session:  # reads only: never SQLite's write lock
            context = {**board_context(session, f, viewer, lang),
                       **filter_context(session, f, viewer, lang)}
        return pages.render(request, "dashboard/board.html", viewer, lang, page="board",
                            title=t("dash.nav.board", lang), form_action="/", **context)

    @router.get("/dash/board/items", response_class=HTMLResponse)
    def board_items(request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "board")
        f = filters(request, viewer, lang)
        with db.scan() as session:
            html = pages.partial("dashboard/board_items.html", lang,
                                 **board_context(session, f, viewer, lang))
        query = urlencode(f.query())
        # the address follows the filter (bookmarkable), without a history entry per refresh
        return HTMLResponse(html, headers={"HX-Replace-Url": "/" + (f"?{query}" if query else "")})

    @router.get("/dash/board/export")
    def board_export(request: Request, format: str = "csv") -> Response:
        viewer, lang = pages.viewer(request, "board")
        if format not in ("csv", "xlsx"):
            raise refuse(422, "dash.bad_format", lang, value=format[:20], allowed="csv, xlsx")
        f = filters(request, viewer, lang)
        stamp = local(utcnow(), fmt="%Y%m%d-%H%M")
        disposition = {"Content-Disposition":
                       f'attachment; filename="promopilot-board-{stamp}.{format}"'}
        if format == "xlsx":
            with db.scan() as session:
                body = xlsx_file(data.each_row(session, f), data.platform_names(session, lang),
                                 lang)
            return Response(body, media_type=XLSX_MEDIA, headers=disposition)

        def chunks() -> Iterator[bytes]:  # read as it is sent: the session lives as long
            with db.scan() as session:
                yield from csv_chunks(data.each_row(session, f),
                                      data.platform_names(session, lang), lang)

        return StreamingResponse(chunks(), media_type=CSV_MEDIA, headers=disposition)

    @router.post("/dash/act", response_class=HTMLResponse)
    async def act(request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "board")
        form = await request.form()
        value = str(form.get("value") or "")
        named = str(form.get("user") or "") or None
        # The reason typed into the prompt (pp.js moves it from htmx's header into the form).
        comment = str(form.get("comment") or "").strip() or None
        if comment is not None and len(comment) > MAX_REASON:
            raise refuse(422, "dash.reason_too_long", lang, limit=MAX_REASON, n=len(comment))
        name = acting_name(request, named, container.settings)
        inbound = Inbound(chat="web", channel_id="dashboard", user_ref=name,
                          event_id=f"dash:{name}:{secrets.token_hex(8)}", lang_hint=lang)
        reply = await asyncio.to_thread(command_router.handle_click, db, inbound, value, comment)
        container.extras.get("kick", lambda: None)()
        html = pages.partial("dashboard/flash.html", lang, ok=reply.ok, text=reply.text)
        return HTMLResponse(html, headers={"HX-Trigger": "pp-refresh"})

    return router

