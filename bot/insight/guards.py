"""Guards before approval: what a price lets happen that nobody typed.

- **Stacked discounts** (薅羊毛): every discount a buyer can combine — the notice's coupons,
  满减, 跨店满减 and subsidies plus the shop's standing ones — at its worst share. A
  threshold discount is worst when other items fill the basket to exactly the threshold
  (or a multiple of it): the candidates are the promo price alone and every multiple of a
  threshold at or above it. The combination with the lowest margin, and the one with the
  lowest price paid, are checked against the stacking margin (``stacking.min_margin`` in
  ``policies/pricing.yaml``, default 0) and the brand's floor price.
- **Cross-channel balance**: a promo price under the brand's floor on every channel, or under
  another platform's price where that platform requires the lowest price on every channel
  (a 百亿补贴 declaration in the same weeks, or a platform rule with ``channels: all`` and
  its recent price), or this campaign's own lowest-price rule broken by another channel.

``error`` findings block an approver's ``approve`` until a manager, finance or an admin
accepts them with a reason (``bot.insight.acceptance``); ``warning`` findings are shown. All
of them are on the approval card.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, select

from bot.core.i18n import Term, t
from bot.declarations import rules
from bot.insight.discounts import PER_ORDER, Discount
from bot.insight.margin import Deal, UnitMargin
from storage.models import Campaign, Declaration, DeclarationLine, Platform, Task
from storage.models_data import PriceRecord
from storage.types import utcnow

log = logging.getLogger(__name__)
COMMITTED = ("in_approval", "approved", "submitting", "submitted", "in_review", "accepted",
             "running")  # another channel's prices that are decided or about to be
EXTRA_MULTIPLES = 3  # threshold multiples tried above the first one the price reaches
MAX_SHOWN = 6


@dataclass(frozen=True)
class Finding:
    kind: str  # stacking, stacking_floor, floor, loss, undercuts, not_lowest, unreadable
    sku: str
    severity: str  # error (blocks approve until accepted) | warning
    key: str  # catalog key of the text
    params: dict = field(default_factory=dict)
    combo: tuple[Discount, ...] = ()
    value: str = ""  # what was judged: an accepted risk covers this value only

    @property
    def ack_key(self) -> str:
        return f"{self.kind}:{self.sku}:{self.value}"

    def describe(self, lang: str | None) -> str:
        combo = " + ".join(d.describe(lang) for d in self.combo) or "—"
        return t(self.key, lang, sku=self.sku, combo=combo, **self.params)

    def as_dict(self, lang: str | None = "en") -> dict:
        return {"kind": self.kind, "sku": self.sku, "severity": self.severity,
                "text": self.describe(lang), "key": self.ack_key}


@dataclass(frozen=True)
class Worst:
    unit: UnitMargin
    basket: Decimal

    @property
    def combo(self) -> tuple[Discount, ...]:
        return tuple(d for d, share in self.unit.applied if share > 0)


def baskets(price: Decimal, discounts: list[Discount]) -> list[Decimal]:
    """The basket totals where a unit's discount share peaks: alone, and each threshold
    multiple from the first the price reaches."""
    found = {price}
    for d in discounts:
        if d.kind in PER_ORDER and d.threshold > 0:
            first = max(1, math.ceil(price / d.threshold))
            found.update(d.threshold * k for k in range(first, first + 1 + EXTRA_MULTIPLES))
    return sorted(b for b in found if b >= price)


def worst_cases(found: Deal, sku: str, price: Decimal) -> tuple[Worst | None, Worst | None]:
    """(the lowest margin, the lowest price paid) a buyer stacking everything can reach."""
    discounts = found.terms.discounts
    if not discounts:
        return None, None
    cases = [Worst(found.unit(sku, price, basket=b), b) for b in baskets(price, discounts)]
    cases = [c for c in cases if c.combo]
    if not cases:
        return None, None
    with_margin = [c for c in cases if c.unit.margin is not None]
    by_margin = min(with_margin, key=lambda c: c.unit.margin, default=None)  # type: ignore
    return by_margin, min(cases, key=lambda c: c.unit.paid)


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def stacking(found: Deal, line: DeclarationLine) -> list[Finding]:
    price, sku = line.promo_price, line.sku
    if not price or price <= 0:
        return []
    out: list[Finding] = []
    product = found.products.get(sku)
    floor = found.policy.floor(product) if product else None
    alone = found.unit(sku, price, discounts=())
    least = found.policy.knob("stacking", "min_margin", "0")
    if floor is not None and price < floor:
        out.append(Finding("floor", sku, "error", "deal.g.floor", {
            "price": _money(price), "floor": _money(floor)}, value=str(price)))
    if alone.margin is not None and alone.margin < least:
        out.append(Finding("loss", sku, "warning", "deal.g.loss", {
            "price": _money(price), "margin": _money(alone.margin)}, value=str(price)))
    by_margin, by_paid = worst_cases(found, sku, price)
    if by_margin is not None and by_margin.unit.margin is not None \
            and by_margin.unit.margin < least <= (alone.margin if alone.margin is not None
                                                  else least):
        out.append(Finding("stacking", sku, "error", "deal.g.stacking", {
            "paid": _money(by_margin.unit.paid), "margin": _money(by_margin.unit.margin),
            "basket": _money(by_margin.basket), "least": _money(least)},
            combo=by_margin.combo, value=f"{price}/{by_margin.unit.paid}"))
    if by_paid is not None and floor is not None and by_paid.unit.paid < floor <= price:
        out.append(Finding("stacking_floor", sku, "error", "deal.g.stacking_floor", {
            "paid": _money(by_paid.unit.paid), "floor": _money(floor),
            "basket": _money(by_paid.basket)}, combo=by_paid.combo,
            value=f"{price}/{by_paid.unit.paid}"))
    return out


# -- cross-channel balance -------------------------------------------------------------------------

def _lowest_rule(ruleset_rules: list[dict]) -> dict | None:
    """The price rule that asks for the lowest price on every channel, if any."""
    for rule in ruleset_rules:
        if rule.get("kind") == "price" and rule.get("channels") == "all":
            return rule
    return None


def _ratio(rule: dict) -> Decimal:
    return Decimal(str(rule.get("max_ratio_of_lowest", 1) or 1))


def _overlap(a: Campaign, b: Campaign) -> bool:
    """Whether two campaigns' event windows overlap (an unknown window may)."""
    a0, a1 = a.event_start or a.registration_end, a.event_end
    b0, b1 = b.event_start or b.registration_end, b.event_end
    return not ((a1 and b0 and a1 < b0) or (b1 and a0 and b1 < a0))


