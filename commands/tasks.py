"""Text commands about tasks, in English and Chinese. Same handlers for every chat."""

from __future__ import annotations

from sqlmodel import select

from bot.errors import Invalid, NotFound
from bot.i18n import register
from bot.lifecycle import OPEN_STATES
from bot.timefmt import local
from cards.builders import BUILDERS
from commands.router import Context, Reply, router
from storage.models import Campaign, Platform, Task, User

register({
    "help.title": {"zh-CN": "PromoPilot 指令:", "en": "PromoPilot commands:"},
    "help.unknown": {"zh-CN": "没听懂「{word}」。", "en": "I don't know '{word}'."},
    "usage.help": {"zh-CN": "帮助 / help — 显示本说明", "en": "help / 帮助 — this list"},
    "usage.list": {"zh-CN": "列表 / list — 按截止时间列出进行中的活动",
                   "en": "list / 列表 — open campaigns by deadline"},
    "usage.claim": {"zh-CN": "认领 <编号> / claim <id> — 认领任务", "en": "claim <id> / 认领 <id>"},
    "usage.status": {"zh-CN": "状态 <编号> / status <id> — 任务详情",
                     "en": "status <id> / 状态 <id> — task details"},
    "usage.mine": {"zh-CN": "我的 / mine — 我负责的任务", "en": "mine / 我的 — my tasks"},
    "usage.skip": {"zh-CN": "放弃 <编号> <原因> / skip <id> <reason>",
                   "en": "skip <id> <reason> / 放弃 <id> <原因>"},
    "usage.draft": {"zh-CN": "填报 <编号> / draft <id> — 从数据池生成申报单",
                    "en": "draft <id> / 填报 <id> — fill the declaration from the data pool"},
    "usage.request_approval": {"zh-CN": "送审 <编号> / request_approval <id>",
                               "en": "request_approval <id> / 送审 <id>"},
    "usage.approve": {"zh-CN": "批准 <编号> / approve <id>", "en": "approve <id> / 批准 <id>"},
    "usage.reject": {"zh-CN": "驳回 <编号> <原因> / reject <id> <reason>",
                     "en": "reject <id> <reason> / 驳回 <id> <原因>"},
    "usage.request_changes": {"zh-CN": "要求修改 <编号> <原因> / changes <id> <reason>",
                              "en": "changes <id> <reason> / 要求修改 <id> <原因>"},
    "usage.submit": {"zh-CN": "提交 <编号> / submit <id> — 提交到平台",
                     "en": "submit <id> / 提交 <id> — send to the marketplace"},
    "usage.release": {"zh-CN": "释放 <编号> / release <id> — 退回待认领",
                      "en": "release <id> / 释放 <id> — give the task back"},
    "list.empty": {"zh-CN": "目前没有进行中的活动。", "en": "No open campaigns right now."},
    "list.title": {"zh-CN": "进行中的活动(按截止时间):", "en": "Open campaigns by deadline:"},
    "mine.empty": {"zh-CN": "你目前没有负责的任务。", "en": "You have no tasks right now."},
    "mine.title": {"zh-CN": "我负责的任务:", "en": "Your tasks:"},
})


def task_id_arg(ctx: Context, args: list[str], usage: str) -> int:
    if not args:
        raise Invalid("err.usage", usage=ctx.t(usage))
    raw = args[0].lstrip("#")
    if not raw.isdigit():
        raise Invalid("err.bad_id", value=args[0][:20])
    return int(raw)


def _line(ctx: Context, task: Task, campaign: Campaign, platform: str, owner: str) -> str:
    deadline = local(task.deadline, fmt="%m-%d %H:%M") if task.deadline else "?"
    who = f" · {owner}" if owner else ""
    return (f"#{task.id} [{platform}] {campaign.title[:60]} — {deadline} — "
            f"{ctx.t(f'state.{task.state}')}{who}")


def _task_lines(ctx: Context, *conditions) -> list[str]:
    with ctx.db.session() as session:
        rows = session.exec(
            select(Task, Campaign, Platform.name, User.display_name)
            .join(Campaign, Campaign.id == Task.campaign_id)
            .join(Platform, Platform.code == Campaign.platform, isouter=True)
            .join(User, User.id == Task.claimed_by, isouter=True)
            .where(Task.state.in_([s.value for s in OPEN_STATES]), *conditions)
            .order_by(Task.deadline.is_(None), Task.deadline, Task.id).limit(50)
        ).all()
    return [_line(ctx, task, campaign, pname or campaign.platform, owner or "")
            for task, campaign, pname, owner in rows]


@router.command("help", "帮助", "?", "h", usage="usage.help", anonymous=True)
def help_command(ctx: Context, args: list[str]) -> Reply:
    return router.help(ctx)


@router.command("list", "列表", "ls", usage="usage.list")
def list_command(ctx: Context, args: list[str]) -> Reply:
    lines = _task_lines(ctx)
    if not lines:
        return Reply(text=ctx.t("list.empty"))
    return Reply(text="\n".join([ctx.t("list.title"), *lines]))


@router.command("mine", "我的", usage="usage.mine")
def mine_command(ctx: Context, args: list[str]) -> Reply:
    lines = _task_lines(ctx, Task.claimed_by == ctx.actor.user_id)
    if not lines:
        return Reply(text=ctx.t("mine.empty"))
    return Reply(text="\n".join([ctx.t("mine.title"), *lines]))


@router.command("status", "状态", "查看", usage="usage.status")
def status_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.status")
    with ctx.db.session() as session:
        card = BUILDERS["task"](session, {"task_id": task_id}, ctx.lang)
    if card is None:
        raise NotFound("err.not_found", task_id=task_id)
    return Reply(text=card.title, card=card)


def _action_command(action: str, usage: str, needs_reason: bool = False):
    def handler(ctx: Context, args: list[str]) -> Reply:
        task_id = task_id_arg(ctx, args, usage)
        comment = " ".join(args[1:]).strip() or None
        if needs_reason and not comment:
            raise Invalid("err.reason_required", example=f"{ctx.alias} {task_id} <…>")
        result = ctx.act(task_id, action, comment=comment)
        return router._done(ctx, result)

    return handler


for _action, _names, _usage, _reason in [
    ("claim", ("claim", "认领", "领取"), "usage.claim", False),
    ("skip", ("skip", "放弃"), "usage.skip", True),
    ("draft", ("draft", "填报"), "usage.draft", False),
    ("request_approval", ("request_approval", "送审", "提交审批"), "usage.request_approval",
     False),
    ("approve", ("approve", "批准", "同意"), "usage.approve", False),
    ("reject", ("reject", "驳回", "拒绝"), "usage.reject", True),
    ("request_changes", ("changes", "request_changes", "要求修改"), "usage.request_changes",
     True),
    ("submit", ("submit", "提交"), "usage.submit", False),
    ("release", ("release", "释放"), "usage.release", False),
]:
    router.command(*_names, usage=_usage)(_action_command(_action, _usage, _reason))
