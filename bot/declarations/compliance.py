"""Compliance pre-check: every rule a declaration breaks, before approval and submission.

``check`` evaluates the campaign's effective rules (``bot.declarations.rules``) against the declaration
lines, the product pool, the price history and the attached documents, and returns every
violation with field, value, rule and a suggested fix. ``precheck`` is the action guard:
it blocks ``request_approval`` and ``submit`` unless a role allowed to override does so
with a reason, which is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.errors import Forbidden, Invalid
from bot.core.i18n import t
from bot.declarations import price_history, rules
from storage.models import (
    AuditEvent,
    Campaign,
    Declaration,
    DeclarationLine,
    Product,
    QualificationDocument,
    Task,
)
from storage.models_data import ProductCategory
from storage.queries import declaration_lines, latest_declaration
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.core.actions import ActionRequest

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
                 items="\n".join(items), action=self.action)


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

def _image(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    rid = rule["id"]
    if not p.image_width or not p.image_height:
        return [Violation(rid, "image", "image", "—", "cv.rule.image_missing", "cv.fix.image_missing",
                          p.sku, "warning")]
    w, h, out = p.image_width, p.image_height, []
    value = f"{w}x{h} {p.image_format or '?'}"
    if rule.get("width") and rule.get("height") and (w, h) != (rule["width"], rule["height"]):
        params = {"w": rule["width"], "h": rule["height"]}
        out.append(Violation(rid, "image", "image", value, "cv.rule.image_size",
                             "cv.fix.image_size", p.sku, params=params))
    if rule.get("min_width") and w < int(rule["min_width"]):
        out.append(Violation(rid, "image", "image", value, "cv.rule.image_min", "cv.fix.image_min",
                             p.sku, params={"w": rule["min_width"]}))
    if rule.get("ratio"):
        a, _, b = str(rule["ratio"]).partition(":")
        if b and abs(w / h - int(a) / int(b)) > 0.01:
            out.append(Violation(rid, "image", "image", value, "cv.rule.image_ratio",
                                 "cv.fix.image_ratio", p.sku, params={"ratio": rule["ratio"]}))
    formats = [str(f).upper().replace("JPG", "JPEG") for f in rule.get("formats") or []]
    if formats and (p.image_format or "").upper().replace("JPG", "JPEG") not in formats:
        out.append(Violation(rid, "image", "image", value, "cv.rule.image_format",
                             "cv.fix.image_format", p.sku, params={"formats": "/".join(formats)}))
    return out


def _text_length(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    text = p.title if rule.get("field", "title") == "title" else ""
    n = len(text.strip())
    if rule.get("min") and n < int(rule["min"]):
        return [Violation(rule["id"], "text_length", "title", text, "cv.rule.title_short",
                          "cv.fix.title_short", p.sku, params={"n": rule["min"]})]
    if rule.get("max") and n > int(rule["max"]):
        return [Violation(rule["id"], "text_length", "title", text, "cv.rule.title_long",
                          "cv.fix.title_long", p.sku, params={"n": rule["max"]})]
    return []


def banned_in(text: str, words: list[str]) -> list[str]:
    """Banned words found in ``text`` (substring match: Chinese has no word boundaries)."""
    low = (text or "").lower()
    return [w for w in dict.fromkeys(str(w) for w in words) if w and w.lower() in low]


def _banned_words(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    if "title" not in (rule.get("fields") or ["title"]):
        return []
    found = banned_in(p.title, rule.get("words") or [])
    if not found:
        return []
    words = "、".join(found)
    return [Violation(rule["id"], "banned_words", "title", p.title, "cv.rule.banned", "cv.fix.banned",
                      p.sku, params={"words": words})]


def price_cap(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> Decimal | None:
    """The highest promo price the rule allows (used by auto-fill too)."""
    caps = []
    list_price = line.list_price or p.list_price
    if list_price and rule.get("min_discount") is not None:
        caps.append(list_price * (1 - Decimal(str(rule["min_discount"]))))
    if rule.get("lowest_days"):
        low = ctx.lowest(p.sku, int(rule["lowest_days"]))
        if low is not None:
            caps.append(low * Decimal(str(rule.get("max_ratio_of_lowest", 1))))
    return min(caps) if caps else None


def _price(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    rid, promo = rule["id"], line.promo_price
    if promo is None:
        return [Violation(rid, "price", "promo_price", "—", "cv.rule.price_missing",
                          "cv.fix.price_missing", p.sku)]
    if promo <= 0:
        return [Violation(rid, "price", "promo_price", money(promo), "cv.rule.price_positive",
                          "cv.fix.price_missing", p.sku)]
    out = []
    list_price = line.list_price or p.list_price
    if list_price and rule.get("min_discount") is not None:
        limit = list_price * (1 - Decimal(str(rule["min_discount"])))
        if promo > limit:
            out.append(Violation(rid, "price", "promo_price", money(promo), "cv.rule.min_discount",
                                 "cv.fix.max_price", p.sku, params={
                                     "pct": f"{Decimal(str(rule['min_discount'])):.0%}",
                                     "list": money(list_price), "max": money(floor_price(limit))}))
    if rule.get("lowest_days"):
        days = int(rule["lowest_days"])
        low = ctx.lowest(p.sku, days)
        ratio = Decimal(str(rule.get("max_ratio_of_lowest", 1)))
        if low is not None and promo > low * ratio:
            out.append(Violation(rid, "price", "promo_price", money(promo), "cv.rule.lowest",
                                 "cv.fix.max_price", p.sku, params={
                                     "days": days, "low": money(low), "ratio": f"{ratio:.0%}",
                                     "max": money(floor_price(low * ratio))}))
    return out


def _min_stock(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    if rule.get("min") and line.promo_stock < int(rule["min"]):
        return [Violation(rule["id"], "min_stock", "promo_stock", str(line.promo_stock),
                          "cv.rule.min_stock", "cv.fix.min_stock", p.sku, params={"n": rule["min"]})]
    return []


def _in(category: str, names: list[str]) -> bool:
    return any(category == n or category.startswith((f"{n}/", f"{n}>")) for n in names)


def category_refused(rule: dict, category: str) -> str | None:
    """``allowed``/``banned`` when a category rule refuses ``category``, else ``None``."""
    allowed = [str(c) for c in rule.get("allowed") or []]
    if allowed and not _in(category, allowed):
        return "allowed"
    if _in(category, [str(c) for c in rule.get("banned") or []]):
        return "banned"
    return None


def _category(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    category = ctx.category(p)
    why = category_refused(rule, category)
    if why is None:
        return []
    params = {"allowed": "、".join(str(c) for c in rule.get("allowed") or []), "banned": category}
    return [Violation(rule["id"], "category", "category", category or "—", f"cv.rule.cat_{why}",
                      "cv.fix.remove_line", p.sku, params=params)]


LINE_CHECKS = {"image": _image, "text_length": _text_length, "banned_words": _banned_words,
               "price": _price, "min_stock": _min_stock, "category": _category}


def _red_line(line: DeclarationLine, p: Product) -> list[Violation]:
    available = max(0, p.stock - p.safety_stock)
    if line.promo_stock > available:
        return [Violation("stock_red_line", "stock", "promo_stock", str(line.promo_stock),
                          "cv.rule.red_line", "cv.fix.red_line", p.sku, params={"n": available})]
    return []


# -- declaration-level checks ----------------------------------------------------------------

def needed_until(campaign: Campaign) -> datetime:
    return campaign.event_end or campaign.registration_end or utcnow()


def _doc_label(kind: str, lang: str | None = None) -> str:
    label = t(f"doc.{kind}", lang)
    return kind if label == f"doc.{kind}" else label


def documents_needed(ctx: Context) -> list[tuple[str, str]]:
    """(kind, brand) pairs the declaration must carry; brand only for authorisations."""
    needed: list[tuple[str, str]] = []
    for rule in ctx.ruleset.of_kind("documents"):
        for kind in rule.get("required") or []:
            kind = rules.doc_kind(kind)
            if kind == "brand_authorisation":
                brands = sorted({p.brand for p in ctx.products.values() if p.brand})
                needed += [(kind, b) for b in brands]
            else:
                needed.append((kind, ""))
    return list(dict.fromkeys(needed))


def usable_documents(session: Session, kind: str, brand: str, until: datetime) -> list[QualificationDocument]:
    query = select(QualificationDocument).where(QualificationDocument.kind == kind)
    if brand:
        query = query.where(QualificationDocument.brand == brand)
    docs = [d for d in session.exec(query.order_by(QualificationDocument.valid_until.desc()))
            if d.valid_until is None or d.valid_until > until]
    return docs


def _documents(ctx: Context) -> list[Violation]:
    out: list[Violation] = []
    until = needed_until(ctx.campaign)
    attached_ids = [int(i) for i in ctx.declaration.documents or [] if str(i).isdigit()]
    attached = [d for d in (ctx.session.get(QualificationDocument, i) for i in attached_ids) if d]
    rule_id = (ctx.ruleset.first("documents") or {}).get("id", "documents")
    for kind, brand in documents_needed(ctx):
        mine = [d for d in attached if d.kind == kind and (not brand or d.brand == brand)]
        valid = [d for d in mine if d.valid_until is None or d.valid_until > until]
        if valid:
            continue
        label = _doc_label(kind)
        params = {"kind": label, "brand": f"({brand})" if brand else "",
                  "until": until.date().isoformat()}
        pool = usable_documents(ctx.session, kind, brand, until)
        if mine:  # attached but expiring before the campaign ends
            d = mine[0]
            params |= {"title": d.title, "until": d.valid_until.date().isoformat()
                       if d.valid_until else "?"}
            out.append(Violation(rule_id, "documents", "documents", d.title, "cv.rule.doc_expired",
                                 "cv.fix.doc_attach" if pool else "cv.fix.doc_upload",
                                 params=params | {"doc": pool[0].id if pool else ""}))
        else:
            out.append(Violation(rule_id, "documents", "documents", "—", "cv.rule.doc_missing",
                                 "cv.fix.doc_attach" if pool else "cv.fix.doc_upload",
                                 params=params | {"doc": pool[0].id if pool else ""}))
    return out


def _note(ctx: Context) -> list[Violation]:
    out = []
    for rule in ctx.ruleset.of_kind("banned_words"):
        if "note" in (rule.get("fields") or []):
            found = banned_in(ctx.declaration.note, rule.get("words") or [])
            if found:
                out.append(Violation(rule["id"], "banned_words", "note", ctx.declaration.note[:80],
                                     "cv.rule.banned", "cv.fix.banned",
                                     params={"words": "、".join(found)}))
    return out


# -- entry points ------------------------------------------------------------------------------

def context(session: Session, task: Task, declaration: Declaration,
            lines: list[DeclarationLine] | None = None) -> Context:
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    lines = lines if lines is not None else declaration_lines(session, declaration.id or 0)
    skus = [line.sku for line in lines]
    products = {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(skus)))}
    categories = {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.sku.in_(skus), ProductCategory.platform == campaign.platform))}
    return Context(session, campaign, rules.effective(session, campaign), declaration,
                   products, categories)


def check(session: Session, task: Task, declaration: Declaration) -> list[Violation]:
    """Every violation of the declaration, errors first (for cards and the guard)."""
    return evaluate(session, task, declaration)[1]


def evaluate(session: Session, task: Task,
             declaration: Declaration) -> tuple[rules.RuleSet, list[Violation]]:
    """The rules applied and the violations found."""
    lines = declaration_lines(session, declaration.id or 0)
    ctx = context(session, task, declaration, lines)
    out: list[Violation] = []
    for line in lines:
        product = ctx.products.get(line.sku)
        if product is None:
            out.append(Violation("data_pool", "pool", "sku", line.sku, "cv.rule.unknown_sku",
                                 "cv.fix.import", line.sku))
            continue
        for rule in ctx.ruleset.rules:
            fn = LINE_CHECKS.get(rule.get("kind", ""))
            if fn is not None:
                out += fn(ctx, rule, line, product)
        out += _red_line(line, product)
    out += _documents(ctx) + _note(ctx)
    return ctx.ruleset, sorted(out, key=lambda v: v.severity != "error")


def errors(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.severity == "error"]


def waived(session: Session, task_id: int, version: int) -> set[str]:
    """Violation keys a manager/legal has overridden for this declaration version."""
    keys: set[str] = set()
    for event in session.exec(select(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action == "compliance_override")):
        if (event.detail or {}).get("declaration") == version:
            keys.update((event.detail or {}).get("keys", []))
    return keys


def record_override(session: Session, task: Task, declaration: Declaration, actor: Actor,
                    comment: str | None, violations: list[Violation], event_id: str | None,
                    action: str) -> None:
    """Check the overrider's role and reason, then write the audit event."""
    if not actor.has_any(OVERRIDE_ROLES):
        raise Forbidden("cv.override_forbidden", roles=", ".join(sorted(OVERRIDE_ROLES)))
    if not (comment or "").strip():
        raise Invalid("err.reason_required", example=f"override {task.id} {action} <reason>")
    session.add(AuditEvent(
        task_id=task.id, actor=actor.name, action="compliance_override", event_id=event_id,
        detail={"declaration": declaration.version, "for": action, "comment": comment,
                "keys": [v.key for v in violations],
                "violations": [v.as_dict("en") for v in violations]}))
    session.flush()


def precheck(session: Session, task: Task, req: ActionRequest) -> None:
    """Guard for ``request_approval`` and ``submit``."""
    transition = lifecycle.TRANSITIONS.get(req.action)
    if transition is not None and task.state not in transition.sources:
        return  # the lifecycle explains why this action is not possible now
    declaration = latest_declaration(session, task.id or 0)
    if declaration is None:
        return  # the action itself says "fill the declaration first"
    ruleset, found = evaluate(session, task, declaration)
    found = errors(found)
    if not found:
        return
    skip = waived(session, task.id or 0, declaration.version)
    open_ = [v for v in found if v.key not in skip]
    if not open_:
        return
    if req.payload.get("override"):
        record_override(session, task, declaration, req.actor, req.comment, open_,
                        req.event_id, req.action)
        return
    raise ComplianceBlocked(task.id or 0, req.action, ruleset, open_)
