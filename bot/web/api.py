"""REST API under /api (OpenAPI docs at /docs).

A credential is checked by ``bot.web.auth.AuthGate`` before a request reaches here: the team
token (``Authorization: Bearer``, may name any ``actor``) or a console login (acts as that
person only). In the local demo without a token the API is open, as it always was.

Every list (``/api/tasks``, ``/api/campaigns``, ``/api/users``, ``/api/audit``) answers one
page — ``{"items", "next_cursor", "limit"}``, at most 200 items, 50 by default — in id order
with a keyset cursor, and refuses unknown filter values and parameters with 422
(``bot/web/paging.py``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import String, cast, or_
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import ROLES
from bot.core.errors import DomainError
from bot.core.i18n import normalise
from bot.core.users import acting_actor
from bot.web import paging
from bot.web.auth import acting_name, principal_of, refuse, request_lang
from storage.models import AuditEvent, Campaign, Task, User

bearer = HTTPBearer(auto_error=False)
ID_MAX = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


class ActionIn(BaseModel):
    action: str = Field(examples=["claim"])
    actor: str = Field(description="user name, e.g. li.na", examples=["li.na"])
    comment: str | None = None
    event_id: str | None = Field(
        default=None, description="your request id: the same actor sending it again → done "
        "once (the answer says duplicate); reused by that actor for another task or action → "
        "409; other actors' ids never collide with yours")
    version: int | None = Field(default=None, description="refuse if the task has changed")


class ActionOut(BaseModel):
    task_id: int
    action: str
    before: str
    state: str
    version: int
    duplicate: bool


class CampaignOut(BaseModel):
    id: int
    platform: str
    external_id: str
    title: str
    type: str
    registration_start: datetime | None
    registration_end: datetime | None
    event_start: datetime | None
    event_end: datetime | None
    requirements: dict
    source_url: str
    version: int


class UserOut(BaseModel):
    id: int
    name: str
    display_name: str
    roles: list[str]


class AuditOut(BaseModel):
    id: int
    task_id: int | None = None
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    created_at: datetime
    detail: dict


class LineOut(BaseModel):
    sku: str
    list_price: Decimal | None
    promo_price: Decimal | None
    promo_stock: int
    result: str | None
    reason_code: str | None
    reason_text: str | None


class TaskOut(BaseModel):
    id: int
    campaign_id: int
    state: str
    version: int
    claimed_by: str | None
    deadline: datetime | None
    title: str
    platform: str
    skip_reason: str | None = None
    last_error: str | None = None


class TaskDetail(TaskOut):
    campaign: CampaignOut
    declaration_version: int | None = None
    lines: list[LineOut] = []
    history: list[AuditOut] = []


def build_router(container) -> APIRouter:
    db, settings = container.db, container.settings

    async def authorise(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        """The gate has decided already; this only refuses if the router is served without
        it (``creds`` keeps the bearer scheme in the OpenAPI document)."""
        if principal_of(request) is None:
            raise refuse(401, "auth.required", request_lang(request, settings))

    router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(authorise)])

    def task_out(task: Task, campaign: Campaign, claimant: str | None) -> dict:
        return dict(id=task.id, campaign_id=task.campaign_id, state=task.state,
                    version=task.version, claimed_by=claimant, deadline=task.deadline,
                    title=campaign.title, platform=campaign.platform,
                    skip_reason=task.skip_reason, last_error=task.last_error)

    def checked(request: Request, session, **given: str | None):
        """Filter values checked like the dashboard's: an unknown one is a 422 that lists
        the known values (never a 200 with an empty list); ``owner=me`` is a login's own."""
        from bot.web.dash_common import Viewer
        from bot.web.dash_data import parse_filters

        principal = principal_of(request)
        viewer = Viewer("session", principal.name, user_id=principal.user_id) \
            if principal is not None and principal.kind == "session" else None
        return parse_filters(session, {k: v or "" for k, v in given.items()}, viewer,
                             request_lang(request, settings))

    def exists(request: Request, session, model: type, name: str, value: int | None) -> None:
        if value is not None and session.get(model, value) is None:
            raise paging.refuse("api.unknown_id", request_lang(request, settings), name=name,
                                value=value)

    def limit_q() -> Any:
        return Query(paging.DEFAULT_LIMIT,
                     description=f"items per page, 1–{paging.MAX_LIMIT} (more → 422)")

    def cursor_q() -> Any:
        return Query(None, description="the previous page's next_cursor (opaque)")

    def order_q() -> Any:
        return Query("asc", description="by id: asc (oldest first) or desc (newest first)")

    def id_q(what: str) -> Any:
        return Query(None, ge=1, le=ID_MAX, description=f"only this {what}")

    listed = {422: {"description": "an unknown filter value or parameter, a limit outside "
                    f"1–{paging.MAX_LIMIT}, a cursor from another list or filters"}}

    @router.get("/campaigns", response_model=paging.Page[CampaignOut], responses=listed)
    def campaigns(request: Request,
                  platform: str | None = Query(None, description="comma-separated platform "
                                               "codes"),
                  type: str | None = Query(None, description="comma-separated campaign "  # noqa: A002
                                           "types, e.g. 限时折扣"),
                  limit: int = limit_q(), cursor: str | None = cursor_q(),
                  order: str = order_q()) -> dict:
        lang = request_lang(request, settings)
        with db.session() as session:
            wanted = checked(request, session, platform=platform).platform
            types = paging.known(lang, "type", type, sorted(
                session.exec(select(Campaign.type).distinct()))) if type else []
            page = paging.listing(request, "campaigns", ("platform", "type"), lang,
                                  {"platform": wanted, "type": types}, limit, cursor, order)
            where, order_by = page.keyset(Campaign.id)
            query = select(Campaign).where(*where)
            if wanted:
                query = query.where(Campaign.platform.in_(wanted))
            if types:
                query = query.where(Campaign.type.in_(types))
            rows = session.exec(query.order_by(*order_by).limit(page.limit + 1)).all()
            return page.page(list(rows), lambda c: c.id)

    @router.get("/users", response_model=paging.Page[UserOut], responses=listed)
    def users(request: Request,
              role: str | None = Query(None, description="comma-separated role codes: "
                                       "someone holding any of them"),
              active: bool | None = Query(None, description="true: active people only"),
              limit: int = limit_q(), cursor: str | None = cursor_q(),
              order: str = order_q()) -> dict:
        lang = request_lang(request, settings)
        roles_wanted = paging.known(lang, "role", role, list(ROLES))
        page = paging.listing(request, "users", ("role", "active"), lang,
                              {"role": roles_wanted, "active": active}, limit, cursor, order)
        where, order_by = page.keyset(User.id)
        query = select(User).where(*where)
        if roles_wanted:  # a JSON list on both databases: its text holds "code" quoted
            query = query.where(or_(*[cast(User.roles, String).like(f'%"{r}"%')
                                      for r in roles_wanted]))
        if active is not None:
            query = query.where(User.active == active)
        with db.session() as session:
            rows = session.exec(query.order_by(*order_by).limit(page.limit + 1)).all()
            return page.page(list(rows), lambda u: u.id)

    @router.get("/tasks", response_model=paging.Page[TaskOut], responses=listed)
    def tasks(request: Request,
              state: str | None = Query(default=None, description="comma-separated states"),
              platform: str | None = Query(default=None,
                                           description="comma-separated platform codes"),
              owner: str | None = Query(default=None, description="who claimed it: a user "
                                        "name, none (unclaimed) or me (a console login)"),
              campaign_id: int | None = id_q("campaign"),
              limit: int = limit_q(), cursor: str | None = cursor_q(),
              order: str = order_q()) -> dict:
        lang = request_lang(request, settings)
        with db.session() as session:
            wanted = checked(request, session, state=state, platform=platform, owner=owner)
            exists(request, session, Campaign, "campaign_id", campaign_id)
            page = paging.listing(
                request, "tasks", ("state", "platform", "owner", "campaign_id"), lang,
                {"state": wanted.state, "platform": wanted.platform,
                 "owner": wanted.owner_id if wanted.owner_id is not None else wanted.owner,
                 "campaign_id": campaign_id}, limit, cursor, order)
            where, order_by = page.keyset(Task.id)
            query = (select(Task, Campaign, User.name)
                     .join(Campaign, Campaign.id == Task.campaign_id)
                     .join(User, User.id == Task.claimed_by, isouter=True).where(*where))
            if wanted.state:
                query = query.where(Task.state.in_(wanted.state))
            if wanted.platform:
                query = query.where(Campaign.platform.in_(wanted.platform))
            if wanted.owner == "none":
                query = query.where(Task.claimed_by.is_(None))
            elif wanted.owner:
                query = query.where(Task.claimed_by == wanted.owner_id)
            if campaign_id is not None:
                query = query.where(Task.campaign_id == campaign_id)
            rows = session.exec(query.order_by(*order_by).limit(page.limit + 1)).all()
            return page.page(list(rows), lambda r: r[0].id, lambda r: task_out(*r))

    @router.get("/audit", response_model=paging.Page[AuditOut], responses=listed)
    def audit(request: Request, task_id: int | None = id_q("task"),
              actor: str | None = Query(None, description="comma-separated: who acted (a "
                                        "user name or system)"),
              action: str | None = Query(None, description="comma-separated actions, e.g. "
                                         "claim,approve"),
              since: str | None = Query(None, description="ISO 8601, from (inclusive); "
                                        "without an offset in the team's zone"),
              until: str | None = Query(None, description="ISO 8601, until (exclusive)"),
              limit: int = limit_q(), cursor: str | None = cursor_q(),
              order: str = order_q()) -> dict:
        """The audit log: every transition, decision and submission attempt."""
        lang = request_lang(request, settings)
        start = paging.when(lang, "since", since, settings.timezone)
        end = paging.when(lang, "until", until, settings.timezone)
        with db.session() as session:
            exists(request, session, Task, "task_id", task_id)
            actors = paging.known(lang, "actor", actor, sorted(
                session.exec(select(AuditEvent.actor).distinct()))) if actor else []
            actions = paging.known(lang, "action", action, sorted(
                session.exec(select(AuditEvent.action).distinct()))) if action else []
            page = paging.listing(
                request, "audit", ("task_id", "actor", "action", "since", "until"), lang,
                {"task_id": task_id, "actor": actors, "action": actions, "since": start,
                 "until": end}, limit, cursor, order)
            where, order_by = page.keyset(AuditEvent.id)
            query = select(AuditEvent).where(*where)
            if task_id is not None:
                query = query.where(AuditEvent.task_id == task_id)
            if actors:
                query = query.where(AuditEvent.actor.in_(actors))
            if actions:
                query = query.where(AuditEvent.action.in_(actions))
            if start is not None:
                query = query.where(AuditEvent.created_at >= start)
            if end is not None:
                query = query.where(AuditEvent.created_at < end)
            rows = session.exec(query.order_by(*order_by).limit(page.limit + 1)).all()
            return page.page(list(rows), lambda e: e.id)

    @router.get("/tasks/{task_id}", response_model=TaskDetail)
    def task(task_id: int, request: Request) -> dict:
        from bot.declarations.autofill import current

        with db.session() as session:
            row = session.exec(select(Task, Campaign, User.name)
                               .join(Campaign, Campaign.id == Task.campaign_id)
                               .join(User, User.id == Task.claimed_by, isouter=True)
                               .where(Task.id == task_id)).first()
            if row is None:
                raise refuse(404, "err.not_found", request_lang(request, settings),
                             task_id=task_id)
            t, c, n = row
            declaration, lines = current(session, task_id)
            history = session.exec(select(AuditEvent).where(AuditEvent.task_id == task_id)
                                   .order_by(AuditEvent.id)).all()
            return {**task_out(t, c, n), "campaign": c,
                    "declaration_version": declaration.version if declaration else None,
                    "lines": lines, "history": history}

    @router.post("/tasks/{task_id}/actions", response_model=ActionOut,
                 responses={401: {"description": "no or wrong credential"},
                            403: {"description": "role may not, or a login naming someone else"},
                            409: {"description": "state does not allow it, or the "
                                  "event_id was used for another action"}})
    async def act(task_id: int, body: ActionIn, request: Request) -> dict:
        actor = acting_name(request, body.actor, settings)  # logged in: yourself only
        lang_header = request.headers.get("accept-language")
        # async, with the database work in one thread hop (a sync endpoint took three:
        # the dependency, the endpoint and the response's validation)
        return await anyio.to_thread.run_sync(_act, task_id, body, actor, lang_header,
                                              request_lang(request, settings))

    def _act(task_id: int, body: ActionIn, actor: str, lang_header: str | None,
             refusal_lang: str) -> dict:
        found = acting_actor(db, actor)
        if found is None:
            raise refuse(403, "auth.unknown_user", refusal_lang, name=str(actor)[:64])
        lang = normalise(lang_header or found.lang)
        try:
            result = perform(db, ActionRequest(
                task_id=task_id, action=body.action, actor=found, comment=body.comment,
                event_id=f"api:{body.event_id}" if body.event_id else None,
                version=body.version))
        except DomainError as exc:
            raise HTTPException(exc.status, {"code": exc.code, "message": exc.message(lang)}) \
                from None
        return result.__dict__

    return router
