"""The built-in web console: a group chat with channels and cards.

It is a chat platform like any other: words and clicks go through ``commands.router``.
Outside the local demo a person logs in (``bot.web.auth``) and acts as themselves only; in
the demo (``PROMOPILOT_DEMO=true``) an "Acting as" picker names anyone.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import select

from bot.core.i18n import t
from bot.web.auth import acting_name, csrf_token, principal_of, request_lang
from cards.model import Card
from cards.render_html import render_html
from commands import Inbound
from commands import router as command_router
from storage.models import ChatBinding, ChatMessage, User

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
        with db.session() as session:
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
        with db.session() as session:
            user = session.exec(select(User).where(User.name == name)).first()
        if user is None or not user.active:
            message = t("auth.unknown_user", request_lang(request, settings), name=name[:64])
            raise HTTPException(404, {"code": "auth.unknown_user", "message": message})
        return user

    def store(channel: str, author: str, text: str, visible_to: int | None = None,
              card: Card | None = None) -> None:
        with db.session() as session:
            session.add(ChatMessage(chat="web", channel_id=channel, author=author, text=text,
                                    visible_to=visible_to,
                                    card=card.model_dump(mode="json") if card else None))
        hub.publish(channel)

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
        return TEMPLATES.get_template("console.html").render(
            channels=channels(), picker=picker, me=me, csrf=csrf_token(request) if me else "",
            users=[{"name": u.name, "display": u.display_name, "roles": u.roles} for u in users],
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

    @router.post("/api/say")
    def say(body: SayIn, request: Request) -> dict:
        user = acting(request, body.user)
        text = body.text.strip()[:2000]
        if not text:
            raise HTTPException(422, "empty message")
        store(body.channel, user.display_name, text)
        reply = command_router.handle_text(
            db, Inbound(chat="web", channel_id=body.channel, user_ref=user.name,
                        event_id=f"web:say:{secrets.token_hex(8)}"), text)
        store(body.channel, "PromoPilot", reply.text, None if not reply.private else user.id,
              reply.card)
        kick()
        return {"ok": reply.ok, "text": reply.text}

    @router.post("/api/click")
    def click(body: ClickIn, request: Request) -> dict:
        user = acting(request, body.user)
        event_id = f"web:click:{body.event_id or secrets.token_hex(8)}"
        reply = command_router.handle_click(
            db, Inbound(chat="web", channel_id=body.channel, user_ref=user.name,
                        event_id=event_id), body.value, body.comment)
        if not reply.ok:
            store(body.channel, "PromoPilot", reply.text, user.id)
        kick()
        return {"ok": reply.ok, "text": reply.text}

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
