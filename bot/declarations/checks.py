"""The rule checks, one function per rule kind (image, text length, banned words, price,
stock, category), plus the stock red line and the qualification documents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, select

from bot.core.i18n import Term, has, t
from bot.core.timefmt import local
from bot.declarations import commitments, rule_text, rules
from bot.declarations.violations import (
    Context,
    Violation,
    floor_price,
    money,
)
from storage.models import (
    Campaign,
    DeclarationLine,
    Product,
    QualificationDocument,
)
from storage.types import utcnow


def _image(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> list[Violation]:
    rid = rule["id"]
    if not p.image_width or not p.image_height:
        return [Violation(rid, "image", "image", "—", "cv.rule.image_missing", "cv.fix.image_missing",
                          p.sku, "warning")]
    w, h, out = p.image_width, p.image_height, []
    value = f"{w}x{h} {p.image_format or '?'}"
    low_w, low_h, high_w, high_h = rule_text.image_bounds(rule)
    if low_w and w < low_w or low_h and h < low_h:
        out.append(Violation(rid, "image", "image", value, "cv.rule.image_at_least",
                             "cv.fix.image_at_least", p.sku,
                             params={"w": low_w or "?", "h": low_h or "?"}))
    if high_w and w > high_w or high_h and h > high_h:
        out.append(Violation(rid, "image", "image", value, "cv.rule.image_at_most",
                             "cv.fix.image_at_most", p.sku,
                             params={"w": high_w or "?", "h": high_h or "?"}))
    ratios = rule_text.image_ratios(rule)
    if ratios and not any(abs(w / h - a / b) <= 0.01 * a / b for a, b in ratios):
        shown = " / ".join(f"{a}:{b}" for a, b in ratios)
        out.append(Violation(rid, "image", "image", value, "cv.rule.image_ratio",
                             "cv.fix.image_ratio", p.sku, params={"ratio": shown}))
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


def _low(ctx: Context, rule: dict, p: Product):
    """The lowest recent price the rule compares with (every platform for 全网最低价)."""
    return ctx.low(p.sku, int(rule["lowest_days"]), every_platform=rule.get("channels") == "all")


def price_cap(ctx: Context, rule: dict, line: DeclarationLine, p: Product) -> Decimal | None:
    """The highest promo price the rule allows (used by auto-fill too); under a strict rule
    (低于) a cent below the limit."""
    caps = []
    list_price = line.list_price or p.list_price
    if list_price and rule.get("min_discount") is not None:
        caps.append(list_price * (1 - Decimal(str(rule["min_discount"]))))
    if rule.get("lowest_days"):
        low = _low(ctx, rule, p)
        if low is not None:
            limit = low.price * Decimal(str(rule.get("max_ratio_of_lowest", 1)))
            caps.append(limit - Decimal("0.01") if rule_text.strict(rule) else limit)
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
        out += _against_lowest(ctx, rule, promo, p)
    return out


def _platform(code: str) -> Term | str:
    return Term(f"cv.platform.{code}") if has(f"cv.platform.{code}") else code


def _against_lowest(ctx: Context, rule: dict, promo: Decimal, p: Product) -> list[Violation]:
    """Promo price against the lowest price of the N days before the event: on the
    campaign's platform, or on every platform (全网最低价); strict (低于) or not (不高于)."""
    rid, days = rule["id"], int(rule["lowest_days"])
    every = rule.get("channels") == "all"
    low = _low(ctx, rule, p)
    if low is None:  # nothing to compare with: say so, never pass silently
        return [Violation(rid, "price", "promo_price", money(promo), "cv.rule.no_history",
                          "cv.fix.no_history", p.sku, "warning", params={
                              "sku": p.sku, "days": days,
                              "where": Term("cv.where.all" if every else "cv.where.platform")})]
    ratio = Decimal(str(rule.get("max_ratio_of_lowest", 1)))
    limit, strict = low.price * ratio, rule_text.strict(rule)
    if promo < limit or (promo == limit and not strict):
        return []
    highest = floor_price(limit - Decimal("0.01") if strict else limit)
    key = f"cv.rule.lowest{'_all' if every else ''}{'_below' if strict else ''}"
    return [Violation(rid, "price", "promo_price", money(promo), key, "cv.fix.max_price", p.sku,
                      params={"days": days, "low": money(low.price), "ratio": f"{ratio:.0%}",
                              "max": money(highest), "platform": _platform(low.platform),
                              "when": local(low.observed_at, fmt="%m-%d")})]


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

# Declaration-level checks other modules register: ``fn(ctx, lines) → [Violation]`` (the
# platform's own eligibility answer registers here: bot/declarations/platform_gate.py).
DECLARATION_CHECKS: list = []


def _held(ctx: Context, sku: str) -> list[commitments.Commitment]:
    if ctx.committed is None:
        ctx.committed = commitments.commitments(ctx.session, ctx.campaign, list(ctx.products),
                                                exclude_task=ctx.declaration.task_id)
    return ctx.committed.get(sku, [])


def available_stock(ctx: Context, p: Product) -> int:
    """Stock minus safety stock minus what overlapping campaigns already hold."""
    return max(0, p.stock - p.safety_stock - sum(c.quantity for c in _held(ctx, p.sku)))


