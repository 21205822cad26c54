"""The pricing policy (``policies/pricing.yaml``, or ``PROMOPILOT_PRICING_POLICY``): the
brand's floor prices on every channel (控价), the shop's standing discounts a buyer can stack
with a campaign, the stacking margin that counts as a loophole, and the knobs of the
scenarios' estimate. Data a team edits; see docs/insight.md."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from bot.core.errors import Invalid
from bot.core.policies import PolicyHolder
from bot.core.settings import ROOT
from bot.insight.discounts import Terms, cents, number, parse_discount
from storage.models import Campaign, Product

log = logging.getLogger(__name__)
DEFAULT_PATH = ROOT / "policies" / "pricing.yaml"


class Floors(BaseModel):
    brands: dict[str, dict[str, Any]] = Field(default_factory=dict)  # {min_ratio_of_list|min_price}
    skus: dict[str, Any] = Field(default_factory=dict)  # SKU → the lowest price anywhere


class PricingPolicy(BaseModel):
    floors: Floors = Field(default_factory=Floors)
    stacking: dict[str, Any] = Field(default_factory=lambda: {"min_margin": 0})
    shop_discounts: dict[str, list[Any]] = Field(default_factory=dict)  # platform|"*" → entries
    demand: dict[str, Any] = Field(default_factory=dict)  # elasticity, sell_through
    scenarios: dict[str, Any] = Field(default_factory=dict)  # deeper_extra_discount

    def knob(self, section: str, name: str, default: str) -> Decimal:
        found = number((getattr(self, section) or {}).get(name, default))
        return found if found is not None else Decimal(default)

    def floor(self, product: Product) -> Decimal | None:
        """The brand's floor for this SKU on every channel (控价): the SKU's own, else the
        brand's minimum price or ratio of the list price; the highest when several apply."""
        found = []
        if product.sku in self.floors.skus:
            found.append(number(self.floors.skus[product.sku]))
        brand = self.floors.brands.get(product.brand or "") or {}
        if brand.get("min_price") is not None:
            found.append(number(brand["min_price"]))
        ratio = number(brand.get("min_ratio_of_list"))
        if ratio is not None and product.list_price:
            found.append(cents(product.list_price * ratio))
        found = [f for f in found if f is not None]
        return max(found) if found else None


def _problems(policy: PricingPolicy) -> str | None:
    for sku, value in policy.floors.skus.items():
        if number(value) is None or number(value) < 0:
            return f"floors.skus.{sku}: {value!r} is not a price"
    for brand, spec in policy.floors.brands.items():
        for name in spec:
            if name not in ("min_ratio_of_list", "min_price") or number(spec[name]) is None:
                return f"floors.brands.{brand}.{name}: use min_ratio_of_list or min_price"
    for platform, entries in policy.shop_discounts.items():
        for entry in entries or []:
            if parse_discount(entry, "shop") is None:
                return f"shop_discounts.{platform}: unreadable discount {str(entry)[:60]!r}"
    return None


def load(path: Path | None = None) -> PricingPolicy:
    path = path or Path(os.environ.get("PROMOPILOT_PRICING_POLICY") or DEFAULT_PATH)
    if not path.exists():
        log.warning("no pricing policy; no floors or shop discounts", extra={"path": str(path)})
        return PricingPolicy()
    try:
        policy = PricingPolicy.model_validate(yaml.safe_load(path.read_text("utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise Invalid("deal.bad_policy", file=path.name, reason=str(exc)[:300]) from exc
    problem = _problems(policy)
    if problem:
        raise Invalid("deal.bad_policy", file=path.name, reason=problem)
    return policy


_holder: PolicyHolder[PricingPolicy] = PolicyHolder(load)
current = _holder.current
use = _holder.use  # swap the policy (tests, a reload, trial weights)




def terms(campaign: Campaign, policy: PricingPolicy | None = None) -> Terms:
    """The notice's ``discounts`` (requirements) plus the shop's standing ones."""
    policy = policy or current()
    raw = (campaign.requirements or {}).get("discounts") or []
    entries = [(e, "campaign") for e in (raw if isinstance(raw, list) else [raw])]
    for key in (campaign.platform, "*"):
        entries += [(e, "shop") for e in policy.shop_discounts.get(key) or []]
    out = Terms()
    for entry, origin in entries:
        found = parse_discount(entry, origin)
        if found is None:
            out.unreadable.append(str(entry)[:80])
        else:
            out.discounts.append(found)
    return out
