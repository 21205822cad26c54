"""Settings (``/dash/settings``, admins and managers): channel bindings, people and roles,
the approval policy and the rules files. Admins edit bindings and roles here
(``settings_edit``); the policy and rules files are shown as they are."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from bot.core.actors import ROLES
from bot.core.i18n import t
from bot.web import dash_settings_edit as edit
from bot.web.auth import acting_name, principal_of
from bot.web.dash_common import ACCESS, Pages, Refused, Viewer
from commands.admin import CHATS
from storage.models import ChatBinding, ChatIdentity, Platform, User
from storage.models_auth import UserCredential
from storage.models_data import RuleVersion

MAX_FILE = 200_000  # characters of a policy or rules file shown


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"({exc.strerror or exc})"
    return text if len(text) <= MAX_FILE else text[:MAX_FILE] + "\n…"


def settings_context(session, viewer: Viewer, lang: str) -> dict:
    from bot.approvals.policy import DEFAULT_PATH
    from bot.declarations.rules import RULES_DIR

    users = session.exec(select(User).order_by(User.id)).all()
    identities: dict[int, list[str]] = {}
    for ident in session.exec(select(ChatIdentity).order_by(ChatIdentity.id)):
        identities.setdefault(ident.user_id, []).append(f"{ident.chat}:{ident.external_id}")
    with_password = set(session.exec(select(UserCredential.user_id)))
    latest: dict[str, RuleVersion] = {}
    for rv in session.exec(select(RuleVersion).order_by(RuleVersion.version)):
        latest[rv.platform] = rv
    policy_path = Path(os.environ.get("PROMOPILOT_APPROVAL_POLICY") or DEFAULT_PATH)
    rules = [{"platform": p.stem, "path": p.name, "text": _read(p),
              "stored": latest.get(p.stem)} for p in sorted(RULES_DIR.glob("*.yaml"))]
    by_name = {u.name: u.display_name for u in users}
    return {
        "bindings": session.exec(select(ChatBinding).order_by(
            ChatBinding.chat, ChatBinding.channel_id, ChatBinding.id)).all(),
        "users": users, "identities": identities, "with_password": with_password,
        "roles": ROLES, "chats": CHATS, "purposes": edit.PURPOSES,
        "platform_codes": ["*", *session.exec(select(Platform.code).order_by(Platform.code))],
        "policy_path": policy_path.name, "policy": _read(policy_path), "rules": rules,
        "changes": [{"event": e, "who": by_name.get(e.actor, e.actor),
                     "what": t(f"dash.settings.audit.{e.action}", lang)}
                    for e in edit.recent_changes(session)],
        "may_edit": viewer.may("settings_edit"), "acting": viewer.acting_fields(),
    }


def build_router(container, pages: Pages) -> APIRouter:
    db = container.db
    router = APIRouter(include_in_schema=False)

    def show(request: Request, viewer: Viewer, lang: str, message: str = "",
             status: int = 200, ok: bool = True) -> HTMLResponse:
        with db.session() as session:
            context = settings_context(session, viewer, lang)
        return pages.render(request, "dashboard/settings.html", viewer, lang, page="settings",
                            title=t("dash.nav.settings", lang), message=message, ok=ok,
                            status=status, **context)

    @router.get("/dash/settings", response_class=HTMLResponse)
    def settings_page(request: Request, done: str = "") -> HTMLResponse:
        viewer, lang = pages.viewer(request, "settings")
        message = t(f"dash.settings.done.{done}", lang) if done in edit.SETTINGS_ACTIONS else ""
        return show(request, viewer, lang, message)

    async def change(request: Request, work) -> Response:
        """Run one edit as the person asking; a refusal re-shows the page with the reason
        (a browser) or is the JSON error (any other client)."""
        lang = pages.lang(request)
        form = await request.form()
        fields = {k: (form.getlist(k) if k == "roles" else form.get(k)) for k in form}
        name = acting_name(request, str(form.get("user") or "") or None, container.settings)
        with db.session() as session:  # the person acting must be an admin, however named
            user = session.exec(select(User).where(User.name == name)).first()
        if user is None or not user.active:
            raise Refused(403, "auth.unknown_user", lang, name=name[:64])
        if not set(user.roles or ()) & ACCESS["settings_edit"]:
            raise Refused(403, "dash.settings.admins_only", lang)
        try:
            with db.session() as session:
                action = work(session, name, fields, lang)
        except HTTPException as exc:
            if "text/html" not in request.headers.get("accept", ""):
                raise
            detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
            principal = principal_of(request)
            viewer = Viewer(principal.kind if principal else "demo", user.name,
                            user.display_name, user.id, frozenset(user.roles or ()))
            return show(request, viewer, lang, detail.get("message", ""), exc.status_code, False)
        return RedirectResponse(f"/dash/settings?done={action}#{action}", status_code=303)

    @router.post("/dash/settings/bindings")
    async def add_binding(request: Request) -> Response:
        def work(session, name, fields, lang):
            edit.add_binding(session, name, fields, lang)
            return "settings_bind"
        return await change(request, work)

    @router.post("/dash/settings/bindings/{binding_id}/delete")
    async def remove_binding(binding_id: int, request: Request) -> Response:
        def work(session, name, fields, lang):
            edit.remove_binding(session, name, binding_id, lang)
            return "settings_unbind"
        return await change(request, work)

    @router.post("/dash/settings/users/{user_id}/roles")
    async def set_roles(user_id: int, request: Request) -> Response:
        def work(session, name, fields, lang):
            edit.set_roles(session, name, user_id, fields.get("roles") or [], lang)
            return "settings_roles"
        return await change(request, work)

    return router
