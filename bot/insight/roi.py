"""ROI of campaign results per platform, campaign type and resource slot.

For a group of result rows (``campaign_results``):

- **GMV**, **fees**, units, orders, exposure and clicks are summed;
- **ROI** = GMV ÷ fees (投产比), two places, half up; none when nothing was paid;
- **margin** = Σ over the rows that name a SKU: units × the unit margin at the price realised
  (GMV ÷ units, to the cent) — part 1's ``margin.unit_margin`` with the platform's fee table
  and the SKU's cost from the pool —; rows without a SKU or a cost add nothing;
- **net** = margin − fees (what the campaign left after the slot was paid);
- **CTR** = clicks ÷ exposure, **CVR** = orders ÷ clicks (four places).

Money is ``Decimal`` and every per-unit amount is in cents before it is multiplied, so the
totals match a hand computation line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlmodel import Session, select

from bot.insight import fees as fee_tables
from bot.insight.margin import unit_margin
from storage.models import Campaign, Product, Task
from storage.models_data import ProductCategory
from storage.models_results import CampaignResult

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
RATE = Decimal("0.0001")
DIMENSIONS = ("platform", "type", "slot")


def ratio(a: Decimal | int, b: Decimal | int, places: Decimal = CENT) -> Decimal | None:
    return (Decimal(a) / Decimal(b)).quantize(places, rounding=ROUND_HALF_UP) if b else None


@dataclass
class Totals:
    key: tuple[str, ...] = ()
    exposure: int = 0
    clicks: int = 0
    orders: int = 0
    units: int = 0
    gmv: Decimal = ZERO
    fees: Decimal = ZERO
    margin: Decimal | None = None  # None: no row had a SKU with a cost
    campaigns: set[int] = field(default_factory=set)

    @property
    def roi(self) -> Decimal | None:
        return ratio(self.gmv, self.fees)

    @property
    def net(self) -> Decimal | None:
        return None if self.margin is None else self.margin - self.fees

    @property
    def net_rate(self) -> Decimal | None:
        """Net ÷ GMV: what each yuan sold left after the slot was paid."""
        return None if self.net is None or not self.gmv else ratio(self.net, self.gmv, RATE)

    @property
    def ctr(self) -> Decimal | None:
        return ratio(self.clicks, self.exposure, RATE)

    @property
    def cvr(self) -> Decimal | None:
        return ratio(self.orders, self.clicks, RATE)

    def add(self, row: CampaignResult, margin: Decimal | None) -> None:
        self.exposure += row.exposure
        self.clicks += row.clicks
        self.orders += row.orders
        self.units += row.units
        self.gmv += row.gmv
        self.fees += row.fees
        self.campaigns.add(row.campaign_id)
        if margin is not None:
            self.margin = (self.margin or ZERO) + margin

    def as_dict(self) -> dict:
        def money(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {"key": list(self.key), "campaigns": len(self.campaigns),
                "exposure": self.exposure, "clicks": self.clicks, "orders": self.orders,
                "units": self.units, "gmv": str(self.gmv), "fees": str(self.fees),
                "roi": money(self.roi), "margin": money(self.margin), "net": money(self.net),
                "ctr": money(self.ctr), "cvr": money(self.cvr)}


class Margins:
    """Unit margins at a realised price, with the pool's costs and each platform's fees
    (looked up once per SKU and platform)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.tables: dict[str, fee_tables.FeeTable] = {}
        self.products: dict[str, Product | None] = {}
        self.categories: dict[tuple[str, str], str] = {}

    def _product(self, sku: str) -> Product | None:
        if sku not in self.products:
            self.products[sku] = self.session.exec(select(Product).where(
                Product.sku == sku)).first()
        return self.products[sku]

    def of(self, row: CampaignResult) -> Decimal | None:
        """The row's margin: units × the unit margin at GMV ÷ units (None: unknown)."""
        product = self._product(row.sku) if row.sku else None
        if product is None or product.cost is None or row.units <= 0:
            return None
        if row.platform not in self.tables:
            self.tables[row.platform] = fee_tables.table(self.session, row.platform)
        if (row.sku, row.platform) not in self.categories:
            found = self.session.exec(select(ProductCategory.category).where(
                ProductCategory.sku == row.sku, ProductCategory.platform == row.platform)).first()
            self.categories[(row.sku, row.platform)] = found or ""
        rates = self.tables[row.platform].for_categories(
            self.categories[(row.sku, row.platform)], product.category)
        price = (row.gmv / row.units).quantize(CENT, rounding=ROUND_HALF_UP)
        unit = unit_margin(price, product.cost, rates)
        return None if unit.margin is None else unit.margin * row.units


