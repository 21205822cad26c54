"""Admin commands: add people with roles, bind a channel to a marketplace."""

from __future__ import annotations

from sqlmodel import select

from bot.core.errors import Forbidden, Invalid
from bot.core.users import add_user, parse_roles
from commands.router import Context, Reply, router
from storage.models import ChatBinding

CHATS = ("web", "slack", "feishu", "dingtalk")


def _require_admin(ctx: Context) -> None:
    if not ctx.actor.has_any({"admin", "manager"}):
        raise Forbidden("err.admin_only")


@router.command("user", "用户", usage="usage.user_add")
def user_command(ctx: Context, args: list[str]) -> Reply:
    _require_admin(ctx)
    if len(args) < 3 or args[0].lower() not in ("add", "添加"):
        raise Invalid("err.usage", usage=ctx.t("usage.user_add"))
    name, roles = args[1], parse_roles(args[2])
    external_id = args[3] if len(args) > 3 else None
    chat = ctx.inbound.chat
    if external_id and external_id.startswith(("--", "—")):  # `--slack U123` form
        chat = external_id.lstrip("-—").lower()
        if len(args) < 5 or chat not in CHATS:
            raise Invalid("err.usage", usage=ctx.t("usage.user_add"))
        external_id = args[4]
    with ctx.db.session() as session:
        add_user(session, name, roles, chat=chat if external_id else None,
                 external_id=external_id, lang=ctx.lang)
    return Reply(text=ctx.t("ok.user_added", name=name, roles=", ".join(roles)))


@router.command("bind", "绑定", usage="usage.bind")
def bind_command(ctx: Context, args: list[str]) -> Reply:
    _require_admin(ctx)
    if not args:
        raise Invalid("err.usage", usage=ctx.t("usage.bind"))
    platform = args[0].lower()
    purpose = args[1].lower() if len(args) > 1 else "notices"
    if purpose not in ("notices", "approvals", "ops"):
        raise Invalid("err.usage", usage=ctx.t("usage.bind"))
    with ctx.db.session() as session:
        exists = session.exec(select(ChatBinding).where(
            ChatBinding.chat == ctx.inbound.chat, ChatBinding.channel_id == ctx.inbound.channel_id,
            ChatBinding.platform == platform, ChatBinding.purpose == purpose)).first()
        if not exists:
            session.add(ChatBinding(chat=ctx.inbound.chat, channel_id=ctx.inbound.channel_id,
                                    platform=platform, purpose=purpose))
    return Reply(text=ctx.t("ok.bound", platform=platform, purpose=purpose), private=False)
