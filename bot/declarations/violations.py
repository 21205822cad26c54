"""What the pre-check reports: a ``Violation`` (SKU, field, value, rule, fix), the error that
blocks an action, and the ``Context`` the checks read (campaign, rules, products, documents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.core import lifecycle
from bot.core.errors import Invalid
from bot.core.i18n import Term, roles, t
from bot.declarations import price_history, rules
from storage.models import (
    Campaign,
    Declaration,
    Product,
)
from storage.types import utcnow

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
        """What an override waives: this rule, on this SKU's field, at this value — a new
        price or stock is a new finding."""
        return f"{self.rule_id}:{self.sku or '*'}:{self.field}={self.value}"

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
                 items="\n".join(items), override=override_hint(self.action, self.task_id))


def override_roles(action: str) -> tuple[frozenset[str], frozenset[str]]:
    """(roles that may override inside ``action``, roles that may only waive beforehand with
    ``compliance_override``): overriding inside an action needs a role the lifecycle lets do
    that action (legal may not request approval or submit, so legal only waives)."""
    rule = lifecycle.TRANSITIONS.get(action)
    acting = OVERRIDE_ROLES & (rule.roles - lifecycle.SYSTEM) if rule else OVERRIDE_ROLES
    return frozenset(acting), OVERRIDE_ROLES - acting


def override_hint(action: str, task_id: int) -> Term:
    """Who may let ``action`` through despite the findings, and how — naming only what each
    role can do (a ``Term``: rendered in the language of the message it goes into)."""
    acting, waiving = override_roles(action)
    example = Term.of(f"example.override_{action}", task_id=task_id)
    if acting and waiving:
        return Term.of("cv.override_who_both", acting=roles(acting), example=example,
                       waiving=roles(waiving), action=Term(f"action.{action}"))
    if acting:
        return Term.of("cv.override_hint", roles=roles(acting), example=example)
    return Term.of("cv.waive_hint", roles=roles(waiving), action=Term(f"action.{action}"))


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
    lows: dict[tuple[int, bool], dict[str, price_history.Low]] = field(default_factory=dict)
    committed: dict | None = None  # SKU → stock promised to overlapping campaigns (checks)

    def category(self, product: Product) -> str:
        return self.categories.get(product.sku) or product.category

    @property
    def price_window_end(self) -> datetime:
        """"The lowest price in the last N days" counts back from the event's start."""
        return self.campaign.event_start or utcnow()

    def low(self, sku: str, days: int, every_platform: bool = False) -> price_history.Low | None:
        """The SKU's lowest price in the ``days`` before the event starts, on the campaign's
        platform or, for 全网最低价, on every platform."""
        key = (days, every_platform)
        if key not in self.lows:
            self.lows[key] = price_history.lows(
                self.session, list(self.products), days,
                platform=None if every_platform else self.campaign.platform,
                until=self.price_window_end)
        return self.lows[key].get(sku)

    def lowest(self, sku: str, days: int) -> Decimal | None:
        low = self.low(sku, days)
        return low.price if low else None


# -- per-line checks -----------------------------------------------------------------------

