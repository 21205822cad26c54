"""Scenarios for the decision-maker: two or three ways to take part, side by side.

For a task's declaration: **as declared** (when its prices differ from the minimum), the
**platform's minimum** (the highest price every price rule allows, as auto-fill picks it),
a **deeper** price (that minimum less ``scenarios.deeper_extra_discount`` of the list price,
default 10 points, never under the brand's floor) and **skip**. Each with expected units and
an interval, margin after fees, stock left against the red line (safety stock), the budget
it uses and its risks.

The units come from ``forecast()``: ``simple_estimate`` until a better forecast replaces it
(``set_forecast``, part 2). It is deliberately simple and says what it used:

- a **base**: the median promo stock of this SKU's accepted lines on this platform in past
  campaigns × the sell-through ``demand.sell_through`` (default 0.6) — or, with no past
  result, the stock declared now × that sell-through;
- the **price response**: base × (price ÷ reference)^``demand.elasticity`` (default −2),
  the reference being the median past promo price, or the platform's minimum price;
- an **interval** of ±50 % with no past result, ±30 % with one or two, ±20 % with three or
  more; never more than the promo stock.

The budget is what the shop gives away on the units expected: (list − promo price + the
shop-funded discounts) × units.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from sqlmodel import Session, select

from bot.core import views
from bot.core.i18n import Term, t
from bot.declarations import compliance
from bot.insight import guards
from bot.insight.discounts import ZERO, joined, yuan
from bot.insight.margin import Deal, UnitMargin, deal
from cards.model import CardField
from storage.models import Campaign, Declaration, DeclarationLine, Task

DEFAULT_DISCOUNT = Decimal("0.10")  # with no price rule at all (as auto-fill)


@dataclass(frozen=True)
class Estimate:
    low: int
    mid: int
    high: int
    basis: str  # history | declared
    past: int = 0  # past results used


Forecast = Callable[[Session, Deal, str, Decimal, Decimal, int], Estimate]


def past_results(session: Session, found: Deal, sku: str) -> list[tuple[Decimal, int]]:
    """(promo price, promo stock) of this SKU's accepted lines on this platform, elsewhere."""
    rows = session.exec(select(DeclarationLine.promo_price, DeclarationLine.promo_stock)
                        .join(Declaration, Declaration.id == DeclarationLine.declaration_id)
                        .join(Task, Task.id == Declaration.task_id)
                        .join(Campaign, Campaign.id == Task.campaign_id)
                        .where(DeclarationLine.sku == sku, DeclarationLine.result == "accepted",
                               Campaign.platform == found.campaign.platform,
                               Task.id != found.task.id)).all()
    return [(price, stock) for price, stock in rows if price and stock > 0]


def simple_estimate(session: Session, found: Deal, sku: str, price: Decimal,
                    reference: Decimal, cap: int) -> Estimate:
    """Expected units of ``sku`` at ``price`` (see the module's text), at most ``cap``."""
    if cap <= 0 or price <= 0:
        return Estimate(0, 0, 0, "declared")
    sell = found.policy.knob("demand", "sell_through", "0.6")
    elasticity = found.policy.knob("demand", "elasticity", "-2")
    past = past_results(session, found, sku)
    if past:
        base = Decimal(statistics.median(s for _, s in past)) * sell
        reference = Decimal(statistics.median(p for p, _ in past))
        spread = Decimal("0.3") if len(past) < 3 else Decimal("0.2")
    else:
        base, spread = Decimal(cap) * sell, Decimal("0.5")
    factor = Decimal(str(math.pow(float(price / reference), float(elasticity)))) \
        if reference > 0 else Decimal(1)
    mid = min(cap, int((base * factor).to_integral_value()))
    low = int((mid * (1 - spread)).to_integral_value(rounding=ROUND_DOWN))
    high = min(cap, math.ceil(mid * (1 + spread)))
    return Estimate(low, mid, high, "history" if past else "declared", len(past))


_forecast: Forecast = simple_estimate
_explain: Callable[[Deal, list, str | None], str] | None = None


def forecast() -> Forecast:
    return _forecast


def set_forecast(fn: Forecast | None,
                 explain: Callable[[Deal, list, str | None], str] | None = None) -> None:
    """Replace the estimate (a real forecast) and, optionally, the line that says what it
    used (``explain(deal, options, lang)``); None puts ``simple_estimate`` back."""
    global _forecast, _explain
    _forecast = fn or simple_estimate
    _explain = explain if fn is not None else None