@dataclass
class Elsewhere:
    """A price for one SKU on another channel that a lowest-price rule cares about."""

    platform: str
    price: Decimal
    where: str  # "#12 title" or a price-history date
    lowest_rule: dict | None  # that channel asks for the lowest price everywhere
    declared: bool


def elsewhere(session: Session, found: Deal, now: datetime | None = None) -> dict[str, list[Elsewhere]]:
    """SKU → prices on other channels: their committed declarations in overlapping weeks,
    and their recent price where their standing rules ask for the lowest price everywhere."""
    skus = [line.sku for line in found.lines]
    out: dict[str, list[Elsewhere]] = {}
    if not skus:
        return out
    rows = session.exec(select(DeclarationLine, Declaration, Task, Campaign)
                        .join(Declaration, Declaration.id == DeclarationLine.declaration_id)
                        .join(Task, Task.id == Declaration.task_id)
                        .join(Campaign, Campaign.id == Task.campaign_id)
                        .where(DeclarationLine.sku.in_(skus), Task.id != found.task.id,
                               Task.state.in_(COMMITTED),
                               Campaign.platform != found.campaign.platform)
                        .order_by(Declaration.version.desc())).all()
    latest: dict[int, int] = {}
    for line, declaration, task, campaign in rows:
        if latest.setdefault(task.id or 0, declaration.version) != declaration.version:
            continue
        if line.promo_price is None or not _overlap(found.campaign, campaign):
            continue
        rule = _lowest_rule(rules.effective(session, campaign).rules)
        out.setdefault(line.sku, []).append(Elsewhere(
            campaign.platform, line.promo_price, f"#{task.id} {campaign.title[:40]}", rule, True))
    since = (now or utcnow()) - timedelta(days=30)
    standing: dict[str, dict | None] = {}
    for record in session.exec(select(PriceRecord).where(
            PriceRecord.sku.in_(skus), PriceRecord.platform != found.campaign.platform,
            PriceRecord.observed_at >= since).order_by(PriceRecord.observed_at.desc())):
        if record.platform not in standing:
            standing[record.platform] = _lowest_rule(rules.platform_rules(session,
                                                                          record.platform)[1])
        rule = standing[record.platform]
        mine = out.setdefault(record.sku, [])
        if rule is None or any(e.platform == record.platform for e in mine):
            continue  # only the newest price of a channel whose rules ask for the lowest
        mine.append(Elsewhere(record.platform, record.price, "", rule, False))
    return out


def cross_channel(session: Session, found: Deal, others: dict[str, list[Elsewhere]],
                  line: DeclarationLine) -> list[Finding]:
    price = line.promo_price
    if not price or price <= 0:
        return []
    out = []
    if "own_lowest_rule" not in found.cache:
        found.cache["own_lowest_rule"] = _lowest_rule(rules.effective(session,
                                                                      found.campaign).rules)
    own = found.cache["own_lowest_rule"]
    for other in others.get(line.sku, []):
        name = _platform(session, other.platform)
        where: object = other.where or Term("deal.g.recent_price")
        if other.lowest_rule is not None and price * _ratio(other.lowest_rule) < other.price:
            out.append(Finding("undercuts", line.sku, "warning", "deal.g.undercuts", {
                "price": _money(price), "platform": name, "other": _money(other.price),
                "where": where}, value=f"{price}/{other.platform}/{other.price}"))
        elif own is not None and other.declared and price > other.price * _ratio(own):
            out.append(Finding("not_lowest", line.sku, "warning", "deal.g.not_lowest", {
                "price": _money(price), "platform": name, "other": _money(other.price),
                "where": where}, value=f"{price}/{other.platform}/{other.price}"))
    return out


def _platform(session: Session, code: str) -> str:
    row = session.get(Platform, code)
    return row.name if row else code


def findings(session: Session, found: Deal) -> list[Finding]:
    """Every guard finding of the declaration, errors first."""
    out = [Finding("unreadable", "", "warning", "deal.g.unreadable", {"text": text},
                   value=text) for text in found.terms.unreadable]
    others = elsewhere(session, found)
    for line in found.lines:
        out += stacking(found, line) + cross_channel(session, found, others, line)
    return sorted(out, key=lambda f: f.severity != "error")
