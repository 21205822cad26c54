"""REST API under /api (OpenAPI docs at /docs).

A credential is checked by ``bot.web.auth.AuthGate`` before a request reaches here: the team
token (``Authorization: Bearer``, may name any ``actor``) or a console login (acts as that
person only). In the local demo without a token the API is open, as it always was.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.errors import DomainError
from bot.core.i18n import normalise
from bot.core.users import by_name
from bot.web.auth import acting_name, principal_of, refuse, request_lang
from storage.models import AuditEvent, Campaign, Task, User

bearer = HTTPBearer(auto_error=False)


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

    def authorise(request: Request,
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
        the known values (never a 200 with an empty list)."""
        from bot.web.dash_data import parse_filters

        return parse_filters(session, {k: v or "" for k, v in given.items()}, None,
                             request_lang(request, settings))

    @router.get("/campaigns", response_model=list[CampaignOut],
                responses={422: {"description": "an unknown platform"}})
    def campaigns(request: Request, platform: str | None = Query(
            default=None, description="comma-separated platform codes")) -> list[Campaign]:
        with db.session() as session:
            wanted = checked(request, session, platform=platform).platform
            query = select(Campaign).order_by(Campaign.registration_end, Campaign.id)
            if wanted:
                query = query.where(Campaign.platform.in_(wanted))
            return list(session.exec(query))

    @router.get("/users", response_model=list[UserOut])
    def users() -> list[User]:
        with db.session() as session:
            return list(session.exec(select(User).order_by(User.id)))

    @router.get("/tasks", response_model=list[TaskOut],
                responses={422: {"description": "an unknown state or platform"}})
    def tasks(request: Request,
              state: str | None = Query(default=None, description="comma-separated states"),
              platform: str | None = Query(default=None,
                                           description="comma-separated platform codes")
              ) -> list[dict]:
        with db.session() as session:
            wanted = checked(request, session, state=state, platform=platform)
            query = (select(Task, Campaign, User.name)
                     .join(Campaign, Campaign.id == Task.campaign_id)
                     .join(User, User.id == Task.claimed_by, isouter=True)
                     .order_by(Task.deadline, Task.id))
            if wanted.state:
                query = query.where(Task.state.in_(wanted.state))
            if wanted.platform:
                query = query.where(Campaign.platform.in_(wanted.platform))
            return [task_out(t, c, n) for t, c, n in session.exec(query)]

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
    def act(task_id: int, body: ActionIn, request: Request) -> dict:
        actor = acting_name(request, body.actor, settings)  # logged in: yourself only
        with db.read() as session:
            user = by_name(session, actor)
        if user is None or not user.active:
            raise refuse(403, "auth.unknown_user", request_lang(request, settings),
                         name=str(actor)[:64])
        lang = normalise(request.headers.get("accept-language") or user.lang)
        try:
            result = perform(db, ActionRequest(
                task_id=task_id, action=body.action, actor=Actor.of(user), comment=body.comment,
                event_id=f"api:{body.event_id}" if body.event_id else None,
                version=body.version))
        except DomainError as exc:
            raise HTTPException(exc.status, {"code": exc.code, "message": exc.message(lang)}) \
                from None
        return result.__dict__

    return router
