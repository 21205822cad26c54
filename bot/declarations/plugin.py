"""Plugs the declarations feature (#9) into the app: pre-check guards, rejection learning,
the declaration card, the console edit form and file downloads, the expiry-alert job.

Listed in ``bot.wiring.PLUGINS``; ``install`` is idempotent (guards and listeners are
registered once per process).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy.pool import NullPool
from sqlmodel import Session, select

from bot.core import actions, lifecycle
from bot.core.actors import Actor
from bot.core.errors import DomainError, Invalid
from bot.core.i18n import normalise, t
from bot.core.lifecycle import Outcome
from bot.core.scheduler import threaded
from bot.core.templating import TemplateRefused
from bot.declarations import attach as _attach  # noqa: F401  (registers attach_document)
from bot.declarations import autofill as declarations
from bot.declarations import compliance, doc_alerts, exporters, learning, rules
from bot.declarations.autofill import enqueue_declaration_card
from bot.declarations.card import declaration_card, hints_link  # noqa: F401  (re-exported)
from bot.declarations.links import LINK_DAYS, _sign, link, verify  # noqa: F401  (re-exported)
from cards.declaration import left_out_lines
from storage.db import Database, one_at_a_time
from storage.models import Campaign, Task, User
from storage.queries import latest_declaration

log = logging.getLogger(__name__)



# The signed links live in ``links``, the declaration card in ``card`` (both re-exported here).


def on_draft(session: Session, task: Task, outcome: Outcome, actor: Actor) -> None:
    """After auto-fill, show the declaration card next to the task card."""
    if outcome.action == "draft":
        enqueue_declaration_card(session, task)


# -- action handlers -------------------------------------------------------------------------------------

def override_handler(session: Session, task: Task, req: actions.ActionRequest) -> Outcome:
    """``compliance_override``: a manager/legal waives the current violations, audited."""
    declaration = latest_declaration(session, task.id or 0)
    if declaration is None:
        raise Invalid("err.no_declaration", task_id=task.id)
    found = compliance.errors(compliance.check(session, task, declaration))
    compliance.record_override(session, task, declaration, req.actor, req.comment, found,
                               req.event_id, str(req.payload.get("for") or "submit"))
    return Outcome(task.id or 0, req.action, task.state, task.state, task.version, changed=False)


# -- console: edit form and downloads ---------------------------------------------------------------

# The form's page (bot/declarations/edit_form.html), in the dashboard's stylesheet.
_HTML = Environment(loader=FileSystemLoader(Path(__file__).parent),
                    autoescape=select_autoescape(default=True)).get_template("edit_form.html")


def _principal(request: Request):
    """Who the credential gate (``bot.web.auth``) says is asking; None when nobody."""
    return getattr(request.state, "principal", None)


def _acting(request: Request, named: str | None, lang: str) -> str:
    """A console login edits as itself (the gate refuses a form naming someone else); the
    demo's picker or the team token names the person."""
    principal = _principal(request)
    if principal is not None and principal.kind == "session":
        return principal.name
    if not named:
        raise HTTPException(422, {"code": "auth.name_required",
                                  "message": t("auth.name_required", lang)})
    return named


def _page_lang(request: Request, settings) -> str:
    """``?lang=``, the dashboard's toggle (cookie), the person's own, then the team's."""
    principal = _principal(request)
    chosen = request.query_params.get("lang") or request.cookies.get("pp_lang") or (
        principal.lang if principal is not None and principal.lang else None)
    return normalise(chosen or settings.language)


class LineEditIn(BaseModel):
    """A line edit; ``price``/``stock`` as typed (``"￥1,299"``, ``"２０"``) or JSON numbers,
    read by the one number parser: a value it refuses is a 422 with the reason, never a 500."""

    user: str | None = None  # a console login: yourself (naming someone else is refused)
    sku: str
    price: str | int | float | None = None
    stock: str | int | float | None = None
    remove: bool = False


