"""The built-in web console: a group chat with channels and cards.

It is a chat platform like any other: words and clicks go through ``commands.router``.
Each one is stored in the inbox before the request is answered (``bot.core.inbox``) and
processed from there: the answer comes back in the response when it is ready within a couple
of seconds, else the response says "working on it" and the answer appears in the channel.
Outside the local demo a person logs in (``bot.web.auth``) and acts as themselves only; in
the demo (``PROMOPILOT_DEMO=true``) an "Acting as" picker names anyone.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import select

from bot.core.i18n import t
from bot.core.inbox import inbox_of
from bot.web.auth import acting_name, csrf_token, principal_of, request_lang
from bot.web.dash_common import page_lang
from cards.model import Card
from cards.render_html import render_html
from commands import Inbound
from commands import router as command_router
from storage.models import ChatBinding, ChatMessage, InboxEvent, User

ANSWER_WITHIN = 2.5  # seconds a request waits for its answer before "working on it"
MAX_TEXT = 2000  # characters of a typed message or a reason (said on the page, refused above)
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True))


class SayIn(BaseModel):
    channel: str
    user: str | None = None  # logged in: you (naming someone else is refused); token/demo: who
    text: str


class ClickIn(BaseModel):
    channel: str
    user: str | None = None
    value: str
    comment: str | None = None
    event_id: str | None = None


def build_router(container) -> APIRouter:
    db, hub, settings = container.db, container.extras["hub"], container.settings
    router = APIRouter(prefix="/console", include_in_schema=False)

    def kick() -> None:
        container.extras["kick"]()

    def channels() -> list[dict]:
        with db.read() as session:
            rows = session.exec(select(ChatBinding).where(ChatBinding.chat == "web")
                                .order_by(ChatBinding.id)).all()
        seen: dict[str, dict] = {}
        for b in rows:
            entry = seen.setdefault(b.channel_id, {"id": b.channel_id,
                                                   "name": b.channel_name or b.channel_id,
                                                   "platforms": [], "purposes": []})
            if b.platform not in entry["platforms"]:
                entry["platforms"].append(b.platform)
            if b.purpose not in entry["purposes"]:
                entry["purposes"].append(b.purpose)
        return list(seen.values())

    def acting(request: Request, named: str | None) -> User:
        name = acting_name(request, named, settings)
        with db.read() as session:
            user = session.exec(select(User).where(User.name == name)).first()
        if user is None or not user.active:
            message = t("auth.unknown_user", request_lang(request, settings), name=name[:64])
            raise HTTPException(404, {"code": "auth.unknown_user", "message": message})
        return user

    def store(channel: str, author: str, text: str, visible_to: int | None = None,
              card: Card | None = None, key: str = "") -> None:
        with db.session() as session:
            if key and session.exec(select(ChatMessage.id).where(
                    ChatMessage.post_key == key)).first():
                return  # said already (the event is being finished after a restart)
            session.add(ChatMessage(chat="web", channel_id=channel, author=author, text=text,
                                    visible_to=visible_to, post_key=key,
                                    card=card.model_dump(mode="json") if card else None))
        hub.publish(channel)

    def process(event: InboxEvent, inline: object) -> dict:
        """Inbox handler: the work of a stored console message or click."""
        p = event.payload
        channel, name = str(p["channel"]), str(p["user"])
        inbound = Inbound(chat="web", channel_id=channel, user_ref=name, event_id=event.key)
        with db.session() as session:
            user = session.exec(select(User).where(User.name == name)).first()
        user_id = user.id if user else None
        answer = f"in:{event.id}"
        if event.kind == "say":
            reply = command_router.handle_text(db, inbound, str(p["text"]))
            store(channel, "PromoPilot", reply.text, user_id if reply.private else None,
                  reply.card, key=answer)
        else:
            reply = command_router.handle_click(db, inbound, str(p["value"]), p.get("comment"))
            if not reply.ok:
                store(channel, "PromoPilot", reply.text, user_id, key=answer)
        kick()
        return {"ok": reply.ok, "text": reply.text}

    inbox = inbox_of(container)
    inbox.register("web", process)

    def answer(request: Request, key: str, event_id: int | None) -> dict:
        result = inbox.call(event_id, ANSWER_WITHIN) if event_id is not None else None
        if result is None and event_id is None:  # sent again: what the first one answered
            first = inbox.find(key)
            result = first.result if first is not None and first.status == "done" else None
        if result is None:
            return {"ok": True, "pending": True,
                    "text": t("inbox.working", request_lang(request, settings))}
        return result

    @router.get("", response_class=HTMLResponse)
    def page(request: Request) -> str:
        person = principal_of(request)
        picker = person is not None and person.may_name_anyone
        with db.session() as session:
            users = session.exec(select(User).where(User.active == True)  # noqa: E712
                                 .order_by(User.id)).all() if picker else []
        me = None
        if person is not None and person.kind == "session":
            me = {"name": person.name, "display": person.display_name,
                  "roles": sorted(person.roles)}
        lang = page_lang(request, settings)  # the dashboard's: its toggle, else the browser
        return TEMPLATES.get_template("console.html").render(
            channels=channels(), picker=picker, me=me, csrf=csrf_token(request) if me else "",
            users=[{"name": u.name, "display": u.display_name, "roles": u.roles} for u in users],
            lang=lang, t=lambda key, **kw: t(key, lang, **kw), limit=MAX_TEXT,
            settings_link=me is None or bool({"admin", "manager"} & set(me["roles"])),
            here=quote(request.url.path + (f"?{request.url.query}" if request.url.query
                                           else ""), safe=""),
        )

    @router.get("/api/channels")
    def list_channels() -> list[dict]:
        return channels()

    @router.get("/api/channels/{channel}/messages")
    def messages(channel: str, request: Request, user: str | None = None,
                 after: int = 0) -> dict:
        viewer = acting(request, user)
        with db.session() as session:
            rows = session.exec(
                select(ChatMessage).where(
                    ChatMessage.chat == "web", ChatMessage.channel_id == channel,
                    or_(ChatMessage.visible_to.is_(None), ChatMessage.visible_to == viewer.id),
                ).order_by(ChatMessage.id.desc()).limit(200)
            ).all()
        out = []
        for m in reversed(rows):
            if m.card_key and not m.card:
                continue  # reserved, not posted yet
            out.append({
                "id": m.id, "author": "PromoPilot" if m.author == "bot" else m.author,
                "text": m.text, "private": m.visible_to is not None,
                "revision": m.revision, "card_key": m.card_key,
                "html": render_html(Card.model_validate(m.card)) if m.card else None,
                "at": m.created_at.isoformat(),
            })
        return {"channel": channel, "messages": out}

    def known_channel(request: Request, channel: str) -> None:
        """Posting names a channel that exists (a binding of the web chat): a typo or a
        stale page never makes a new one."""
        if channel not in {c["id"] for c in channels()}:
            lang = request_lang(request, settings)
            raise HTTPException(404, {"code": "console.unknown_channel", "message": t(
                "console.unknown_channel", lang, channel=channel[:64])})

    def within_limit(request: Request, what: str, text: str | None) -> None:
        """Over the limit is refused with the limit said, never cut without a word."""
        if text is not None and len(text) > MAX_TEXT:
            lang = request_lang(request, settings)
            raise HTTPException(422, {"code": f"console.{what}_too_long", "message": t(
                f"console.{what}_too_long", lang, limit=MAX_TEXT, n=len(text))})

    @router.post("/api/say")
    def say(body: SayIn, request: Request) -> dict:
        user = acting(request, body.user)
        known_channel(request, body.channel)
        text = body.text.strip()
        within_limit(request, "text", text)
        if not text:
            lang = request_lang(request, settings)
            raise HTTPException(422, {"code": "console.empty", "message": t("console.empty",
                                                                             lang)})
        key = f"web:say:{secrets.token_hex(8)}"
        said = ChatMessage(chat="web", channel_id=body.channel, author=user.display_name,
                           text=text)
        event_id = inbox.accept(key, "web", "say", {"channel": body.channel,
                                                    "user": user.name, "text": text},
                                also=lambda session: session.add(said))
        hub.publish(body.channel)
        return answer(request, key, event_id)

    @router.post("/api/click")
    def click(body: ClickIn, request: Request) -> dict:
        user = acting(request, body.user)
        known_channel(request, body.channel)
        within_limit(request, "reason", body.comment)
        # Keyed by who clicked: another person's identical event id is their own click.
        key = f"web:click:{user.name}:{body.event_id or secrets.token_hex(8)}"
        event_id = inbox.accept(key, "web", "click", {
            "channel": body.channel, "user": user.name, "value": body.value,
            "comment": body.comment})
        return answer(request, key, event_id)

    @router.get("/events")
    async def events(request: Request) -> StreamingResponse:
        queue = hub.subscribe()

        async def stream():
            try:
                yield "retry: 2000\n\n"
                while not await request.is_disconnected():
                    try:
                        channel = await asyncio.wait_for(queue.get(), timeout=15)
                        yield f"data: {json.dumps({'channel': channel})}\n\n"
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return router
