"""``deadline <id> <time>`` / ``截止 <编号> <时间>``: set a deadline the notice left unclear."""

from __future__ import annotations

from bot.core.errors import Invalid
from bot.core.i18n import Term
from bot.core.timefmt import local
from bot.watch import deadlines  # noqa: F401  (registers the set_deadline action)
from commands.router import Context, Reply, router
from commands.tasks import task_id_arg
from storage.models import Task


@router.command("deadline", "截止", "设置截止", usage="usage.deadline")
def deadline_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.deadline")
    when = " ".join(args[1:]).strip()
    if not when:
        raise Invalid("err.usage", usage=Term("usage.deadline"))
    result = ctx.act(task_id, "set_deadline", comment=when)
    with ctx.db.session() as session:
        task = session.get(Task, task_id)
        shown = local(task.deadline) if task else when
    return Reply(text=ctx.t("deadline.ok", task_id=task_id, when=shown), result=result)
