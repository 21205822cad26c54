"""Admin commands: add people with roles, bind a channel to a marketplace (both audited,
as the dashboard's settings edits are: they show in its "recent changes")."""

from __future__ import annotations

from sqlmodel import select

from bot.core.errors import Forbidden, Invalid, NotFound
from bot.core.i18n import Term, platform_name
from bot.core.i18n import roles as role_names
from bot.core.platforms import as_code
from bot.core.users import add_user, parse_roles
from commands.router import Context, Reply, router
from storage.models import AuditEvent, ChatBinding, Platform

CHATS = ("web", "slack", "feishu", "dingtalk")
# What a bound channel hears, by the word typed in either language (绑定 jd 审批).
PURPOSES = {"notices": "notices", "通知": "notices", "活动通知": "notices",
            "approvals": "approvals", "审批": "approvals",
            "ops": "ops", "运维": "ops", "运维告警": "ops"}


def _require_admin(ctx: Context) -> None:
    if not ctx.actor.has_any({"admin", "manager"}):
        raise Forbidden("err.admin_only")


@router.command("user", "用户", usage="usage.user_add")
def user_command(ctx: Context, args: list[str]) -> Reply:
    _require_admin(ctx)
    if len(args) < 3 or args[0].lower() not in ("add", "添加"):
        raise Invalid("err.usage", usage=Term("usage.user_add"))
    name, roles = args[1], parse_roles(args[2])
    external_id = args[3] if len(args) > 3 else None
    chat = ctx.inbound.chat
    if external_id and external_id.startswith(("--", "—")):  # `--slack U123` form
        chat = external_id.lstrip("-—").lower()
        if len(args) < 5 or chat not in CHATS:
            raise Invalid("err.usage", usage=Term("usage.user_add"))
        external_id = args[4]
    with ctx.db.session() as session:
        add_user(session, name, roles, chat=chat if external_id else None,
                 external_id=external_id, lang=ctx.lang)
        session.add(AuditEvent(actor=ctx.actor.name, action="settings_user_add", detail={
            "user": name, "roles": roles, "chat": chat if external_id else None,
            "external_id": external_id, "said_in": ctx.inbound.chat}))
    return Reply(text=ctx.t("ok.user_added", name=name, roles=role_names(roles)))


@router.command("bind", "绑定", usage="usage.bind")
def bind_command(ctx: Context, args: list[str]) -> Reply:
    _require_admin(ctx)
    if not args:
        raise Invalid("err.usage", usage=Term("usage.bind"))
    platform = as_code(args[0])
    purpose = PURPOSES.get(args[1].lower() if len(args) > 1 else "notices")
    if purpose is None:
        raise Invalid("err.usage", usage=Term("usage.bind"))
    with ctx.db.session() as session:
        known = session.get(Platform, platform)
        if known is None and platform != "*":  # a binding no notice would ever reach
            codes = session.exec(select(Platform.code).order_by(Platform.code)).all()
            raise NotFound("bind.unknown_platform", platform=args[0][:32],
                           known=", ".join(codes) or "-")
        exists = session.exec(select(ChatBinding).where(
            ChatBinding.chat == ctx.inbound.chat, ChatBinding.channel_id == ctx.inbound.channel_id,
            ChatBinding.platform == platform, ChatBinding.purpose == purpose)).first()
        if not exists:
            binding = ChatBinding(chat=ctx.inbound.chat, channel_id=ctx.inbound.channel_id,
                                  platform=platform, purpose=purpose)
            session.add(binding)
            session.flush()
            session.add(AuditEvent(actor=ctx.actor.name, action="settings_bind", detail={
                "after": binding.audited(), "said_in": ctx.inbound.chat}))
        shown = Term("platform.all") if known is None else platform_name(
            platform, ctx.lang, known.name)
    return Reply(text=ctx.t("ok.bound", platform=shown, purpose=Term(f"purpose.{purpose}")),
                 private=False)
