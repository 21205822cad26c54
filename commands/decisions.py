"""Text commands for decisions (en + zh, every chat): the scenarios side by side, the margin
after fees line by line, and accepting a risk the guards found."""

from __future__ import annotations

from bot.core.errors import Invalid, NotFound
from bot.core.i18n import Term
from bot.insight import acceptance, guards, margin, scenarios
from commands.router import Context, Reply, router
from commands.tasks import task_id_arg
from storage.models import Task

MAX_LINES = 15


def _task(session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound("err.not_found", task_id=task_id)
    return task


@router.command("scenarios", "方案", "方案对比", usage="usage.scenarios")
def scenarios_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.scenarios")
    with ctx.db.session() as session:
        found, options = scenarios.scenarios(session, _task(session, task_id))
        if found is None or not options:
            raise Invalid("err.no_declaration", task_id=task_id)
        risks = guards.findings(session, found)
        skip = acceptance.accepted(session, task_id, found.declaration.version)
    lines = [ctx.t("deal.s.title", task_id=task_id, version=found.declaration.version)]
    lines += [f"{chr(ord('A') + i)} {scenarios.row_text(o, ctx.lang)}"
              for i, o in enumerate(options)]
    lines.append(scenarios.basis_text(found, options, ctx.lang))
    lines += [f"{'⚠' if f.severity != 'error' else ('↷' if f.ack_key in skip else '✗')} "
              f"{f.describe(ctx.lang)}" for f in risks[:guards.MAX_SHOWN]]
    return Reply(text="\n".join(lines))


@router.command("margin", "毛利", usage="usage.margin")
def margin_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.margin")
    with ctx.db.session() as session:
        found = margin.deal(session, _task(session, task_id))
        if found is None or not found.lines:
            raise Invalid("err.no_declaration", task_id=task_id)
        lines = margin.line_margins(found)
        fields = margin.card_fields(session, found.task, found.declaration, ctx.lang)
    out = [ctx.t("deal.m.title", task_id=task_id, version=found.declaration.version)]
    for m in lines[:MAX_LINES]:
        u = m.unit
        if u is None:
            out.append(ctx.t("deal.m.no_price", sku=m.sku))
            continue
        out.append(ctx.t("deal.m.line", sku=m.sku, price=f"{u.price:,.2f}",
                         paid=f"{u.paid:,.2f}", commission=f"{u.commission:,.2f}",
                         payment=f"{u.payment:,.2f}", shipping=f"{u.shipping:,.2f}",
                         cost="—" if u.cost is None else f"{u.cost:,.2f}",
                         margin="—" if u.margin is None else f"{u.margin:,.2f}",
                         rate="—" if u.rate is None else f"{u.rate:.1%}"))
    if len(lines) > MAX_LINES:
        out.append(ctx.t("deal.more", n=len(lines) - MAX_LINES))
    out += [f.value for f in fields]
    return Reply(text="\n".join(out))


@router.command("accept_risk", "accept-risk", "接受风险", usage="usage.accept_risk")
def accept_risk_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.accept_risk")
    comment = " ".join(args[1:]).strip()
    if not comment:
        raise Invalid("err.reason_required", example=Term.of("example.accept_risk",
                                                             task_id=task_id))
    result = ctx.act(task_id, "accept_risk", comment=comment)
    if result.duplicate:
        return router._done(ctx, result)
    return Reply(text=ctx.t("deal.accepted", task_id=task_id, reason=comment), result=result)
