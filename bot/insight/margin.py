"""Margin at the promo price, after the platform's fees and the discounts a buyer gets.

For one unit sold at the promo price ``P`` in a basket worth ``B`` (default ``P`` × quantity):

- each discount's **share** of the unit: an order-level one (shop coupon, 满减, 跨店满减) is
  spread over the basket in proportion to price, ``amount(B) × P / B``, where ``amount`` is
  ``off`` once the basket reaches the threshold (``满300减50``) or ``off`` per threshold
  reached (``每满300减50``); a per-unit one is ``P × rate`` (``95折``) or ``off`` (a platform
  subsidy of ¥5 a unit). Of the discounts in one exclusive group (one shop coupon per
  order) the largest applies. Shares never add up to more than ``P``.
- **paid** (what the buyer pays) = ``P`` − every share;
  **revenue** = paid + the shares the platform funds (it pays them back to the shop);
- **commission** = revenue × commission rate; **payment fee** = paid × payment rate;
  **shipping** = the parcel cost per order ÷ the units of this SKU in it;
- **margin** = revenue − commission − payment fee − shipping − cost; its **rate** is
  margin ÷ ``P`` (as the approval policy's ``margin_below``).

Money is ``Decimal``: every share and fee is rounded to the cent, half up (``ROUND_HALF_UP``),
per unit, before it is added; totals are per-unit cents × units, so a table computed by hand
line by line gives the same cents. Rates keep four places (half up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlmodel import Session, select

from bot.core import views
from bot.core.i18n import Term, platform_name, t
from bot.core.i18n import Terms as Words
from bot.insight import fees, pricing
from bot.insight.discounts import ZERO, Discount, Terms, cents, yuan
from bot.insight.fees import Fees, FeeTable
from bot.insight.pricing import PricingPolicy
from cards.model import CardField
from storage.models import Campaign, Declaration, DeclarationLine, Platform, Product, Task
from storage.models_data import ProductCategory
from storage.queries import declaration_lines, latest_declaration

RATE = Decimal("0.0001")


@dataclass(frozen=True)
class UnitMargin:
    price: Decimal
    applied: tuple[tuple[Discount, Decimal], ...]  # (discount, its share of the unit)
    paid: Decimal
    revenue: Decimal
    commission: Decimal
    payment: Decimal
    shipping: Decimal
    cost: Decimal | None
    margin: Decimal | None

    @property
    def rate(self) -> Decimal | None:
        if self.margin is None or not self.price:
            return None
        return (self.margin / self.price).quantize(RATE, rounding=ROUND_HALF_UP)

    @property
    def shop_funded(self) -> Decimal:
        return sum((s for d, s in self.applied if d.funded_by == "shop"), ZERO)


def unit_margin(price: Decimal, cost: Decimal | None, rates: Fees,
                discounts: list[Discount] | tuple[Discount, ...] = (), *, quantity: int = 1,
                basket: Decimal | None = None) -> UnitMargin:
    """One unit's margin at ``price`` when ``quantity`` units of it are bought (the basket
    is worth ``basket`` when other items fill it, else price × quantity)."""
    quantity = max(1, int(quantity))
    basket = basket if basket is not None else price * quantity
    best: dict[str, tuple[Discount, Decimal]] = {}
    shares: list[tuple[Discount, Decimal]] = []
    for d in discounts:
        share = d.share(price, basket)
        if share <= 0:
            continue
        if not d.group:
            shares.append((d, share))
        elif d.group not in best or share > best[d.group][1]:
            best[d.group] = (d, share)
    shares += list(best.values())
    applied, left = [], price
    for d, share in shares:
        share = min(share, left)
        left -= share
        applied.append((d, share))
    paid = left
    revenue = paid + sum((s for d, s in applied if d.funded_by == "platform"), ZERO)
    commission = cents(revenue * rates.commission)
    payment = cents(paid * rates.payment)
    shipping = cents(rates.shipping / quantity)
    margin = None if cost is None else revenue - commission - payment - shipping - cost
    return UnitMargin(price, tuple(applied), paid, revenue, commission, payment, shipping,
                      cost, margin)


def products_of(session: Session, skus: list[str]) -> dict[str, Product]:
    return {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(skus)))} \
        if skus else {}


# -- a declaration -------------------------------------------------------------------------------

@dataclass
class Deal:
    """A task's declaration with what its margin needs: the campaign, lines, products, their
    categories on the platform, the fee table, the buyer's discounts and the pricing policy."""

    task: Task
    campaign: Campaign
    declaration: Declaration
    lines: list[DeclarationLine]
    products: dict[str, Product]
    categories: dict[str, str]
    table: FeeTable
    terms: Terms
    policy: PricingPolicy
    cache: dict = field(default_factory=dict)  # what the guards looked up once per deal

    def fees(self, sku: str) -> Fees:
        product = self.products.get(sku)
        return self.table.for_categories(self.categories.get(sku),
                                         product.category if product else "").with_campaign(
            self.campaign.requirements)

    def unit(self, sku: str, price: Decimal, *, quantity: int = 1,
             basket: Decimal | None = None,
             discounts: list[Discount] | tuple[Discount, ...] | None = None) -> UnitMargin:
        product = self.products.get(sku)
        return unit_margin(price, product.cost if product else None, self.fees(sku),
                           self.terms.discounts if discounts is None else discounts,
                           quantity=quantity, basket=basket)