def build_router(container) -> APIRouter:
    db, settings = container.db, container.settings
    router = APIRouter(prefix="/console", include_in_schema=False)

    def actor_for(session: Session, name: str, lang: str | None = None) -> Actor:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None or not user.active:
            lang = normalise(lang or settings.language)
            raise HTTPException(403, {"code": "auth.unknown_user",
                                      "message": t("auth.unknown_user", lang, name=name[:40])})
        return Actor.of(user)

    def apply_edit(session: Session, task_id: int, actor: Actor, sku: str, changes: dict) -> None:
        task = session.get(Task, task_id)
        if task is None:
            raise HTTPException(404, {"code": "err.not_found", "message": t(
                "err.not_found", actor.lang, task_id=task_id)})
        declarations.edit(session, task, actor, sku, changes)

    def page(task_id: int, user: str, lang: str, message: str = "", request: Request | None = None,
             ok: bool = True) -> str:
        principal = _principal(request) if request is not None else None
        me = ({"name": principal.name, "display": principal.display_name}
              if principal is not None and principal.kind == "session" else None)
        session_data = request.scope.get("session") if request is not None else None
        csrf = (session_data or {}).get("csrf", "") if me else ""
        if not user and request is not None:  # the demo's picker (dashboard and console)
            user = request.cookies.get("pp_as", "")
        with db.session() as session:
            task = session.get(Task, task_id)
            declaration, lines = declarations.current(session, task_id)
            if task is None or declaration is None:
                raise HTTPException(404, {"code": "err.no_declaration", "message": t(
                    "err.no_declaration", lang, task_id=task_id)})
            campaign = session.get(Campaign, task.campaign_id)
            found = compliance.check(session, task, declaration)
            issues = [v.describe(lang) for v in found if v.severity == "error"]
            hints = [v.describe(lang) for v in found if v.severity != "error"]
            fill = declarations.last_fill(session, task_id)
            fill = fill if fill and fill.get("declaration") == declaration.version else None
            left_out = [ln.lstrip("• ") for ln in left_out_lines(fill, lang, groups=50, skus=10)] \
                if fill and fill.get("left_out") else []
            users = session.exec(select(User).where(User.active == True).order_by(User.id)).all()  # noqa: E712
        return _HTML.render(
            lang=lang, title=t("dcard.title", lang, task_id=task_id, version=declaration.version,
                               title=campaign.title if campaign else ""),
            lines=lines, users=users, user=user, issues=issues, message=message, ok=ok,
            bundle=link(task_id, "bundle", settings), excel=t("dcard.excel", lang),
            excel_url=link(task_id, "excel", settings), excel_only=t("dform.excel_only", lang),
            task_id=task_id, me=me, csrf=csrf, acting_as=t("dash.acting_as", lang),
            console=t("dash.nav.console", lang),
            precheck=t("dcard.precheck", lang), save=t("dform.save", lang),
            h_list=t("card.col.list", lang), h_price=t("card.col.promo", lang),
            h_stock=t("card.col.stock", lang), hints=hints, hints_title=t("dform.hints", lang),
            left_out=left_out, left_out_title=t("dcard.left_out", lang, n=(fill or {}).get(
                "left_out", 0), pool=(fill or {}).get("pool", "?"), taken=len(lines)))

    @router.get("/declarations/{task_id}/edit", response_class=HTMLResponse)
    def edit_form(task_id: int, request: Request, user: str = "", exp: int | None = None,
                  sig: str | None = None, msg: str = "") -> str:
        verify(settings, task_id, "edit", exp, sig)
        return page(task_id, user, _page_lang(request, settings), msg, request)

    @router.post("/declarations/{task_id}/edit")
    async def edit_submit(task_id: int, request: Request, user: str = Form(""),
                          exp: int | None = None, sig: str | None = None) -> Response:
        verify(settings, task_id, "edit", exp, sig)
        user = _acting(request, user or None, _page_lang(request, settings))
        form = await request.form()
        skus, prices, stocks = form.getlist("sku"), form.getlist("price"), form.getlist("stock")
        removed = set(form.getlist("remove"))
        lang = normalise(settings.language)
        changed = 0
        try:
            with db.session() as session:
                actor = actor_for(session, user)
                lang = actor.lang
                current = {ln.sku: ln for ln in declarations.current(session, task_id)[1]}
                for sku, price, stock in zip(skus, prices, stocks, strict=False):
                    line = current.get(str(sku))
                    if line is None:
                        continue
                    changes: dict[str, str] = {}
                    if sku in removed:
                        changes["remove"] = "1"
                    else:
                        if str(price).strip() and _differs("price", str(price), line.promo_price):
                            changes["price"] = str(price).strip()
                        if str(stock).strip() and _differs("stock", str(stock), line.promo_stock):
                            changes["stock"] = str(stock).strip()
                    if changes:
                        apply_edit(session, task_id, actor, str(sku), changes)
                        changed += 1
        except DomainError as exc:
            return HTMLResponse(page(task_id, user, lang, exc.message(lang), request, ok=False),
                                status_code=exc.status)
        container.extras.get("kick", lambda: None)()
        params = {**dict(request.query_params), "user": user, "msg": t("dform.saved", lang, n=changed)}
        return RedirectResponse(f"/console/declarations/{task_id}/edit?{urlencode(params)}",
                                status_code=303)

    @router.post("/api/declarations/{task_id}/lines")
    def edit_line(task_id: int, body: LineEditIn, request: Request) -> dict:
        """JSON edit of one line (the console's form posts here too)."""
        changes = {k: v for k, v in (("price", body.price), ("stock", body.stock)) if v is not None}
        if body.remove:
            changes = {"remove": "1"}
        name = _acting(request, body.user, _page_lang(request, settings))
        with db.session() as session:
            actor = actor_for(session, name)
            try:
                apply_edit(session, task_id, actor, body.sku, changes)
            except DomainError as exc:
                raise HTTPException(exc.status, {"code": exc.code, "message": exc.message(actor.lang)}) \
                    from None
        with db.session() as session:
            task = session.get(Task, task_id)
            declaration, lines = declarations.current(session, task_id)
            assert task is not None and declaration is not None
            issues = [v.as_dict(actor.lang) for v in compliance.check(session, task, declaration)]
        container.extras.get("kick", lambda: None)()
        return {"lines": [{"sku": ln.sku, "promo_price": str(ln.promo_price),
                           "promo_stock": ln.promo_stock} for ln in lines], "violations": issues}

    def download(task_id: int, kind: str, lang: str, exp: int | None, sig: str | None) -> Response:
        verify(settings, task_id, kind, exp, sig)
        try:
            with db.session() as session:
                if kind == "excel":
                    name, data = exporters.workbook_bytes(session, task_id, lang)
                    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                else:
                    name, data = exporters.bundle_bytes(session, task_id, lang)
                    media = "application/zip"
        except DomainError as exc:
            raise HTTPException(exc.status, exc.message(lang)) from None
        except TemplateRefused as exc:
            log.error("bulk file template refused", extra={"task_id": task_id, "error": str(exc)[:200]})
            raise HTTPException(500, "column map or template refused; see the logs") from None
        return Response(data, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @router.get("/declarations/{task_id}/excel")
    def excel(task_id: int, lang: str = "zh-CN", exp: int | None = None, sig: str | None = None):
        return download(task_id, "excel", normalise(lang), exp, sig)

    @router.get("/declarations/{task_id}/bundle")
    def bundle(task_id: int, lang: str = "zh-CN", exp: int | None = None, sig: str | None = None):
        return download(task_id, "bundle", normalise(lang), exp, sig)

    return router


def _differs(field: str, raw: str, value: Decimal | int | None) -> bool:
    """Whether a form value changes the line (``２０`` is 20); one it cannot read counts as a
    change, so ``edit`` refuses it with the reason."""
    try:
        return value is None or declarations.typed_value(field, raw) != value
    except DomainError:
        return True


def _short_lived(db: Database) -> Database:
    """A pool-less handle for one start-up write, so no idle connection stays behind."""
    if ":memory:" in db.url:
        return db
    return Database(db.url, poolclass=NullPool)


RULES_SYNC_LOCK = 7_170_719  # PostgreSQL advisory lock (demo seeding: 7_170_718)


def install(container, api) -> None:
    actions.guard("request_approval", "submit")(compliance.precheck)
    actions.handles("compliance_override")(override_handler)
    actions.handles("accept_rule", "dismiss_rule")(learning.handle_decision)
    learning.install()
    lifecycle.on_transition(on_draft)
    sync_db = _short_lived(container.db)
    try:
        # replicas started together: one stores the rules files, the others find them stored
        with one_at_a_time(sync_db, RULES_SYNC_LOCK), sync_db.session() as session:
            stored = rules.sync(session)
        if stored:
            log.info("rules synced", extra={"versions": [f"{r.platform} v{r.version}" for r in stored]})
    except Exception:  # noqa: BLE001 - bad rules file: keep serving with the stored versions
        log.exception("rules sync failed; keeping the stored versions")
    finally:
        if sync_db is not container.db:
            sync_db.dispose()
    container.jobs.append(("document_alerts", threaded(lambda: doc_alerts.run(container.db)), 3600.0))
    if api is not None:
        api.include_router(build_router(container))