@dataclass
class OptionLine:
    sku: str
    list_price: Decimal | None
    price: Decimal
    promo_stock: int
    estimate: Estimate
    unit: UnitMargin
    stock: int
    in_transit: int
    safety_stock: int

    @property
    def left(self) -> int:
        """Stock left after the expected units (in-transit not counted)."""
        return self.stock - self.estimate.mid


@dataclass
class Option:
    code: str  # declared, minimum, deeper, skip
    lines: list[OptionLine] = field(default_factory=list)
    risks: list[tuple[str, dict]] = field(default_factory=list)  # (catalog key, params)

    def units(self) -> tuple[int, int, int]:
        return (sum(x.estimate.low for x in self.lines), sum(x.estimate.mid for x in self.lines),
                sum(x.estimate.high for x in self.lines))

    def margin(self) -> Decimal | None:
        known = [x.unit.margin * x.estimate.mid for x in self.lines if x.unit.margin is not None]
        return sum(known, ZERO) if known else (None if self.lines else ZERO)

    def revenue(self) -> Decimal:
        return sum((x.price * x.estimate.mid for x in self.lines), ZERO)

    def budget(self) -> Decimal:
        return sum(((max((x.list_price or x.price) - x.price, ZERO) + x.unit.shop_funded)
                    * x.estimate.mid for x in self.lines), ZERO)

    def tightest(self) -> OptionLine | None:
        return min(self.lines, key=lambda x: x.left - x.safety_stock, default=None)

    def discount(self) -> Decimal | None:
        listed = sum((x.list_price * x.promo_stock for x in self.lines if x.list_price), ZERO)
        paid = sum((x.price * x.promo_stock for x in self.lines if x.list_price), ZERO)
        return (1 - paid / listed) if listed else None


def _minimum(found: Deal, ctx: compliance.Context, line: DeclarationLine) -> Decimal | None:
    product = found.products.get(line.sku)
    list_price = line.list_price or (product.list_price if product else None)
    if product is None or not list_price:
        return line.promo_price
    rules = ctx.ruleset.of_kind("price") or [{"id": "default", "min_discount": DEFAULT_DISCOUNT}]
    caps = [c for c in (compliance.price_cap(ctx, r, line, product) for r in rules)
            if c is not None]
    price = compliance.floor_price(min(caps) if caps else list_price * (1 - DEFAULT_DISCOUNT))
    return price if price > 0 else None


def _deeper(found: Deal, line: DeclarationLine, minimum: Decimal) -> Decimal:
    product = found.products.get(line.sku)
    list_price = line.list_price or (product.list_price if product else None) or minimum
    extra = found.policy.knob("scenarios", "deeper_extra_discount", str(DEFAULT_DISCOUNT))
    price = compliance.floor_price(minimum - list_price * extra)
    floor = found.policy.floor(product) if product else None
    if floor is not None and price < floor:
        price = min(minimum, floor)
    return max(price, Decimal("0.10"))


def _option(session: Session, found: Deal, code: str, prices: dict[str, Decimal],
            references: dict[str, Decimal], others: dict) -> Option:
    option = Option(code)
    estimate = forecast()
    flagged: dict[str, list[str]] = {}
    for line in found.lines:
        price = prices.get(line.sku)
        product = found.products.get(line.sku)
        if price is None or product is None:
            continue
        guess = estimate(session, found, line.sku, price, references.get(line.sku, price),
                         line.promo_stock)
        option.lines.append(OptionLine(line.sku, line.list_price or product.list_price, price,
                                       line.promo_stock, guess, found.unit(line.sku, price),
                                       product.stock, product.in_transit, product.safety_stock))
        probe = DeclarationLine(declaration_id=0, sku=line.sku, list_price=line.list_price,
                                promo_price=price, promo_stock=line.promo_stock)
        for f in guards.stacking(found, probe) + guards.cross_channel(session, found, others,
                                                                      probe):
            flagged.setdefault(f.kind, []).append(line.sku)
        if product.stock - guess.high < product.safety_stock:
            flagged.setdefault("red_line", []).append(line.sku)
    for kind, skus in flagged.items():
        option.risks.append((f"deal.risk.{kind}", {"skus": list(dict.fromkeys(skus))}))
    margin = option.margin()
    if margin is not None and margin < 0:
        option.risks.append(("deal.risk.negative", {}))
    return option


