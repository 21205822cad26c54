"""Text commands about tasks, in English and Chinese. Same handlers for every chat."""

from __future__ import annotations

import unicodedata

from sqlalchemy import and_, or_
from sqlmodel import select

from bot.core.errors import Invalid, NotFound
from bot.core.i18n import Term, platform_name
from bot.core.lifecycle import OPEN_STATES, State
from bot.core.timefmt import local
from cards.builders import BUILDERS
from commands.router import Context, Reply, router
from storage.models import Campaign, Platform, Task, User
from storage.types import utcnow


def task_id_arg(ctx: Context, args: list[str], usage: str) -> int:
    if not args:
        raise Invalid("err.usage", usage=Term(usage))
    found = id_number(args[0])
    if found is None:
        raise Invalid("err.bad_id", value=args[0][:20])
    return found


def id_number(word: str) -> int | None:
    """``12`` / ``#12`` / full-width ``１２`` → 12; None for anything else, including digits
    no database id is (``١٢``-style scripts ``int`` reads, 20-digit numbers that overflow
    a query)."""
    raw = unicodedata.normalize("NFKC", word).lstrip("#＃")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) >= 2**31:
        return None
    return int(raw)


def _line(ctx: Context, task: Task, campaign: Campaign, platform: str, owner: str) -> str:
    deadline = local(task.deadline, fmt="%m-%d %H:%M") if task.deadline else "?"
    who = f" · {owner}" if owner else ""
    return (f"#{task.id} [{platform}] {campaign.title[:60]} — {deadline} — "
            f"{ctx.t(f'state.{task.state}')}{who}")


def _task_lines(ctx: Context, *conditions, ongoing: bool = False) -> list[str]:
    """Open tasks; with ``ongoing`` also those accepted or running whose event is not over
    (报名成功 with the campaign still ahead is still the person's task)."""
    states = Task.state.in_([s.value for s in OPEN_STATES])
    if ongoing:
        states = or_(states, and_(Task.state.in_([State.ACCEPTED.value, State.RUNNING.value]),
                                  or_(Campaign.event_end.is_(None), Campaign.event_end > utcnow())))
    with ctx.db.session() as session:
        rows = session.exec(
            select(Task, Campaign, Platform.name, User.display_name)
            .join(Campaign, Campaign.id == Task.campaign_id)
            .join(Platform, Platform.code == Campaign.platform, isouter=True)
            .join(User, User.id == Task.claimed_by, isouter=True)
            .where(states, *conditions)
            .order_by(Task.deadline.is_(None), Task.deadline, Task.id).limit(50)
        ).all()
    return [_line(ctx, task, campaign, platform_name(campaign.platform, ctx.lang, pname),
                  owner or "")
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
    lines = _task_lines(ctx, Task.claimed_by == ctx.actor.user_id, ongoing=True)
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
            raise Invalid("err.reason_required",
                          example=Term.of(f"example.{action}", task_id=task_id))
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
