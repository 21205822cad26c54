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
from bot.core.refusals import refused
from bot.declarations import rules
from bot.declarations.checks import (
    DECLARATION_CHECKS,
    LINE_CHECKS,
    _below_cost,
    _documents,
    _note,
    _red_line,
    available_stock,
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
    override_hint,
    override_roles,
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
    "available_stock",
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
        out += _red_line(ctx, line, product) + _below_cost(line, product)
    out += _documents(ctx) + _note(ctx)
    for extra in DECLARATION_CHECKS:
        out += extra(ctx, lines)
    return ctx.ruleset, sorted(out, key=lambda v: v.severity != "error")


def errors(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.severity == "error"]


CLEARS_OVERRIDES = ("reject", "request_changes")  # an approver sent it back: look again
EDITED_FIELDS = {"price": "promo_price", "stock": "promo_stock"}


def _edited(key: str, sku: str, fields: set[str]) -> bool:
    _, key_sku, rest = (key.split(":", 2) + ["", ""])[:3]
    return key_sku.lower() == sku and ("*" in fields or rest.split("=", 1)[0] in fields)


def waived(session: Session, task_id: int, version: int) -> set[str]:
    """Violation keys an override still covers on this declaration version. An override
    waives (rule, SKU, field, value) as it saw them: an edit of that SKU's price or stock
    ends it (even back to the same value), and so do a rejection and a request for changes."""
    keys: set[str] = set()
    for event in session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id,
            AuditEvent.action.in_(("compliance_override", "edit_declaration", *CLEARS_OVERRIDES)))
            .order_by(AuditEvent.id)):
        detail = event.detail or {}
        if event.action in CLEARS_OVERRIDES:
            keys.clear()
        elif detail.get("declaration") != version:
            continue
        elif event.action == "edit_declaration":
            changes = detail.get("changes") or {}
            fields = {"*"} if changes.get("remove") else {
                EDITED_FIELDS[c] for c in changes if c in EDITED_FIELDS}
            sku = str(detail.get("sku") or "").lower()
            keys = {k for k in keys if not _edited(k, sku, fields)}
        else:
            keys.update(detail.get("keys", []))
    return keys


def record_override(session: Session, task: Task, declaration: Declaration, actor: Actor,
                    comment: str | None, violations: list[Violation], event_id: str | None,
                    action: str, *, in_action: bool = False) -> None:
    """Check the overrider's role and reason, then write the audit event. ``in_action``: the
    override comes with the action itself (``override <id> submit``), so the overrider must
    also be someone who may do that action; otherwise it is a waiver beforehand
    (``compliance_override``). A refusal is audited too."""
    acting, _ = override_roles(action)
    if not actor.has_any(OVERRIDE_ROLES) or (in_action and not actor.has_any(acting)):
        key = "cv.override_cannot_act" if actor.has_any(OVERRIDE_ROLES) else "cv.override_refused"
        raise refused(session, Forbidden(key, mine=roles(actor.roles),
                                         action=Term(f"action.{action}"),
                                         hint=override_hint(action, task.id or 0)),
                      task_id=task.id, actor=actor, action="compliance_override",
                      state=task.state, detail={"for": action, "declaration": declaration.version,
                                                "keys": [v.key for v in violations]})
    if not (comment or "").strip():
        example = (Term.of(f"example.override_{action}", task_id=task.id) if in_action
                   else Term.of("example.compliance_override", task_id=task.id))
        raise Invalid("err.reason_required", example=example)
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
                        req.event_id, req.action, in_action=True)
        return
    raise ComplianceBlocked(task.id or 0, req.action, ruleset, open_)
