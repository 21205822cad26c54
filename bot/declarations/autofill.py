"""Declarations: which SKUs, at what promo price and stock, for one task.

``autofill`` fills a new declaration version from the data pool so that it passes the
campaign's effective rules (``bot.declarations.rules``): eligible SKUs by category and stock, a promo
price under the discount and "lowest in N days" caps, promo stock inside the stock red
line, and the required unexpired documents attached. ``edit`` changes one line from the
chat card or the console.
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, select

from bot.core import lifecycle, outbox
from bot.core.actions import ActionRequest, handles
from bot.core.actors import Actor
from bot.core.errors import Forbidden, Invalid, NotFound
from bot.core.i18n import Term
from bot.declarations import compliance, numbers, rules
from storage.models import AuditEvent, Campaign, Declaration, DeclarationLine, Product, Task
from storage.models_data import ProductCategory
from storage.queries import declaration_lines, latest_declaration

DEFAULT_DISCOUNT = Decimal("0.10")
EDITABLE_STATES = {"claimed", "drafting"}
MAX_PRICE = Decimal("100000000")
MAX_STOCK = 10_000_000



def suggested_price(list_price: Decimal, min_discount: Decimal) -> Decimal:
    """The highest price that still meets the minimum discount, rounded down to 0.10."""
    return compliance.floor_price(list_price * (1 - max(min_discount, Decimal("0"))))


def platform_categories(session: Session, platform: str, skus: list[str]) -> dict[str, str]:
    return {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.sku.in_(skus), ProductCategory.platform == platform))}


def eligible_products(session: Session, campaign: Campaign,
                      ruleset: rules.RuleSet | None = None) -> list[Product]:
    """Products the campaign takes: category rules, stock above the minimum, a list price,
    and (when required) a valid brand authorisation for the product's brand."""
    ruleset = ruleset or rules.effective(session, campaign)
    products = [p for p in session.exec(select(Product).where(Product.stock > 0)
                                        .order_by(Product.sku)) if p.list_price is not None]
    cats = platform_categories(session, campaign.platform, [p.sku for p in products])
    min_stock = int(ruleset.first("min_stock").get("min") or 0)
    until = compliance.needed_until(campaign)
    needs_auth = any("brand_authorisation" in [rules.doc_kind(k) for k in r.get("required") or []]
                     for r in ruleset.of_kind("documents"))
    authorised: dict[str, bool] = {}
    out = []
    for p in products:
        category = cats.get(p.sku) or p.category
        if any(compliance.category_refused(r, category) for r in ruleset.of_kind("category")):
            continue
        if p.stock - p.safety_stock < max(min_stock, 1):
            continue
        if needs_auth and p.brand:
            if p.brand not in authorised:
                authorised[p.brand] = bool(compliance.usable_documents(
                    session, "brand_authorisation", p.brand, until))
            if not authorised[p.brand]:
                continue
        out.append(p)
    return out


