"""The rule checks, one function per rule kind (image, text length, banned words, price,
stock, category), plus the stock red line and the qualification documents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, select

from bot.core.i18n import t
from bot.core.timefmt import local
from bot.declarations import rules
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
                  "until": local(until, fmt="%Y-%m-%d")}  # the team's day, not the UTC day
        pool = usable_documents(ctx.session, kind, brand, until)
        if mine:  # attached but expiring before the campaign ends
            d = mine[0]
            params |= {"title": d.title, "until": local(d.valid_until, fmt="%Y-%m-%d")
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


