"""Which SKUs a draft takes from the data pool, at what price, and why the others are left out.

A campaign is scoped to its categories and brands: the ones its notice names
(``requirements.categories`` / ``brands``), else the pool's categories and brands its title
names ("美妆个护会场"). Inside the scope the platform's category rules, the stock red line
(less what overlapping campaigns hold) and the brand's own documents valid through the event
(authorisation, quality report …) filter further; each candidate is priced at
the highest price every price rule allows; a price below cost leaves the SKU out; the best
margins are kept up to the line cap (``PROMOPILOT_DRAFT_MAX_LINES``). Every SKU left out is
counted under its reason with a few examples, so a card can say "MZ-003 dropped: 光研
authorisation ends before the event".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, select

from bot.declarations import commitments, compliance, rules
from bot.declarations.checks import covers
from bot.declarations.draft_settings import get_draft_settings
from storage.models import Campaign, Declaration, DeclarationLine, Product, QualificationDocument
from storage.models_data import ProductCategory

DEFAULT_DISCOUNT = Decimal("0.10")
EXAMPLES = 10  # SKUs named per reason; the count covers the rest
CHUNK = 5000  # SKUs per query (stays far below every driver's parameter limit)
# The order reasons are told in (most specific first, the line cap last).
REASONS = ("authorisation_ends", "no_authorisation", "document_ends", "no_document", "below_cost",
           "no_price", "low_stock", "category_refused", "no_list_price", "out_of_category",
           "out_of_brand", "over_cap")


@dataclass
class Pick:
    product: Product
    price: Decimal
    stock: int

    @property
    def margin(self) -> Decimal | None:
        cost = self.product.cost
        return None if cost is None or not self.price else (self.price - cost) / self.price


@dataclass
class Selection:
    pool: int
    scope: dict
    max_lines: int
    picks: list[Pick] = field(default_factory=list)
    dropped: dict[str, dict] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)  # platform categories of the picks

    def drop(self, reason: str, sku: str, note: str = "", **params: object) -> None:
        key = reason + json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
        group = self.dropped.setdefault(key, {"reason": reason, "params": params, "n": 0,
                                              "skus": []})
        group["n"] += 1
        if len(group["skus"]) < EXAMPLES:
            group["skus"].append(f"{sku} ({note})" if note else sku)

    @property
    def left_out(self) -> int:
        return sum(g["n"] for g in self.dropped.values())

    def groups(self) -> list[dict]:
        return sorted(self.dropped.values(),
                      key=lambda g: (REASONS.index(g["reason"]), -g["n"]))

    def as_detail(self) -> dict:
        """What the audit event keeps (bounded: counts and a few examples per reason)."""
        return {"pool": self.pool, "taken": len(self.picks), "max_lines": self.max_lines,
                "scope": self.scope, "left_out": self.left_out,
                "dropped": [{**g, "params": {k: _jsonable(v) for k, v in g["params"].items()}}
                            for g in self.groups()]}


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _names(value: object) -> list[str]:
    items = value if isinstance(value, list | tuple | set) else [value] if value else []
    return [str(v).strip() for v in items if str(v).strip()]


def _top(category: str) -> str:
    return category.replace(">", "/").split("/")[0].strip()


def campaign_scope(campaign: Campaign, products: list[Product], cats: dict[str, str]) -> dict:
    """The categories and brands a campaign is for: from its notice, else named in its title."""
    req = campaign.requirements or {}
    categories = _names(req.get("categories"))
    brands = _names(req.get("brands") or req.get("brand"))
    title = campaign.title or ""
    if not categories:
        known = {_top(c) for c in (*cats.values(), *(p.category for p in products)) if c}
        categories = sorted(c for c in known if len(c) >= 2 and c in title)
    if not brands:
        brands = sorted({p.brand for p in products if len(p.brand or "") >= 2 and p.brand in title})
    return {"categories": categories, "brands": brands}


def _brand_documents(session: Session, kind: str, brand: str, category: str,
                     until: datetime) -> tuple[bool, datetime | None]:
    """Whether the pool has a ``kind`` document covering this brand (or category) through
    ``until``; when not, the latest expiry of one that covers it (``None``: there is none)."""
    if compliance.usable_documents(session, kind, brand, until, {category}):
        return True, None
    expiries = [d.valid_until for d in session.exec(select(QualificationDocument).where(
        QualificationDocument.kind == kind)) if d.valid_until is not None
        and covers(d, kind, brand, {category})]
    return False, max(expiries) if expiries else None


def _context(session: Session, campaign: Campaign, ruleset: rules.RuleSet,
             products: list[Product], cats: dict[str, str],
             task_id: int | None) -> compliance.Context:
    """The pre-check's context for pricing (it reads the price history in chunks)."""
    return compliance.Context(session, campaign, ruleset, Declaration(task_id=task_id or 0),
                              {p.sku: p for p in products}, cats)


