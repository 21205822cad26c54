"""Declarations: which SKUs, at what promo price and stock, for one task.

The foundation fills a declaration from the product pool with the campaign's own
requirements (categories, minimum discount, minimum stock). The rules knowledge base and
compliance pre-check build on this module.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from sqlmodel import Session, select

from bot.actors import Actor
from cards.builders import declaration_lines, latest_declaration
from storage.models import Campaign, Declaration, DeclarationLine, Product, Task

DEFAULT_DISCOUNT = Decimal("0.10")


def suggested_price(list_price: Decimal, min_discount: Decimal) -> Decimal:
    """The highest price that still meets the minimum discount, rounded down to 0.10."""
    price = list_price * (1 - max(min_discount, Decimal("0")))
    return price.quantize(Decimal("0.1"), rounding=ROUND_DOWN).quantize(Decimal("0.01"))


def eligible_products(session: Session, campaign: Campaign) -> list[Product]:
    req = campaign.requirements or {}
    query = select(Product).where(Product.stock > 0).order_by(Product.sku)
    categories = req.get("categories") or []
    if categories:
        query = query.where(Product.category.in_(categories))
    min_stock = int(req.get("min_stock") or 0)
    return [p for p in session.exec(query) if p.stock - p.safety_stock >= min_stock]


def autofill(session: Session, task: Task, actor: Actor) -> Declaration:
    """A new declaration version pre-filled from the data pool."""
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    req = campaign.requirements or {}
    min_discount = Decimal(str(req.get("min_discount") or DEFAULT_DISCOUNT))
    min_stock = int(req.get("min_stock") or 0)
    previous = latest_declaration(session, task.id or 0)
    declaration = Declaration(
        task_id=task.id or 0, version=(previous.version + 1) if previous else 1,
        created_by=actor.user_id,
    )
    session.add(declaration)
    session.flush()
    for product in eligible_products(session, campaign):
        if product.list_price is None:
            continue
        available = product.stock - product.safety_stock
        session.add(DeclarationLine(
            declaration_id=declaration.id or 0, sku=product.sku,
            list_price=product.list_price,
            promo_price=suggested_price(product.list_price, min_discount),
            promo_stock=max(min_stock, min(available, max(min_stock, available // 2))),
        ))
    session.flush()
    return declaration


def current(session: Session, task_id: int) -> tuple[Declaration | None, list[DeclarationLine]]:
    declaration = latest_declaration(session, task_id)
    if declaration is None:
        return None, []
    return declaration, declaration_lines(session, declaration.id or 0)
