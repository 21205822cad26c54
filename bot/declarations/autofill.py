"""Declarations: which SKUs, at what promo price and stock, for one task.

``autofill`` fills a declaration version from the data pool so that it passes the campaign's
effective rules (``bot.declarations.rules``): the SKUs ``selection`` takes (the campaign's
categories and brands, stock, authorisations, a price under the discount and "lowest in N
days" caps and not below cost, capped), promo stock inside the stock red line, and the
required unexpired documents attached. Asked again, it refills and records what changed.
``edit`` changes one line from the chat card or the console.
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, select

from bot.core import lifecycle, outbox
from bot.core.actions import ActionRequest, handles
from bot.core.actors import Actor
from bot.core.errors import Forbidden, Invalid, NotFound
from bot.core.i18n import Term
from bot.declarations import compliance, numbers, rules, selection
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

DEFAULT_DISCOUNT = Decimal("0.10")
EDITABLE_STATES = {"claimed", "drafting"}
MAX_PRICE = Decimal("100000000")
MAX_STOCK = 10_000_000
N_SHOWN = 10  # SKUs named per kind of change; the count covers the rest



def suggested_price(list_price: Decimal, min_discount: Decimal) -> Decimal:
    """The highest price that still meets the minimum discount, rounded down to 0.10."""
    return compliance.floor_price(list_price * (1 - max(min_discount, Decimal("0"))))


def platform_categories(session: Session, platform: str, skus: list[str]) -> dict[str, str]:
    return {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.sku.in_(skus), ProductCategory.platform == platform))}


def eligible_products(session: Session, campaign: Campaign,
                      ruleset: rules.RuleSet | None = None) -> list[Product]:
    """Products a draft of the campaign takes (scoped, priced, capped): see ``selection``."""
    return [pick.product for pick in selection.select_lines(session, campaign, ruleset).picks]


def _documents(session: Session, ctx: compliance.Context, keep: list) -> list[int]:
    """The documents the rules need (one per kind and brand), plus the ones attached by hand
    that are still valid through the event."""
    until = compliance.needed_until(ctx.campaign)
    docs: list[int] = []
    for kind, brand in compliance.documents_needed(ctx):
        categories = {ctx.category(p) for p in ctx.products.values()
                      if kind not in rules.BRAND_SCOPED_DOCS or (p.brand or "") == brand}
        found = compliance.usable_documents(session, kind, brand, until, categories)
        if found and found[0].id not in docs:
            docs.append(found[0].id or 0)
    for raw in keep:
        doc = session.get(QualificationDocument, int(raw)) if str(raw).isdigit() else None
        if doc is not None and doc.id not in docs and (doc.valid_until is None
                                                       or doc.valid_until > until):
            docs.append(doc.id or 0)
    return docs


def _diff(before: list[DeclarationLine], after: list[selection.Pick], docs_before: list,
          docs_after: list[int]) -> dict:
    """What a refill changed, bounded (counts plus a few SKUs each)."""
    old = {ln.sku: ln for ln in before}
    new = {p.product.sku: p for p in after}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    common = sorted(set(old) & set(new))
    repriced = [f"{sku} {old[sku].promo_price or '—'} → {new[sku].price}" for sku in common
                if old[sku].promo_price != new[sku].price]
    restocked = [f"{sku} {old[sku].promo_stock} → {new[sku].stock}" for sku in common
                 if old[sku].promo_stock != new[sku].stock]
    docs_old = [int(d) for d in docs_before if str(d).isdigit()]
    out = {"added": added[:N_SHOWN], "added_n": len(added), "removed": removed[:N_SHOWN],
           "removed_n": len(removed), "repriced": repriced[:N_SHOWN], "repriced_n": len(repriced),
           "restocked": restocked[:N_SHOWN], "restocked_n": len(restocked),
           "docs_added": [d for d in docs_after if d not in docs_old],
           "docs_removed": [d for d in docs_old if d not in docs_after]}
    out["changed"] = any(out[k] for k in ("added_n", "removed_n", "repriced_n", "restocked_n",
                                          "docs_added", "docs_removed"))
    return out


def autofill(session: Session, task: Task, actor: Actor,
             max_lines: int | None = None) -> Declaration:
    """A declaration filled from the data pool (a new version when it differs from the current
    one); what was taken, left out (and why) and changed is kept in an ``autofill`` event."""
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    ruleset = rules.effective(session, campaign)
    previous, before = current(session, task.id or 0)
    chosen = selection.select_lines(session, campaign, ruleset, max_lines, task_id=task.id)
    ctx = compliance.Context(session, campaign, ruleset,
                             previous or Declaration(task_id=task.id or 0),
                             {p.product.sku: p.product for p in chosen.picks}, chosen.categories)
    docs = _documents(session, ctx, list(previous.documents or []) if previous else [])
    diff = _diff(before, chosen.picks, list(previous.documents or []) if previous else [], docs)
    verdicts = any(ln.result for ln in before)
    if previous is not None and not diff["changed"] and not verdicts:
        declaration = previous  # the pool and the rules give the same declaration: no new version
    else:
        declaration = Declaration(task_id=task.id or 0,
                                  version=(previous.version + 1) if previous else 1,
                                  created_by=actor.user_id, note=previous.note if previous else "",
                                  documents=docs)
        session.add(declaration)
        session.flush()
        for pick in chosen.picks:
            session.add(DeclarationLine(declaration_id=declaration.id or 0, sku=pick.product.sku,
                                        list_price=pick.product.list_price,
                                        promo_price=pick.price, promo_stock=pick.stock))
    session.add(AuditEvent(task_id=task.id, actor=actor.name, action="autofill", detail={
        "declaration": declaration.version, "previous": previous.version if previous else None,
        **chosen.as_detail(), "diff": diff}))
    session.flush()
    return declaration


def last_fill(session: Session, task_id: int) -> dict | None:
    """The latest ``autofill`` event's detail for a task (what the card and reply tell)."""
    event = session.exec(select(AuditEvent).where(
        AuditEvent.task_id == task_id, AuditEvent.action == "autofill")
        .order_by(AuditEvent.id.desc()).limit(1)).first()
    return dict(event.detail or {}) if event else None