def scenarios(session: Session, task: Task,
              declaration: Declaration | None = None) -> tuple[Deal | None, list[Option]]:
    """The options for the task's declaration, side by side (none without a declaration)."""
    found = deal(session, task, declaration)
    if found is None or not found.lines:
        return found, []
    ctx = compliance.context(session, task, found.declaration, found.lines)
    declared = {x.sku: x.promo_price for x in found.lines if x.promo_price}
    minimum = {x.sku: p for x in found.lines if (p := _minimum(found, ctx, x)) is not None}
    deeper = {x.sku: _deeper(found, x, minimum[x.sku]) for x in found.lines if x.sku in minimum}
    others = guards.elsewhere(session, found)
    options = []
    if declared and declared != minimum:
        options.append(_option(session, found, "declared", declared, minimum, others))
    options.append(_option(session, found, "minimum", minimum, minimum, others))
    if deeper != minimum:
        options.append(_option(session, found, "deeper", deeper, minimum, others))
    options.append(Option("skip", risks=[("deal.risk.skip", {})]))
    return found, options


# -- shown: the card's compact table, the command, the API -----------------------------------------

def _money(value: Decimal | None) -> str:
    return yuan(value)


def risk_texts(option: Option, lang: str | None) -> list[str]:
    return [t(key, lang, **{k: joined(v, lang) if isinstance(v, list) else v
                            for k, v in params.items()}) for key, params in option.risks]


def row_text(option: Option, lang: str | None) -> str:
    name = t(f"deal.s.option.{option.code}", lang)
    if option.code == "skip":
        return t("deal.s.row_skip", lang, name=name)
    low, mid, high = option.units()
    tight = option.tightest()
    margin = option.margin()
    revenue = option.revenue()
    risks = joined(risk_texts(option, lang), lang) or \
        t("deal.s.no_risk", lang)
    return t("deal.s.row", lang, name=name,
             off="—" if option.discount() is None else f"{option.discount():.0%}",
             mid=mid, low=low, high=high, margin=_money(margin),
             rate="—" if margin is None or not revenue else f"{margin / revenue:.0%}",
             stock=Term.of("deal.s.stock", sku=tight.sku, left=tight.left,
                           red=tight.safety_stock, transit=tight.in_transit) if tight else "—",
             budget=_money(option.budget()), risks=risks)


def basis_text(found: Deal, options: list[Option], lang: str | None) -> str:
    """What the estimate used: past results for how many SKUs, the sell-through, elasticity
    (or what a forecast that replaced the estimate says about itself)."""
    if _explain is not None:
        return _explain(found, options, lang)
    sell = found.policy.knob("demand", "sell_through", "0.6")
    elasticity = found.policy.knob("demand", "elasticity", "-2")
    skus = {x.sku for o in options for x in o.lines}
    known = {x.sku for o in options for x in o.lines if x.estimate.basis == "history"}
    return t("deal.s.basis", lang, n=len(known), total=len(skus), sell=f"{sell:.0%}",
             e=f"{elasticity:+}")


def card_fields(session: Session, task: Task, declaration: Declaration | None,
                lang: str) -> list[CardField]:
    """The approval card's scenarios: one line per option, and what the estimate used."""
    found, options = scenarios(session, task, declaration)
    if found is None or not options:
        return []
    lines = [f"{chr(ord('A') + i)} {row_text(o, lang)}" for i, o in enumerate(options)]
    lines.append(basis_text(found, options, lang))
    return [CardField(label=t("deal.card.scenarios", lang), value="\n".join(lines),
                      short=False)]


def as_dict(found: Deal, options: list[Option], lang: str | None = "en") -> dict:
    """The scenarios as JSON (``GET /api/tasks/{id}/scenarios``); money as strings."""
    def line(x: OptionLine) -> dict:
        return {"sku": x.sku, "price": str(x.price), "list_price": str(x.list_price or ""),
                "promo_stock": x.promo_stock, "units": {"low": x.estimate.low,
                                                        "mid": x.estimate.mid,
                                                        "high": x.estimate.high},
                "basis": x.estimate.basis, "past_results": x.estimate.past,
                "unit_margin": None if x.unit.margin is None else str(x.unit.margin),
                "paid": str(x.unit.paid), "commission": str(x.unit.commission),
                "payment_fee": str(x.unit.payment), "shipping": str(x.unit.shipping),
                "stock": x.stock, "in_transit": x.in_transit, "safety_stock": x.safety_stock,
                "stock_left": x.left}

    out = []
    for o in options:
        low, mid, high = o.units()
        margin = o.margin()
        out.append({"code": o.code, "name": t(f"deal.s.option.{o.code}", lang),
                    "units": {"low": low, "mid": mid, "high": high},
                    "margin": None if margin is None else str(margin),
                    "revenue": str(o.revenue()), "budget": str(o.budget()),
                    "risks": risk_texts(o, lang),
                    "lines": [line(x) for x in o.lines]})
    return {"task_id": found.task.id, "declaration_version": found.declaration.version,
            "platform": found.campaign.platform, "fees_version": found.table.version,
            "options": out}


views.section("approval", order=30)(card_fields)
