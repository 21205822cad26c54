"""The discounts a buyer may get and stack: shop coupons, 满减, 跨店满减, platform subsidies,
percent-off (``95折``) — read from a campaign notice's ``discounts`` and the shop's standing
ones in ``policies/pricing.yaml``; mappings or the Chinese texts notices use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from bot.core.i18n import normalise, t

CENT = Decimal("0.01")
ZERO = Decimal("0")
KINDS = ("coupon", "full_reduction", "cross_shop", "subsidy", "percent")
PER_ORDER = frozenset({"coupon", "full_reduction", "cross_shop"})
FUNDING = {"coupon": "shop", "full_reduction": "shop", "cross_shop": "shop",
           "subsidy": "platform", "percent": "shop"}
GROUPS = {"coupon": "coupon"}  # a buyer uses one shop coupon per order


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def yuan(value: Decimal | None) -> str:
    """Money as people read it: ``¥1,299.00``, ``-¥0.95``; ``—`` when unknown."""
    if value is None:
        return "—"
    return f"-¥{-value:,.2f}" if value < 0 else f"¥{value:,.2f}"


def joined(items: list[str], lang: str | None) -> str:
    """A list in a sentence: ``、`` between Chinese items, a comma between English ones."""
    return ("、" if normalise(lang) == "zh-CN" else ", ").join(items)


def number(value: Any) -> Decimal | None:
    """A finite Decimal from YAML/JSON/text (``5``, ``"38.50"``, ``0.05``), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        found = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    return found if found.is_finite() else None


@dataclass(frozen=True)
class Discount:
    """One discount a buyer may get: ``kind`` is coupon, full_reduction (满减), cross_shop
    (跨店满减), subsidy (the platform's, per unit) or percent (``95折``)."""

    kind: str
    off: Decimal = ZERO  # per order (coupon, 满减) or per unit (subsidy)
    threshold: Decimal = ZERO  # the basket it needs; 0 = none
    repeat: bool = False  # 每满: once per threshold reached
    rate: Decimal = ZERO  # percent off (percent; subsidy by rate)
    funded_by: str = "shop"  # shop | platform (the platform pays it back)
    group: str = ""  # at most one discount of a group per order
    origin: str = "campaign"  # campaign (the notice) | shop (policies/pricing.yaml)

    def order_amount(self, basket: Decimal) -> Decimal:
        if basket <= 0 or basket < self.threshold:
            return ZERO
        if self.repeat and self.threshold > 0:
            return self.off * int(basket // self.threshold)
        return self.off

    def share(self, price: Decimal, basket: Decimal) -> Decimal:
        """This discount's share of one unit at ``price`` in a basket worth ``basket``."""
        if self.kind in PER_ORDER:
            return cents(self.order_amount(basket) * price / basket) if basket > 0 else ZERO
        return cents(price * self.rate) if self.rate else cents(self.off)

    def describe(self, lang: str | None) -> str:
        funded = t("deal.funded.platform", lang) if self.funded_by == "platform" else ""
        if self.kind == "percent":
            text = t("deal.d.percent", lang, pct=_pct(self.rate))
        elif self.kind == "subsidy":
            text = t("deal.d.subsidy_rate", lang, pct=_pct(self.rate)) if self.rate else \
                t("deal.d.subsidy", lang, off=_plain(self.off))
        else:
            key = f"deal.d.{self.kind}{'_every' if self.repeat else ''}"
            text = t(key if self.threshold else f"deal.d.{self.kind}_plain", lang,
                     threshold=_plain(self.threshold), off=_plain(self.off))
        return text + funded


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


_REDUCTION = re.compile(r"(?P<cross>跨店)?(?P<every>每)?满\s*(?P<t>\d+(?:\.\d+)?)\s*元?\s*减\s*"
                        r"(?P<off>\d+(?:\.\d+)?)\s*元?")
_ZHE = re.compile(r"^(?P<z>\d+(?:\.\d+)?)\s*折$")
_SUBSIDY = re.compile(r"补贴\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>元|%|％)")


def _from_text(text: str, origin: str) -> Discount | None:
    """``满300减50``, ``每满300减50``, ``跨店每满300减50``, ``店铺券满99减10``, ``95折``,
    ``平台补贴5元`` / ``补贴10%``."""
    text = text.strip()
    if m := _REDUCTION.search(text):
        kind = "cross_shop" if m["cross"] else ("coupon" if "券" in text else "full_reduction")
        return Discount(kind, off=Decimal(m["off"]), threshold=Decimal(m["t"]),
                        repeat=bool(m["every"]), funded_by=FUNDING[kind],
                        group=GROUPS.get(kind, ""), origin=origin)
    if m := _ZHE.match(text):
        z = Decimal(m["z"])
        factor = z / 100 if z >= 10 else z / 10
        return Discount("percent", rate=1 - factor, origin=origin) if 0 < factor < 1 else None
    if m := _SUBSIDY.search(text):
        n = Decimal(m["n"])
        if m["unit"] == "元":
            return Discount("subsidy", off=n, funded_by="platform", origin=origin)
        return Discount("subsidy", rate=n / 100, funded_by="platform", origin=origin) \
            if 0 < n < 100 else None
    return None


def parse_discount(raw: Any, origin: str = "campaign") -> Discount | None:
    """A discount from a notice's or the policy's entry (a mapping or a Chinese text), or
    None when it cannot be read (the caller shows it as unreadable)."""
    if isinstance(raw, str):
        return _from_text(raw, origin)
    if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
        return None
    kind = raw["kind"]
    # ``amount``, not ``off``: YAML reads a bare ``off`` key as the boolean false
    off, threshold, rate = (number(raw.get(k, 0)) for k in ("amount", "threshold", "rate"))
    if off is None or threshold is None or rate is None or off < 0 or threshold < 0 \
            or not ZERO <= rate < 1:
        return None
    if (kind == "percent" and not rate) or (kind in PER_ORDER and not off) or \
            (kind == "subsidy" and not (off or rate)):
        return None
    funded = str(raw.get("funded_by") or FUNDING[kind])
    if funded not in ("shop", "platform"):
        return None
    return Discount(kind, off=off, threshold=threshold, repeat=bool(raw.get("repeat")),
                    rate=rate, funded_by=funded, group=str(raw.get("group", GROUPS.get(kind, ""))),
                    origin=origin)


@dataclass
class Terms:
    """The discounts a buyer of this campaign may stack, and entries nobody could read."""

    discounts: list[Discount] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