def deal(session: Session, task: Task, declaration: Declaration | None = None) -> Deal | None:
    """The task's (latest, or the given) declaration as a ``Deal``; None without one."""
    declaration = declaration or latest_declaration(session, task.id or 0)
    campaign = session.get(Campaign, task.campaign_id)
    if declaration is None or campaign is None:
        return None
    lines = declaration_lines(session, declaration.id or 0)
    skus = [line.sku for line in lines]
    categories = {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.sku.in_(skus), ProductCategory.platform == campaign.platform))} \
        if skus else {}
    policy = pricing.current()
    return Deal(task, campaign, declaration, lines, products_of(session, skus), categories,
                fees.table(session, campaign.platform), pricing.terms(campaign, policy), policy)


@dataclass(frozen=True)
class LineMargin:
    sku: str
    promo_stock: int
    unit: UnitMargin | None  # None: the line has no promo price

    @property
    def total(self) -> Decimal | None:
        if self.unit is None or self.unit.margin is None:
            return None
        return self.unit.margin * self.promo_stock


def line_margins(found: Deal) -> list[LineMargin]:
    """Each line's margin for one unit bought on its own, at its promo price."""
    return [LineMargin(line.sku, line.promo_stock,
                       found.unit(line.sku, line.promo_price) if line.promo_price else None)
            for line in found.lines]


def thinnest(margins: list[LineMargin]) -> LineMargin | None:
    known = [m for m in margins if m.unit is not None and m.unit.rate is not None]
    return min(known, key=lambda m: m.unit.rate, default=None)  # type: ignore[union-attr]


def total(margins: list[LineMargin]) -> Decimal | None:
    """The margin if every line's promo stock sells (None when no line has a cost)."""
    known = [m.total for m in margins if m.total is not None]
    return sum(known, ZERO) if known else None


def _pct(rate: Decimal | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def card_fields(session: Session, task: Task, declaration: Declaration | None,
                lang: str) -> list[CardField]:
    """The approval card's "margin after fees": the total if the promo stock sells, the
    thinnest line per unit, and the fee table it used (platform, rules version)."""
    found = deal(session, task, declaration)
    if found is None or not found.lines:
        return []
    margins = line_margins(found)
    thin, whole = thinnest(margins), total(margins)
    platform = session.get(Platform, found.campaign.platform)
    name = platform_name(found.campaign.platform, lang, platform.name if platform else None)
    rates = found.fees(thin.sku) if thin is not None else None
    if thin is None or thin.unit is None or rates is None:
        text = t("deal.m.no_cost", lang)
    else:
        text = t("deal.m.summary", lang, total=yuan(whole),
                 sku=thin.sku, unit=yuan(thin.unit.margin), rate=_pct(thin.unit.rate),
                 commission=_pct(rates.commission), payment=_pct(rates.payment),
                 shipping=yuan(rates.shipping), platform=name, version=found.table.version)
    if rates is not None and rates.campaign:
        text += "\n" + t("deal.m.campaign_fees", lang, fees=Words(tuple(
            Term(f"deal.fee.{fee}") for fee in rates.campaign)))
    elif not found.table.configured:
        text += "\n" + t("deal.m.no_fees", lang, platform=name)
    return [CardField(label=t("deal.card.margin", lang), value=text, short=False)]


views.section("approval", order=10)(card_fields)