def autofill(session: Session, task: Task, actor: Actor) -> Declaration:
    """A new declaration version pre-filled from the data pool."""
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    ruleset = rules.effective(session, campaign)
    previous = latest_declaration(session, task.id or 0)
    declaration = Declaration(
        task_id=task.id or 0, version=(previous.version + 1) if previous else 1,
        created_by=actor.user_id, note=previous.note if previous else "",
    )
    session.add(declaration)
    session.flush()
    products = eligible_products(session, campaign, ruleset)
    ctx = compliance.Context(session, campaign, ruleset, declaration,
                             {p.sku: p for p in products},
                             platform_categories(session, campaign.platform,
                                                 [p.sku for p in products]))
    price_rules = ruleset.of_kind("price") or [{"id": "default", "min_discount": DEFAULT_DISCOUNT}]
    min_stock = int(ruleset.first("min_stock").get("min") or 0)
    for product in products:
        assert product.list_price is not None
        line = DeclarationLine(declaration_id=declaration.id or 0, sku=product.sku,
                               list_price=product.list_price)
        caps = [c for c in (compliance.price_cap(ctx, r, line, product) for r in price_rules)
                if c is not None]
        cap = min(caps) if caps else product.list_price * (1 - DEFAULT_DISCOUNT)
        promo = compliance.floor_price(cap)
        if promo <= 0:
            continue
        available = product.stock - product.safety_stock
        line.promo_price = promo
        line.promo_stock = max(min_stock, min(available, max(min_stock, available // 2)))
        session.add(line)
    docs: list[int] = []
    for kind, brand in compliance.documents_needed(ctx):
        found = compliance.usable_documents(session, kind, brand, compliance.needed_until(campaign))
        if found and found[0].id not in docs:
            docs.append(found[0].id or 0)
    declaration.documents = docs
    session.add(declaration)
    session.flush()
    return declaration


def current(session: Session, task_id: int) -> tuple[Declaration | None, list[DeclarationLine]]:
    declaration = latest_declaration(session, task_id)
    if declaration is None:
        return None, []
    return declaration, declaration_lines(session, declaration.id or 0)


def typed_value(field: str, raw: object) -> Decimal | int:
    """A promo price or stock as a person typed it (chat, console, REST), through the one
    number parser (``bot.declarations.numbers``); refused with the reason in their language."""
    try:
        if field == "price":
            return numbers.to_decimal(raw, positive=True, maximum=MAX_PRICE)
        return numbers.to_int(raw, maximum=MAX_STOCK)
    except numbers.NumberRefused as exc:
        raise Invalid("decl.bad_value", field=Term(f"decl.field.{field}"), value=str(raw)[:20],
                      why=exc.reason()) from None


def edit(session: Session, task: Task, actor: Actor, sku: str,
         changes: dict[str, str]) -> DeclarationLine | None:
    """Change one line (price, stock) or remove it; audited, the card refreshes."""
    if task.state not in EDITABLE_STATES:
        raise Invalid("decl.not_editable", task_id=task.id)
    if not actor.has_any(lifecycle.STAFF) or (
            task.claimed_by != actor.user_id and "manager" not in actor.roles):
        raise Forbidden("err.not_claimant", task_id=task.id, who=lifecycle._who(session, task.claimed_by))
    declaration, lines = current(session, task.id or 0)
    line = next((ln for ln in lines if ln.sku.lower() == sku.lower()), None)
    if declaration is None or line is None:
        raise NotFound("decl.no_line", sku=sku[:64])
    before = {"promo_price": str(line.promo_price), "promo_stock": line.promo_stock}
    if changes.get("remove"):
        session.delete(line)
        result = None
    else:
        if "price" in changes:
            line.promo_price = Decimal(typed_value("price", changes["price"]))
        if "stock" in changes:
            line.promo_stock = int(typed_value("stock", changes["stock"]))
        session.add(line)
        result = line
    session.add(AuditEvent(task_id=task.id, actor=actor.name, action="edit_declaration",
                           detail={"declaration": declaration.version, "sku": sku,
                                   "before": before, "changes": changes}))
    session.flush()
    lifecycle.touch(session, task.id or 0)
    task = session.get(Task, task.id, populate_existing=True) or task
    campaign = session.get(Campaign, task.campaign_id)
    if campaign is not None:
        outbox.enqueue_task_card(session, task, campaign.platform)
    return result


@handles("draft")
def draft(session: Session, task: Task, req: ActionRequest) -> lifecycle.Outcome:
    """Drafting fills the declaration from the data pool the first time, after a platform
    rejection, or when asked to refill."""
    rejected_before = task.state == "platform_rejected"
    outcome = lifecycle.apply(session, task.id or 0, req.action, req.actor, comment=req.comment,
                              expected_version=req.version, event_id=req.event_id)
    declaration, _ = current(session, task.id or 0)
    if declaration is None or rejected_before or req.payload.get("refill"):
        autofill(session, task, req.actor)
    return outcome
