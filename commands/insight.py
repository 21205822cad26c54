"""What people say and click for the recommendation (en + zh, every chat): ``explain <id>`` /
``解释 <编号>`` and the card's explain button answer with the breakdown, privately; the alert
card's mute button confirms privately."""

from __future__ import annotations

from bot.core.actions import ActionResult
from bot.insight.decide import explanation
from commands.router import Context, Reply, router
from commands.tasks import task_id_arg


@router.command("explain", "why", "解释", "为什么", usage="usage.explain")
def explain_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.explain")
    with ctx.db.session() as session:
        return Reply(text=explanation(session, task_id, ctx.lang))


def _explained(ctx: Context, result: ActionResult) -> Reply:
    with ctx.db.session() as session:
        return Reply(text=explanation(session, result.task_id, ctx.lang), result=result)


def _muted(ctx: Context, result: ActionResult) -> Reply:
    return Reply(text=ctx.t("alert.muted_ok", task_id=result.task_id), result=result)


router.click_replies["explain"] = _explained
router.click_replies["mute_alert"] = _muted