def current(session: Session, task_id: int) -> tuple[Declaration | None, list[DeclarationLine]]:
    declaration = latest_declaration(session, task_id)
    if declaration is None:
        return None, []
    return declaration, declaration_lines(session, declaration.id or 0)


def typed_value(field: str, raw: object) -> Decimal | int:
    """A promo price or stock as a person typed it (chat, console, REST), through the one
    number parser (``bot.declarations.numbers``); refused with the reason in their language."""
    try:
        if field == "price":
            return numbers.to_decimal(raw, positive=True, maximum=MAX_PRICE)
        return numbers.to_int(raw, maximum=MAX_STOCK)
    except numbers.NumberRefused as exc:
        raise Invalid("decl.bad_value", field=Term(f"decl.field.{field}"), value=str(raw)[:20],
                      why=exc.reason()) from None


def may_edit(session: Session, task: Task, actor: Actor) -> None:
    """The claimant or a manager, while claimed/drafting (editing lines, attaching documents)."""
    if task.state not in EDITABLE_STATES:
        raise Invalid("decl.not_editable", task_id=task.id)
    if not actor.has_any(lifecycle.STAFF) or (
            task.claimed_by != actor.user_id and "manager" not in actor.roles):
        raise Forbidden("err.not_claimant", task_id=task.id, who=lifecycle._who(session, task.claimed_by))


def edit(session: Session, task: Task, actor: Actor, sku: str,
         changes: dict[str, str]) -> DeclarationLine | None:
    """Change one line (price, stock) or remove it; audited, the card refreshes."""
    may_edit(session, task, actor)
    declaration, lines = current(session, task.id or 0)
    line = next((ln for ln in lines if ln.sku.lower() == sku.lower()), None)
    if declaration is None or line is None:
        raise NotFound("decl.no_line", sku=sku[:64])
    before = {"promo_price": str(line.promo_price), "promo_stock": line.promo_stock}
    if changes.get("remove"):
        session.delete(line)
        result = None
    else:
        if "price" in changes:
            line.promo_price = Decimal(typed_value("price", changes["price"]))
        if "stock" in changes:
            line.promo_stock = int(typed_value("stock", changes["stock"]))
        session.add(line)
        result = line
    session.add(AuditEvent(task_id=task.id, actor=actor.name, action="edit_declaration",
                           detail={"declaration": declaration.version, "sku": sku,
                                   "before": before, "changes": changes}))
    session.flush()
    refresh_cards(session, task)
    return result


def refresh_cards(session: Session, task: Task) -> None:
    """After a visible change: bump the task's version, refresh its card and the declaration card."""
    lifecycle.touch(session, task.id or 0)
    task = session.get(Task, task.id, populate_existing=True) or task
    campaign = session.get(Campaign, task.campaign_id)
    if campaign is not None:
        outbox.enqueue_task_card(session, task)
        enqueue_declaration_card(session, task, campaign)


def enqueue_declaration_card(session: Session, task: Task, campaign: Campaign | None = None) -> None:
    """Post (or update in place) the declaration card where the task's notices go."""
    campaign = campaign or session.get(Campaign, task.campaign_id)
    if campaign is None:
        return
    card_key = f"declaration:{task.id}"
    targets = {(b.chat, b.channel_id) for b in outbox.bindings_for(session, campaign.platform,
                                                                    "notices", task.team_id)}
    for chat, channel in sorted(targets):
        outbox.enqueue_card(session, chat, channel, card_key, "declaration", {"task_id": task.id},
                            key=f"{card_key}:v{task.version}:{chat}:{channel}", task_id=task.id)


@handles("draft")
def draft(session: Session, task: Task, req: ActionRequest) -> lifecycle.Outcome:
    """Drafting fills the declaration from the data pool — the first time and every time it
    is asked again (a refill: the event and the reply say what changed)."""
    outcome = lifecycle.apply(session, task.id or 0, req.action, req.actor, comment=req.comment,
                              expected_version=req.version, event_id=req.event_id)
    autofill(session, task, req.actor)
    return outcome