def _red_line(ctx: Context, line: DeclarationLine, p: Product) -> list[Violation]:
    available = available_stock(ctx, p)
    if line.promo_stock <= available:
        return []
    held = _held(ctx, p.sku)
    if not held:
        return [Violation("stock_red_line", "stock", "promo_stock", str(line.promo_stock),
                          "cv.rule.red_line", "cv.fix.red_line", p.sku, params={"n": available})]
    return [Violation("stock_red_line", "stock", "promo_stock", str(line.promo_stock),
                      "cv.rule.red_line_held", "cv.fix.red_line", p.sku, params={
                          "n": available, "free": max(0, p.stock - p.safety_stock),
                          "held": sum(c.quantity for c in held),
                          "tasks": "、".join(f"{c.label()} ({c.quantity})" for c in held)})]


def _below_cost(line: DeclarationLine, p: Product) -> list[Violation]:
    """A promo price under the product's cost sells at a loss: flagged (a warning — a deliberate
    loss leader is the approvers' call, see ``margin_below`` in the approval policy)."""
    price = line.promo_price
    if price is None or price <= 0 or p.cost is None or price >= p.cost:
        return []
    return [Violation("below_cost", "price", "promo_price", money(price), "cv.rule.below_cost",
                      "cv.fix.below_cost", p.sku, "warning",
                      params={"cost": money(p.cost), "loss": money(p.cost - price)})]


# -- declaration-level checks ----------------------------------------------------------------

def needed_until(campaign: Campaign) -> datetime:
    return campaign.event_end or campaign.registration_end or utcnow()


def _doc_label(kind: str, lang: str | None = None) -> str:
    label = t(f"doc.{kind}", lang)
    return kind if label == f"doc.{kind}" else label


def documents_needed(ctx: Context) -> list[tuple[str, str]]:
    """(kind, brand) pairs the declaration must carry: a brand's own document (brand
    authorisation, quality report, trademark) once per brand declared, a licence once."""
    needed: list[tuple[str, str]] = []
    for rule in ctx.ruleset.of_kind("documents"):
        for kind in rule.get("required") or []:
            kind = rules.doc_kind(kind)
            if kind in rules.BRAND_SCOPED_DOCS:
                brands = {p.brand or "" for p in ctx.products.values()}
                if kind == "brand_authorisation":
                    brands.discard("")  # an unbranded product needs nobody's authorisation
                needed += [(kind, b) for b in sorted(brands)]
            else:
                needed.append((kind, ""))
    return list(dict.fromkeys(needed))


def covers(doc: QualificationDocument, kind: str, brand: str, categories: set[str]) -> bool:
    """Whether a document of ``kind`` covers a brand's products (in ``categories``): the
    document names that brand or a category holding all of them; a document naming nothing
    covers the company (a licence), never a brand's own paper for another brand."""
    if doc.kind != kind:
        return False
    scope = (doc.brand or "").strip()
    if not scope:
        return kind not in rules.BRAND_SCOPED_DOCS or not brand
    if brand and scope == brand:
        return True
    return bool(categories) and all(_in(c, [scope]) for c in categories)


def usable_documents(session: Session, kind: str, brand: str, until: datetime,
                     categories: set[str] | None = None) -> list[QualificationDocument]:
    """Pool documents of ``kind`` covering ``brand`` (or the ``categories``) valid beyond
    ``until``, the longest-valid first."""
    query = select(QualificationDocument).where(QualificationDocument.kind == kind)
    return [d for d in session.exec(query.order_by(QualificationDocument.valid_until.desc()))
            if (d.valid_until is None or d.valid_until > until)
            and covers(d, kind, brand, categories or set())]


def _categories(ctx: Context, kind: str, brand: str) -> set[str]:
    return {ctx.category(p) for p in ctx.products.values()
            if kind not in rules.BRAND_SCOPED_DOCS or (p.brand or "") == brand}


def _documents(ctx: Context) -> list[Violation]:
    out: list[Violation] = []
    until = needed_until(ctx.campaign)
    attached_ids = [int(i) for i in ctx.declaration.documents or [] if str(i).isdigit()]
    attached = [d for d in (ctx.session.get(QualificationDocument, i) for i in attached_ids) if d]
    rule_id = (ctx.ruleset.first("documents") or {}).get("id", "documents")
    for kind, brand in documents_needed(ctx):
        categories = _categories(ctx, kind, brand)
        mine = [d for d in attached if covers(d, kind, brand, categories)]
        if any(d.valid_until is None or d.valid_until > until for d in mine):
            continue
        pool = usable_documents(ctx.session, kind, brand, until, categories)
        params = {"kind": _doc_label(kind), "brand": f"({brand})" if brand else "",
                  "until": local(until, fmt="%Y-%m-%d"),  # the team's day, not the UTC day
                  "doc": pool[0].id if pool else ""}
        fix = "cv.fix.doc_attach" if pool else "cv.fix.doc_upload"
        other = [d for d in attached if d.kind == kind and d not in mine]
        if mine:  # attached but expiring before the campaign ends: valid until its end
            d = mine[0]
            params |= {"title": d.title, "expires": local(d.valid_until, fmt="%Y-%m-%d")
                       if d.valid_until else "?"}
            out.append(Violation(rule_id, "documents", "documents", d.title,
                                 "cv.rule.doc_expires_early", fix, params=params))
        elif other:  # one of the kind is attached, but for another brand
            d = other[0]
            params |= {"title": d.title, "scope": d.brand or "—"}
            out.append(Violation(rule_id, "documents", "documents", d.title,
                                 "cv.rule.doc_other_scope", fix, params=params))
        else:
            out.append(Violation(rule_id, "documents", "documents", "—", "cv.rule.doc_missing",
                                 fix, params=params))
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


