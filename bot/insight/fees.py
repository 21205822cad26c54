"""Fee tables: a platform's commission and payment fees, and the shop's parcel cost, per
category — read from the ``fees:`` section of the platform's rules file (``rules/*.yaml``),
so a fee change is a new rules version with author and time, like any rule.

```yaml
fees:
  commission: 0.05        # of the sale's value (what the buyer pays + what the platform funds)
  payment: 0.006          # of what the buyer pays (the payment channel only sees that)
  shipping: 6.00          # the shop's parcel cost per order (包邮)
  categories:             # the longest matching category wins; unnamed keys fall back
    美妆个护: {commission: 0.04}
    美妆个护/面膜: {commission: 0.03}
```

A product's category on the platform (``product_categories``) is matched first, then its
category in the pool; ``美妆个护`` also matches ``美妆个护/面膜``. A platform without a
``fees:`` section has no fees (every rate 0), which the margin says.

A campaign may charge its own (a 百亿补贴's lower commission): its notice's
``requirements.fees``, in the same shape (``{commission: 0.02}``), wins over the table for
what it names (``with_campaign``); the margin says the campaign's terms were used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session

from bot.declarations import rules

RATES = ("commission", "payment")
AMOUNTS = ("shipping",)
ZERO = Decimal("0")


@dataclass(frozen=True)
class Fees:
    """The fees that apply to one product on one platform."""

    platform: str
    version: int  # the rules version the table came from (0: no rules stored)
    commission: Decimal = ZERO
    payment: Decimal = ZERO
    shipping: Decimal = ZERO
    category: str = ""  # the category override applied; "" = the platform's defaults
    configured: bool = True  # False: the rules file has no ``fees:`` section
    campaign: tuple[str, ...] = ()  # the fees the campaign's own terms set

    def with_campaign(self, requirements: dict | None) -> Fees:
        """These fees with the campaign's own (``requirements.fees``) where it names one."""
        own = campaign_fees(requirements)
        return replace(self, **own, campaign=tuple(sorted(own))) if own else self


@dataclass(frozen=True)
class FeeTable:
    platform: str
    version: int
    base: dict[str, Decimal] = field(default_factory=dict)
    categories: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    configured: bool = True

    def for_categories(self, *categories: str | None) -> Fees:
        """The fees for the first of ``categories`` that an override matches (platform
        category first, then the pool's), longest override first; else the defaults."""
        for category in categories:
            best = _best_match(str(category or ""), self.categories)
            if best:
                values = {**self.base, **self.categories[best]}
                return Fees(self.platform, self.version, category=best,
                            configured=self.configured, **values)
        return Fees(self.platform, self.version, configured=self.configured, **self.base)


def _best_match(category: str, overrides: dict[str, dict]) -> str:
    category = category.strip()
    if not category:
        return ""
    found = [key for key in overrides if category == key or category.startswith(f"{key}/")]
    return max(found, key=len, default="")


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _values(raw: Any, where: str) -> tuple[dict[str, Decimal], str | None]:
    if not isinstance(raw, dict):
        return {}, f"{where}: needs a mapping of {', '.join(RATES + AMOUNTS)}"
    out: dict[str, Decimal] = {}
    for name, value in raw.items():
        if name == "categories" and where == "fees":
            continue
        if name not in RATES + AMOUNTS:
            return {}, f"{where}: unknown fee {name!r} (known: {', '.join(RATES + AMOUNTS)})"
        number = _decimal(value)
        if number is None:
            return {}, f"{where}.{name}: {str(value)[:40]!r} is not a number"
        if name in RATES and not ZERO <= number < 1:
            return {}, f"{where}.{name}: a rate is a fraction from 0 to below 1, e.g. 0.05"
        if name in AMOUNTS and number < 0:
            return {}, f"{where}.{name}: cannot be negative"
        out[name] = number
    return out, None


def campaign_fees(requirements: dict | None) -> dict[str, Decimal]:
    """The fees a campaign's notice sets (``requirements.fees``); {} when none or unusable
    (the notice's check at ingest moves an unusable one aside, flagged on the card)."""
    raw = (requirements or {}).get("fees")
    if not raw:
        return {}
    values, error = _values(raw, "requirements.fees")
    return {} if error else values


def problem(section: Any) -> str | None:
    """Why a ``fees:`` section is unusable (the rules sync refuses the file), or None."""
    return parse(section, "", 0)[1]


def parse(section: Any, platform: str, version: int) -> tuple[FeeTable, str | None]:
    if section is None:
        return FeeTable(platform, version, configured=False), None
    base, error = _values(section, "fees")
    if error:
        return FeeTable(platform, version), error
    overrides: dict[str, dict[str, Decimal]] = {}
    raw = section.get("categories") or {}
    if not isinstance(raw, dict):
        return FeeTable(platform, version), "fees.categories: needs a mapping category → fees"
    for category, values in raw.items():
        parsed, error = _values(values, f"fees.categories.{category}")
        if error:
            return FeeTable(platform, version), error
        overrides[str(category).strip()] = parsed
    return FeeTable(platform, version, base, overrides), None


def table(session: Session, platform: str) -> FeeTable:
    """The platform's fee table from its current rules version (loaded on first use)."""
    version, _ = rules.platform_rules(session, platform)
    row = rules.latest(session, platform)
    content = row.content if row is not None else {}
    found, error = parse(content.get("fees"), platform, version)
    if error:  # stored before fees were checked at sync: no fees rather than wrong ones
        raise rules.RulesError("rules.bad_file", file=f"{platform} v{version}", reason=error)
    return found


# The rules sync checks a file's ``fees:`` section before storing a version.
rules.SECTION_CHECKS["fees"] = problem
