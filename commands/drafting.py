"""Text commands for filling a declaration (en + zh): ``draft`` says what the fill took, left
out and changed; ``attach`` adds a qualification document; ``hints`` lists every pre-check
finding (the card only counts the warnings)."""

from __future__ import annotations

from sqlmodel import select

from bot.core.errors import Invalid, NotFound
from bot.core.i18n import t
from bot.declarations import autofill, compliance
from bot.declarations.card import hints_link
from cards.declaration import change_text, left_out_lines
from commands.router import Context, Reply, router
from commands.tasks import task_id_arg  # also makes sure the plain ``draft`` command came first
from storage.models import AuditEvent, QualificationDocument, Task

MAX_HINTS = 30  # findings spelled out in a chat reply; the console page lists every one


def fill_text(fill: dict, lang: str, task_id: int) -> str:
    """What a draft did: how many SKUs from how big a pool, what changed, what was left out."""
    if fill.get("previous") is None:
        lines = [t("draft.filled", lang, task_id=task_id, version=fill["declaration"],
                   n=fill.get("taken", 0), pool=fill.get("pool", 0))]
    elif fill.get("diff", {}).get("changed"):
        lines = [t("draft.refilled", lang, task_id=task_id, version=fill["declaration"],
                   before=fill["previous"], changes=change_text(fill["diff"], lang))]
    else:
        lines = [t("draft.same", lang, task_id=task_id, version=fill["declaration"])]
    scope = fill.get("scope") or {}
    if scope.get("categories") or scope.get("brands"):
        lines.append(t("draft.scope", lang, categories="、".join(scope.get("categories") or [])
                       or "—", brands="、".join(scope.get("brands") or []) or "—"))
    if fill.get("left_out"):
        lines.append(t("draft.left_out", lang, n=fill["left_out"]))
        lines += left_out_lines(fill, lang, skus=5)
    return "\n".join(lines)


@router.command("draft", "填报", usage="usage.draft")
def draft_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.draft")
    result = ctx.act(task_id, "draft", comment=" ".join(args[1:]).strip() or None)
    reply = router._done(ctx, result)
    if result.duplicate:
        return reply
    with ctx.db.session() as session:
        fill = autofill.last_fill(session, task_id)
    if fill:
        reply.text += "\n" + fill_text(fill, ctx.lang, task_id)
    return reply


# ``draft`` / ``填报`` above replaces the plain transition command of commands/tasks.py; keep
# one usage line in the help.
router.specs[:] = [s for s in router.specs
                   if s.handler is draft_command or not {"draft", "填报"} & set(s.names)]


@router.command("attach", "附上", "附资质", usage="usage.attach")
def attach_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.attach")
    raw = [a.lstrip("#") for a in args[1:]]
    bad = next((a for a in raw if not a.isdigit()), None)
    if bad is not None:
        raise Invalid("err.bad_id", value=bad[:20])
    ctx.act(task_id, "attach_document", payload={"documents": [int(a) for a in raw]})
    with ctx.db.session() as session:
        event = session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action == "attach_document")
            .order_by(AuditEvent.id.desc()).limit(1)).first()
        ids = list((event.detail or {}).get("documents", [])) if event else []
        docs = [d for d in (session.get(QualificationDocument, i) for i in ids) if d]
        names = "、".join(f"#{d.id}「{d.title}」" for d in docs)
        declaration, _ = autofill.current(session, task_id)
        task = session.get(Task, task_id)
        left = [v for v in compliance.errors(compliance.check(session, task, declaration))
                if v.kind == "documents"] if task and declaration else []
    text = ctx.t("decl.attached", task_id=task_id, docs=names or "—")
    if left:
        text += "\n" + ctx.t("decl.still") + "\n" + "\n".join(f"• {v.describe(ctx.lang)}" for v in left)
    return Reply(text=text)


@router.command("hints", "提示", "问题", usage="usage.hints")
def hints_command(ctx: Context, args: list[str]) -> Reply:
    task_id = task_id_arg(ctx, args, "usage.hints")
    with ctx.db.session() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound("err.not_found", task_id=task_id)
        declaration, _ = autofill.current(session, task_id)
        if declaration is None:
            raise Invalid("err.no_declaration", task_id=task_id)
        ruleset, found = compliance.evaluate(session, task, declaration)
        version = declaration.version
    errors = compliance.errors(found)
    if not found:
        return Reply(text=ctx.t("hints.none", task_id=task_id, version=version))
    lines = [ctx.t("hints.title", task_id=task_id, version=version, errors=len(errors),
                   warnings=len(found) - len(errors), platform=ruleset.platform,
                   rules=ruleset.version)]
    lines += [("✗ " if v.severity == "error" else "⚠ ") + v.describe(ctx.lang)
              for v in found[:MAX_HINTS]]
    if len(found) > MAX_HINTS:
        lines.append(ctx.t("hints.more", n=len(found) - MAX_HINTS, url=hints_link(task_id)))
    return Reply(text="\n".join(lines))
