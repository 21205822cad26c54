"""What the pre-check reports: a ``Violation`` (SKU, field, value, rule, fix), the error that
blocks an action, and the ``Context`` the checks read (campaign, rules, products, documents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.core.errors import Invalid
from bot.core.i18n import Term, t
from bot.declarations import price_history, rules
from storage.models import (
    Campaign,
    Declaration,
    Product,
)

if TYPE_CHECKING:
    pass

OVERRIDE_ROLES = frozenset({"manager", "legal"})
MAX_LISTED = 15  # violations spelled out in a chat reply; the rest are counted
CENT = Decimal("0.01")



@dataclass(frozen=True)
class Violation:
    """One broken rule: where (SKU, field), what (value), which rule, and how to fix it."""

    rule_id: str
    kind: str
    field: str
    value: str
    rule_key: str
    fix_key: str
    sku: str | None = None
    severity: str = "error"  # error blocks; warning is shown only
    params: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule_id}:{self.sku or '*'}:{self.field}"

    def rule_text(self, lang: str | None) -> str:
        return t(self.rule_key, lang, **self.params)

    def fix_text(self, lang: str | None) -> str:
        return t(self.fix_key, lang, **self.params)

    def describe(self, lang: str | None) -> str:
        where = f"{self.sku} · " if self.sku else ""
        return t("cv.line", lang, where=where, field=t(f"cv.field.{self.field}", lang),
                 value=self.value, rule=self.rule_text(lang), fix=self.fix_text(lang))

    def as_dict(self, lang: str | None = "en") -> dict:
        return {"rule_id": self.rule_id, "kind": self.kind, "sku": self.sku, "field": self.field,
                "value": self.value, "rule": self.rule_text(lang), "fix": self.fix_text(lang),
                "severity": self.severity}


class ComplianceBlocked(Invalid):
    """Raised by the guard; renders every violation in the reader's language."""

    def __init__(self, task_id: int, action: str, ruleset: rules.RuleSet,
                 violations: list[Violation]) -> None:
        super().__init__("cv.blocked", task_id=task_id)
        self.task_id, self.action, self.ruleset, self.violations = (
            task_id, action, ruleset, violations)

    def message(self, lang: str | None = None) -> str:
        items = [f"• {v.describe(lang)}" for v in self.violations[:MAX_LISTED]]
        if len(self.violations) > MAX_LISTED:
            items.append(t("cv.more", lang, n=len(self.violations) - MAX_LISTED))
        return t("cv.blocked", lang, task_id=self.task_id, n=len(self.violations),
                 platform=self.ruleset.platform, version=self.ruleset.version,
                 items="\n".join(items),
                 example=Term.of(f"example.override_{self.action}", task_id=self.task_id))


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def floor_price(value: Decimal) -> Decimal:
    """Round down to 0.10 so a suggested price stays inside the limit."""
    return value.quantize(Decimal("0.1"), rounding=ROUND_DOWN).quantize(CENT)


@dataclass
class Context:
    session: Session
    campaign: Campaign
    ruleset: rules.RuleSet
    declaration: Declaration
    products: dict[str, Product]
    categories: dict[str, str]
    lows: dict[int, dict[str, Decimal]] = field(default_factory=dict)

    def category(self, product: Product) -> str:
        return self.categories.get(product.sku) or product.category

    def lowest(self, sku: str, days: int) -> Decimal | None:
        if days not in self.lows:
            self.lows[days] = price_history.lowest_many(
                self.session, list(self.products), self.campaign.platform, days)
        return self.lows[days].get(sku)


# -- per-line checks -----------------------------------------------------------------------

