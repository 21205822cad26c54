"""The settings a person may change from the dashboard, validated and audited (admins only):
channel bindings (add, remove) and people's roles.

Every change writes an ``audit_events`` row (no task: ``task_id`` is empty) with who did it
and the values before and after, in the same transaction as the change; ``promopilot audit
export`` lists them with the rest. The approval policy and the rules files are shown, not
edited here: they are reviewed files with their own history (``rules sync``, git).
"""

from __future__ import annotations

import re

from sqlalchemy import func
from sqlmodel import Session, select

from bot.core.actors import ROLES
from bot.core.i18n import t
from bot.web.dash_common import refuse
from commands.admin import CHATS
from storage.models import AuditEvent, ChatBinding, Platform, User

PURPOSES = ("notices", "approvals", "ops")
MAX_FIELD = 128
_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f]")
SETTINGS_ACTIONS = ("settings_bind", "settings_unbind", "settings_roles", "settings_user_add")


def _text(value: object, lang: str, name: str, *, required: bool = False,
          default: str = "") -> str:
    text = str(value or "").strip()
    if not text:
        if required:
            raise refuse(422, "dash.settings.required", lang,
                         field=t(f"dash.settings.field.{name}", lang))
        return default
    if len(text) > MAX_FIELD:
        raise refuse(422, "dash.settings.too_long", lang,
                     field=t(f"dash.settings.field.{name}", lang), limit=MAX_FIELD, n=len(text))
    if any(not ch.isprintable() for ch in text):
        raise refuse(422, "dash.settings.bad_value", lang,
                     field=t(f"dash.settings.field.{name}", lang), value=text[:40])
    return text


def _roles(values: list[str], lang: str, *, allow_empty: bool) -> list[str]:
    wanted = [v for v in (str(x).strip() for x in values) if v]
    unknown = [v for v in wanted if v not in ROLES]
    if unknown:
        raise refuse(422, "dash.settings.bad_role", lang, value=unknown[0][:40],
                     roles="、".join(t(f"role.{r}", lang) for r in ROLES) if lang != "en"
                     else ", ".join(t(f"role.{r}", lang) for r in ROLES))
    if not wanted and not allow_empty:
        raise refuse(422, "dash.settings.no_roles", lang)
    return [r for r in ROLES if r in wanted]


def add_binding(session: Session, actor: str, form: dict, lang: str) -> ChatBinding:
    chat = _text(form.get("chat"), lang, "chat", required=True)
    if chat not in CHATS:
        raise refuse(422, "dash.settings.bad_value", lang,
                     field=t("dash.settings.field.chat", lang), value=chat[:40])
    channel = _text(form.get("channel_id"), lang, "channel_id", required=True)
    if _BAD_ID.search(channel):
        raise refuse(422, "dash.settings.bad_value", lang,
                     field=t("dash.settings.field.channel_id", lang), value=channel[:40])
    platform = _text(form.get("platform"), lang, "platform", default="*")
    if platform != "*" and session.get(Platform, platform) is None:
        known = list(session.exec(select(Platform.code).order_by(Platform.code)))
        raise refuse(422, "dash.bad_filter", lang, field=t("dash.filter.platform", lang),
                     value=platform[:40], allowed=", ".join(["*", *known]))
    purpose = _text(form.get("purpose"), lang, "purpose", default="notices")
    if purpose not in PURPOSES:
        raise refuse(422, "dash.settings.bad_value", lang,
                     field=t("dash.settings.field.purpose", lang), value=purpose[:40])
    binding = ChatBinding(
        chat=chat, channel_id=channel, platform=platform, purpose=purpose,
        channel_name=_text(form.get("channel_name"), lang, "channel_name"),
        category=_text(form.get("category"), lang, "category", default="*"),
        shop=_text(form.get("shop"), lang, "shop", default="*"),
        roles=_roles(form.get("roles") or [], lang, allow_empty=True))
    same = session.exec(select(ChatBinding.id).where(
        ChatBinding.chat == chat, ChatBinding.channel_id == channel,
        ChatBinding.platform == platform, ChatBinding.purpose == purpose,
        ChatBinding.category == binding.category, ChatBinding.shop == binding.shop)).first()
    if same is not None:
        raise refuse(409, "dash.settings.binding_exists", lang, channel=channel[:60])
    session.add(binding)
    session.flush()
    session.add(AuditEvent(actor=actor, action="settings_bind",
                           detail={"after": binding.audited()}))
    return binding


def remove_binding(session: Session, actor: str, binding_id: int, lang: str) -> None:
    binding = session.get(ChatBinding, binding_id) if 0 < binding_id < 2**31 else None
    if binding is None:
        raise refuse(404, "dash.settings.no_binding", lang, id=binding_id)
    before = binding.audited()
    session.delete(binding)
    session.add(AuditEvent(actor=actor, action="settings_unbind", detail={"before": before}))


def set_roles(session: Session, actor: str, user_id: int, roles: list[str], lang: str) -> User:
    user = session.get(User, user_id) if 0 < user_id < 2**31 else None
    if user is None:
        raise refuse(404, "dash.settings.no_user", lang, id=user_id)
    wanted = _roles(roles, lang, allow_empty=False)
    before = list(user.roles or [])
    if "admin" in before and "admin" not in wanted and user.active:
        admins = [u for u in session.exec(select(User).where(User.active == True))  # noqa: E712
                  if "admin" in (u.roles or [])]
        if len(admins) <= 1:
            raise refuse(409, "dash.settings.last_admin", lang, name=user.display_name)
    if wanted == before:
        return user
    user.roles = wanted
    session.add(user)
    session.add(AuditEvent(actor=actor, action="settings_roles",
                           detail={"user": user.name, "before": before, "after": wanted}))
    return user


def recent_changes(session: Session, limit: int = 20) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(
        AuditEvent.action.in_(SETTINGS_ACTIONS)).order_by(AuditEvent.id.desc()).limit(limit)))


def count_bindings(session: Session) -> int:
    return session.exec(select(func.count()).select_from(ChatBinding)).one()
