"""Text commands for approvals and submissions (#8), in English and Chinese; the same
actions as the card buttons, for people who type."""

from __future__ import annotations

from bot.approvals import latest_round
from bot.errors import NotFound
from bot.i18n import register
from cards.builders import BUILDERS
from commands.router import Context, Reply, router
from commands.tasks import _action_command, task_id_arg

register({
    "usage.approval": {"zh-CN": "审批单 <编号> / approval <id> — 查看审批卡片",
                       "en": "approval <id> / 审批单 <id> — show the approval card"},
    "usage.retry": {"zh-CN": "重试 <编号> / retry <id> — 重新提交平台(同一幂等键)",
                    "en": "retry <id> / 重试 <id> — submit again (same idempotency key)"},
    "usage.takeover": {"zh-CN": "接手 <编号> / takeover <id> — 我来手工提交",
                       "en": "takeover <id> / 接手 <id> — I'll submit by hand"},
    "usage.uploaded": {"zh-CN": "已上传 <编号> <平台编号或截图链接> / uploaded <id> <reference>",
                       "en": "uploaded <id> <reference> / 已上传 <id> <平台编号>"},
    "usage.platform_accepted": {"zh-CN": "平台通过 <编号> / platform_accepted <id>",
                                "en": "platform_accepted <id> / 平台通过 <id>"},
    "usage.platform_rejected": {"zh-CN": "平台驳回 <编号> <原因> / platform_rejected <id> <reason>",
                                "en": "platform_rejected <id> <reason> / 平台驳回 <id> <原因>"},
})


@router.command("approval", "审批单", usage="usage.approval")
def approval_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.approval")
    with ctx.db.session() as session:
        rnd = latest_round(session, task_id)
        card = BUILDERS["approval"](session, {"task_id": task_id, "round_id": rnd.id},
                                    ctx.lang) if rnd else None
    if card is None:
        raise NotFound("err.not_found", task_id=task_id)
    return Reply(text=card.title, card=card)


for _action, _names, _usage, _reason in [
    ("submission_retry", ("retry", "重试"), "usage.retry", False),
    ("submission_takeover", ("takeover", "接手"), "usage.takeover", False),
    ("submission_done", ("uploaded", "已上传", "已提交平台"), "usage.uploaded", True),
    ("platform_accepted", ("platform_accepted", "平台通过"), "usage.platform_accepted", False),
    ("platform_rejected", ("platform_rejected", "平台驳回"), "usage.platform_rejected", True),
]:
    router.command(*_names, usage=_usage)(_action_command(_action, _usage, _reason))
