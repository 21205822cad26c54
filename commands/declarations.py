"""Text commands about declarations, rules and rejections (en + zh), for every chat."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.core.errors import Invalid, NotFound
from bot.core.i18n import Term
from bot.core.platforms import as_code
from bot.declarations import autofill as declarations
from bot.declarations import compliance, learning, rules
from bot.declarations.plugin import declaration_card, hints_link, link
from commands.router import Context, Reply, router
from commands.tasks import task_id_arg
from storage.models import Task
from storage.models_data import RuleProposal

OVERRIDABLE = {"submit": "submit", "提交": "submit", "request_approval": "request_approval",
               "approval": "request_approval", "送审": "request_approval"}
EDIT_FIELDS = {"price": "price", "promo_price": "price", "价格": "price", "活动价": "price",
               "stock": "stock", "promo_stock": "stock", "库存": "stock", "活动库存": "stock"}
REMOVE_WORDS = ("remove", "删除", "移除")
_KEY = re.compile(r"(?:^|\s)([^\s=＝:：]+)\s*[=＝:：]")


def parse_changes(args: list[str]) -> dict[str, str]:
    """``price=99 stock=50`` / ``价格 = ￥1,299 库存:２０`` / ``remove`` → ``{"price": "￥1,299", …}``.

    A value runs to the next ``name=`` (so ``99 元`` and ``1 299`` stay whole); the number
    itself is read by ``autofill.edit`` with the one number parser."""
    text = " ".join(args).strip()
    keys = list(_KEY.finditer(text))
    out: dict[str, str] = {}
    rest = text[:keys[0].start()] if keys else text
    for word in rest.split():
        if word.lower() not in REMOVE_WORDS:
            raise Invalid("decl.bad_field", field=word[:20])
        out["remove"] = "1"
    for i, key in enumerate(keys):
        name = key.group(1)
        if name.lower() not in EDIT_FIELDS:
            raise Invalid("decl.bad_field", field=name[:20])
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        out[EDIT_FIELDS[name.lower()]] = text[key.end():end].strip()
    return out



@router.command("edit", "改", "修改", usage="usage.edit")
def edit_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.edit")
    if len(args) < 3:
        raise Invalid("err.usage", usage=Term("usage.edit"))
    sku, changes = args[1], parse_changes(args[2:])
    with ctx.db.session() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound("err.not_found", task_id=task_id)
        line = declarations.edit(session, task, ctx.actor, sku, changes)
        declaration, _ = declarations.current(session, task_id)
        assert declaration is not None
        found = [v for v in compliance.check(session, task, declaration)
                 if v.sku is None or v.sku.lower() == sku.lower()]
        left = compliance.errors(found)
        hints = [v for v in found if v.severity != "error" and v.sku]  # e.g. below cost
    if line is None:
        text = ctx.t("decl.removed", task_id=task_id, sku=sku)
    else:
        text = ctx.t("decl.edited", task_id=task_id, sku=line.sku, price=line.promo_price,
                     stock=line.promo_stock)
    if left:
        text += "\n" + ctx.t("decl.still") + "\n" + "\n".join(f"• {v.describe(ctx.lang)}" for v in left)
    if hints:
        text += "\n" + "\n".join(f"⚠ {v.describe(ctx.lang)}" for v in hints)
    return Reply(text=text)


@router.command("excel", "导出", "报名表", usage="usage.excel")
def excel_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.excel")
    with ctx.db.session() as session:
        card = declaration_card(session, {"task_id": task_id}, ctx.lang)
    if card is None:
        raise Invalid("exp.no_declaration", task_id=task_id)
    return Reply(text=ctx.t("decl.excel", task_id=task_id, url=link(task_id, "bundle")), card=card)


@router.command("check", "预检", "合规", usage="usage.check")
def check_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.check")
    with ctx.db.session() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound("err.not_found", task_id=task_id)
        declaration = declarations.current(session, task_id)[0]
        if declaration is None:
            raise Invalid("err.no_declaration", task_id=task_id)
        ruleset, found = compliance.evaluate(session, task, declaration)
        card = declaration_card(session, {"task_id": task_id}, ctx.lang)
    errors = compliance.errors(found)
    warnings = [f"⚠ {v.describe(ctx.lang)}" for v in found if v.severity != "error"]
    if len(warnings) > compliance.MAX_LISTED:  # the rest: ``hints <id>`` and the console page
        warnings = [*warnings[:compliance.MAX_LISTED],
                    ctx.t("hints.more", n=len(warnings) - compliance.MAX_LISTED,
                          url=hints_link(task_id))]
    tail = "\n" + "\n".join(warnings) if warnings else ""
    if not errors:
        return Reply(text=ctx.t("cv.ok", task_id=task_id, platform=ruleset.platform,
                                version=ruleset.version) + tail, card=card)
    return Reply(text=compliance.ComplianceBlocked(task_id, "submit", ruleset, errors).message(ctx.lang)
                 + tail, card=card, ok=True)


@router.command("override", "强制", "放行", usage="usage.override")
def override_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.override")
    action = OVERRIDABLE.get(args[1].lower()) if len(args) > 1 else None
    reason = " ".join(args[2:]).strip()
    if action is None:
        raise Invalid("err.usage", usage=Term("usage.override"))
    if not reason:
        raise Invalid("err.reason_required",
                      example=Term.of(f"example.override_{action}", task_id=task_id))
    result = ctx.act(task_id, action, comment=reason, payload={"override": True})
    return router._done(ctx, result)


@router.command("rules", "规则", "采纳", usage="usage.rules")
def rules_command(ctx: Context, args: list[str]) -> Reply:
    if ctx.alias == "采纳":
        return _decide(ctx, args, True)
    if args and args[0].lower() in ("accept", "dismiss", "采纳", "忽略"):
        return _decide(ctx, args[1:], args[0].lower() in ("accept", "采纳"))
    if args and args[0].lower() in ("history", "历史"):
        return _history(ctx, args[1:])
    lines = []
    with ctx.db.session() as session:
        platforms = [as_code(args[0])] if args else [p.stem for p in sorted(rules.RULES_DIR.glob("*.yaml"))]
        for code in platforms:
            rules.platform_rules(session, code)
            row = rules.latest(session, code)
            if row is not None:
                lines.append(ctx.t("rules.version", platform=code, version=row.version,
                                   author=row.author, when=row.created_at,  # t(): team zone
                                   n=len(row.content.get("rules", []))))
        pending = session.exec(select(RuleProposal).where(RuleProposal.state == "proposed")
                               .order_by(RuleProposal.id)).all()
        if pending:
            lines.append(ctx.t("rules.pending"))
            lines += [ctx.t("rules.proposal", id=p.id, platform=p.platform, n=p.occurrences,
                            rule=learning.rule_text(p.rule, ctx.lang)) for p in pending]
    return Reply(text="\n".join(lines) or ctx.t("usage.rules"))


def _history(ctx: Context, args: list[str]) -> Reply:
    """Every version of a platform's rules (file and learned), and the learned rules kept on
    top of the file."""
    if not args:
        raise Invalid("err.usage", usage=Term("usage.rules"))
    code = as_code(args[0])
    with ctx.db.session() as session:
        rules.platform_rules(session, code)
        rows = rules.history(session, code)
        learned = rules.learned(session, code)
    if not rows:
        raise NotFound("rules.unknown_platform", platform=code[:32])
    lines = [ctx.t("rules.history_title", platform=code)]
    lines += [ctx.t("rules.history_line", version=r.version, when=r.created_at, author=r.author,
                    source=Term(f"rules.source.{r.source if r.source in ('yaml', 'proposal') else 'other'}"),
                    n=len(r.content.get("rules", []))) for r in rows]
    if learned:
        lines.append(ctx.t("rules.learned_title"))
        lines += [ctx.t("rules.learned_line", rule=learning.rule_words(r, ctx.lang),
                        scope=learning.scope_text(r, ctx.lang), who=r.get("learned_by") or "?")
                  for r in learned]
    return Reply(text="\n".join(lines))


def _decide(ctx: Context, args: list[str], accept: bool) -> Reply:
    if not args or not args[0].lstrip("#").isdigit():
        raise Invalid("err.usage", usage=Term("usage.rules"))
    proposal_id = int(args[0].lstrip("#"))
    with ctx.db.session() as session:
        proposal = learning.decide(session, proposal_id, ctx.actor, accept, ctx.inbound.event_id)
        platform, version = proposal.platform, proposal.rule_version
    if accept:
        return Reply(text=ctx.t("learn.ok_accept", id=proposal_id, platform=platform, version=version))
    return Reply(text=ctx.t("learn.ok_dismiss", id=proposal_id))


@router.command("rejections", "驳回原因", usage="usage.rejections")
def rejections_command(ctx: Context, args: list[str]) -> Reply:
    with ctx.db.session() as session:
        return Reply(text=learning.report_text(session, ctx.lang, as_code(args[0]) if args else None))
