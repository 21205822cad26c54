"""Compliance pre-check: every rule a declaration breaks, before approval and submission.

``check`` evaluates the campaign's effective rules (``bot.declarations.rules``) against the declaration
lines, the product pool, the price history and the attached documents, and returns every
violation with field, value, rule and a suggested fix. ``precheck`` is the action guard:
it blocks ``request_approval`` and ``submit`` unless a role allowed to override does so
with a reason, which is audited.
"""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core import lifecycle
from bot.core.actions import ActionRequest
from bot.core.actors import Actor
from bot.core.errors import Forbidden, Invalid
from bot.core.i18n import Term, roles
from bot.declarations import rules
from bot.declarations.checks import (
    LINE_CHECKS,
    _documents,
    _note,
    _red_line,
    banned_in,
    category_refused,
    documents_needed,
    needed_until,
    price_cap,
    usable_documents,
)
from bot.declarations.violations import (
    MAX_LISTED,
    OVERRIDE_ROLES,
    ComplianceBlocked,
    Context,
    Violation,
    floor_price,
    money,
)
from storage.models import (
    AuditEvent,
    Campaign,
    Declaration,
    DeclarationLine,
    Product,
    Task,
)
from storage.models_data import ProductCategory
from storage.queries import declaration_lines, latest_declaration

__all__ = [  # the pre-check's vocabulary, used by cards, commands and exports
    "ComplianceBlocked",
    "Context",
    "Violation",
    "banned_in",
    "category_refused",
    "documents_needed",
    "floor_price",
    "money",
    "needed_until",
    "price_cap",
    "usable_documents",
    "MAX_LISTED",
]


# -- entry points ------------------------------------------------------------------------------

def context(session: Session, task: Task, declaration: Declaration,
            lines: list[DeclarationLine] | None = None) -> Context:
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    lines = lines if lines is not None else declaration_lines(session, declaration.id or 0)
    skus = [line.sku for line in lines]
    products = {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(skus)))}
    categories = {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.sku.in_(skus), ProductCategory.platform == campaign.platform))}
    return Context(session, campaign, rules.effective(session, campaign), declaration,
                   products, categories)


def check(session: Session, task: Task, declaration: Declaration) -> list[Violation]:
    """Every violation of the declaration, errors first (for cards and the guard)."""
    return evaluate(session, task, declaration)[1]


def evaluate(session: Session, task: Task,
             declaration: Declaration) -> tuple[rules.RuleSet, list[Violation]]:
    """The rules applied and the violations found."""
    lines = declaration_lines(session, declaration.id or 0)
    ctx = context(session, task, declaration, lines)
    out: list[Violation] = []
    for line in lines:
        product = ctx.products.get(line.sku)
        if product is None:
            out.append(Violation("data_pool", "pool", "sku", line.sku, "cv.rule.unknown_sku",
                                 "cv.fix.import", line.sku))
            continue
        for rule in ctx.ruleset.rules:
            fn = LINE_CHECKS.get(rule.get("kind", ""))
            if fn is not None:
                out += fn(ctx, rule, line, product)
        out += _red_line(line, product)
    out += _documents(ctx) + _note(ctx)
    return ctx.ruleset, sorted(out, key=lambda v: v.severity != "error")


def errors(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.severity == "error"]


def waived(session: Session, task_id: int, version: int) -> set[str]:
    """Violation keys a manager/legal has overridden for this declaration version."""
    keys: set[str] = set()
    for event in session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action == "compliance_override")):
        if (event.detail or {}).get("declaration") == version:
            keys.update((event.detail or {}).get("keys", []))
    return keys


def record_override(session: Session, task: Task, declaration: Declaration, actor: Actor,
                    comment: str | None, violations: list[Violation], event_id: str | None,
                    action: str) -> None:
    """Check the overrider's role and reason, then write the audit event."""
    if not actor.has_any(OVERRIDE_ROLES):
        raise Forbidden("cv.override_forbidden", roles=roles(OVERRIDE_ROLES))
    if not (comment or "").strip():
        raise Invalid("err.reason_required",
                      example=Term.of(f"example.override_{action}", task_id=task.id))
    session.add(AuditEvent(
        task_id=task.id, actor=actor.name, action="compliance_override", event_id=event_id,
        detail={"declaration": declaration.version, "for": action, "comment": comment,
                "keys": [v.key for v in violations],
                "violations": [v.as_dict("en") for v in violations]}))
    session.flush()


def precheck(session: Session, task: Task, req: ActionRequest) -> None:
    """Guard for ``request_approval`` and ``submit``."""
    transition = lifecycle.TRANSITIONS.get(req.action)
    if transition is not None and task.state not in transition.sources:
        return  # the lifecycle explains why this action is not possible now
    declaration = latest_declaration(session, task.id or 0)
    if declaration is None:
        return  # the action itself says "fill the declaration first"
    ruleset, found = evaluate(session, task, declaration)
    found = errors(found)
    if not found:
        return
    skip = waived(session, task.id or 0, declaration.version)
    open_ = [v for v in found if v.key not in skip]
    if not open_:
        return
    if req.payload.get("override"):
        record_override(session, task, declaration, req.actor, req.comment, open_,
                        req.event_id, req.action)
        return
    raise ComplianceBlocked(task.id or 0, req.action, ruleset, open_)