def select_lines(session: Session, campaign: Campaign, ruleset: rules.RuleSet | None = None,
                 max_lines: int | None = None, task_id: int | None = None) -> Selection:
    """The SKUs a draft takes (priced, best margins first, capped) and every one left out.
    Stock other overlapping campaigns hold (``commitments``) is not offered twice."""
    ruleset = ruleset or rules.effective(session, campaign)
    max_lines = max(1, min(int(max_lines or get_draft_settings().draft_max_lines), 5000))
    products = list(session.exec(select(Product).order_by(Product.sku)))
    cats = {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.platform == campaign.platform))}
    scope = campaign_scope(campaign, products, cats)
    found = Selection(pool=len(products), scope=scope, max_lines=max_lines)
    min_stock = max(int(ruleset.first("min_stock").get("min") or 0), 1)
    until = compliance.needed_until(campaign)
    brand_docs = sorted({rules.doc_kind(k) for r in ruleset.of_kind("documents")
                         for k in r.get("required") or []} & rules.BRAND_SCOPED_DOCS)
    category_rules = ruleset.of_kind("category")
    brands = {b.lower() for b in scope["brands"]}
    scoped: list[Product] = []
    for p in products:
        category = cats.get(p.sku) or p.category
        if scope["categories"] and compliance.category_refused(
                {"allowed": scope["categories"]}, category):
            found.drop("out_of_category", p.sku, categories="、".join(scope["categories"]))
        elif brands and (p.brand or "").lower() not in brands:
            found.drop("out_of_brand", p.sku, brands="、".join(scope["brands"]))
        elif p.list_price is None or p.list_price <= 0:
            found.drop("no_list_price", p.sku)
        elif any(compliance.category_refused(r, category) for r in category_rules):
            found.drop("category_refused", p.sku, category or "—")
        else:
            scoped.append(p)
    held: dict[str, int] = {}
    skus = [p.sku for p in scoped if p.stock - p.safety_stock >= min_stock]
    for start in range(0, len(skus), CHUNK):
        held.update(commitments.committed_stock(session, campaign, skus[start:start + CHUNK],
                                                exclude_task=task_id))
    covered: dict[tuple[str, str, str], tuple[bool, datetime | None]] = {}
    candidates: list[tuple[Product, int]] = []
    for p in scoped:
        available = max(p.stock - p.safety_stock - held.get(p.sku, 0), 0)
        if available < min_stock:
            note = f"{p.stock - p.safety_stock}-{held[p.sku]}" if held.get(p.sku) else str(available)
            found.drop("low_stock", p.sku, note, min=min_stock)
            continue
        category = cats.get(p.sku) or p.category
        for kind in brand_docs:
            if kind == "brand_authorisation" and not p.brand:
                continue  # an unbranded product needs nobody's authorisation
            key = (kind, p.brand or "", category)
            if key not in covered:
                covered[key] = _brand_documents(session, kind, p.brand or "", category, until)
            ok, latest = covered[key]
            if ok:
                continue
            auth = kind == "brand_authorisation"
            params: dict = {"brand": p.brand or ""} if auth else {"kind": kind, "brand": p.brand or ""}
            if latest is None:
                found.drop("no_authorisation" if auth else "no_document", p.sku, **params)
            else:
                found.drop("authorisation_ends" if auth else "document_ends", p.sku, **params,
                           until=latest, end=until)
            break
        else:
            candidates.append((p, available))
    found.categories = {p.sku: cats[p.sku] for p, _ in candidates if p.sku in cats}
    ctx = _context(session, campaign, ruleset, [p for p, _ in candidates], cats, task_id)
    price_rules = ruleset.of_kind("price") or [{"id": "default", "min_discount": DEFAULT_DISCOUNT}]
    priced: list[Pick] = []
    for p, available in candidates:
        assert p.list_price is not None
        line = DeclarationLine(declaration_id=0, sku=p.sku, list_price=p.list_price)
        caps = [c for c in (compliance.price_cap(ctx, r, line, p) for r in price_rules)
                if c is not None]
        promo = compliance.floor_price(min(caps) if caps else p.list_price * (1 - DEFAULT_DISCOUNT))
        if promo <= 0:
            found.drop("no_price", p.sku)
        elif p.cost is not None and promo < p.cost:
            found.drop("below_cost", p.sku, f"{promo} < {compliance.money(p.cost)}")
        else:
            priced.append(Pick(p, promo, max(min_stock, min(available, available // 2))))
    priced.sort(key=lambda k: (k.margin is None, -(k.margin or 0),
                               -(k.product.stock - k.product.safety_stock), k.product.sku))
    for extra in priced[max_lines:]:
        found.drop("over_cap", extra.product.sku, max=max_lines)
    found.picks = sorted(priced[:max_lines], key=lambda k: k.product.sku)
    return found