def rows_in(session: Session, start: datetime | None = None, end: datetime | None = None,
            platforms: Iterable[str] | None = None, team_id: int | None = None,
            campaign_ids: Iterable[int] | None = None) -> list[tuple[CampaignResult, Campaign]]:
    """Result rows with their campaign; a window keeps campaigns whose event ended in it
    (or, without event dates, whose results were imported in it)."""
    query = select(CampaignResult, Campaign).join(
        Campaign, Campaign.id == CampaignResult.campaign_id)
    wanted = [p for p in (platforms or []) if p and p != "*"]
    if wanted:
        query = query.where(CampaignResult.platform.in_(wanted))
    if campaign_ids is not None:
        query = query.where(CampaignResult.campaign_id.in_(list(campaign_ids)))
    if team_id is not None:
        query = query.where(CampaignResult.campaign_id.in_(
            select(Task.campaign_id).where(Task.team_id == team_id)))
    out = []
    for row, campaign in session.exec(query.order_by(CampaignResult.id)):
        moment = campaign.event_end or row.imported_at
        if (start is None or moment >= start) and (end is None or moment < end):
            out.append((row, campaign))
    return out


Key = Callable[[CampaignResult, Campaign], tuple[str, ...]]
KEYS: dict[str, Key] = {
    "platform": lambda r, c: (r.platform,),
    "type": lambda r, c: (r.platform, c.type or ""),
    "slot": lambda r, c: (r.platform, r.slot or ""),
    "campaign": lambda r, c: (str(c.id),),
}


def group(session: Session, pairs: list[tuple[CampaignResult, Campaign]],
          by: str) -> list[Totals]:
    """Totals per ``by`` (platform; platform + campaign type; platform + slot; campaign)."""
    margins = Margins(session)
    out: dict[tuple[str, ...], Totals] = {}
    key_of = KEYS[by]
    for row, campaign in pairs:
        key = key_of(row, campaign)
        out.setdefault(key, Totals(key)).add(row, margins.of(row))
    return [out[k] for k in sorted(out)]


def total(session: Session, pairs: list[tuple[CampaignResult, Campaign]]) -> Totals:
    margins = Margins(session)
    whole = Totals(("*",))
    for row, _ in pairs:
        whole.add(row, margins.of(row))
    return whole


def report(session: Session, start: datetime | None = None, end: datetime | None = None,
           platforms: Iterable[str] | None = None, team_id: int | None = None) -> dict:
    """ROI per platform, per campaign type and per slot, and the total (JSON-ready)."""
    pairs = rows_in(session, start, end, platforms, team_id)
    return {**{f"by_{d}": [t.as_dict() for t in group(session, pairs, d)] for d in DIMENSIONS},
            "total": total(session, pairs).as_dict()}


def review_roi(session: Session, start: datetime, end: datetime,
               platforms: list[str] | None, team_id: int | None) -> Decimal | None:
    """The review report's ROI of a period (``bot.insight.review.ROI_SOURCES``)."""
    pairs = rows_in(session, start, end, platforms, team_id)
    return total(session, pairs).roi if pairs else None
