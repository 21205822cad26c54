"""Text commands for approvals and submissions (#8), in English and Chinese; the same
actions as the card buttons, for people who type."""

from __future__ import annotations

from bot.approvals.service import latest_round
from bot.core.errors import NotFound
from cards.builders import BUILDERS
from commands.router import Context, Reply, router
from commands.tasks import _action_command, task_id_arg


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
