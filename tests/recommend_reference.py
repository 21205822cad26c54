"""A frozen copy of ``bot/insight/recommend.py`` as it was before the batch path (commit
8ac432d): every factor queried per task. The batch path must give the same verdict, score
and reasons (tests/test_insight_recommend_batch.py), and ``bench/decision_log.py`` times
this per-task path as "before". Not used by the product; change it only to follow a
deliberate change of what a recommendation says.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, select

from bot.core.timefmt import local_date
from bot.declarations import commitments
from bot.declarations.selection import campaign_scope
from bot.insight import roi
from bot.insight.recommend import Factor, Recommendation, clamp, scale, score
from bot.insight.recommend_policy import RecommendationPolicy, current
from storage.models import Campaign, Declaration, DeclarationLine, Product, Task
from storage.models_data import ProductCategory, RejectionRecord, RuleProposal
from storage.models_results import CampaignResult
from storage.queries import declaration_lines, latest_declaration
from storage.types import utcnow

MAX_SKUS = 200
REJECTION_DAYS = 180
TYPE_MIN_LINES = 5


def _cutoff(campaign: Campaign, as_of: datetime | None) -> datetime:
    return as_of or campaign.event_start or campaign.registration_end or utcnow()


def similar(session: Session, campaign: Campaign, before: datetime, policy: RecommendationPolicy,
            same_type: bool) -> list[Campaign]:
    """The most recent campaigns on the platform (of the type) with results, ended before."""
    since = before - timedelta(days=policy.similar.get("days", 365))
    query = (select(Campaign).where(Campaign.platform == campaign.platform,
                                    Campaign.id != campaign.id,
                                    Campaign.id.in_(select(CampaignResult.campaign_id))))
    if same_type:
        query = query.where(Campaign.type == campaign.type)
    found = [c for c in session.exec(query) if c.event_end is not None
             and since <= c.event_end <= before]
    found.sort(key=lambda c: (c.event_end, c.external_id), reverse=True)
    return found[:policy.similar.get("max", 10)]


def _names(campaigns: list[Campaign]) -> str:
    shown = "、".join(c.title[:20] for c in campaigns[:3])
    return shown + ("…" if len(campaigns) > 3 else "")


def history_factor(session: Session, campaign: Campaign, before: datetime,
                   policy: RecommendationPolicy) -> Factor:
    past = similar(session, campaign, before, policy, True) if campaign.type else []
    scope = "type"
    if not past:
        past, scope = similar(session, campaign, before, policy, False), "platform"
    params = {"platform": campaign.platform, "type": campaign.type or "—", "scope": scope}
    if not past:
        return Factor("history", None, params)
    totals = roi.total(session, roi.rows_in(session, campaign_ids=[c.id for c in past]))
    params |= {"n": len(past), "names": _names(past), "gmv": f"{totals.gmv:,.2f}",
               "units": totals.units, "roi": "—" if totals.roi is None else str(totals.roi)}
    if totals.net_rate is None:
        return Factor("history", None, params | {"why": "cost"})
    params["rate"] = f"{totals.net_rate:.1%}"
    good = float(policy.target("net_rate_good"))
    return Factor("history", clamp(float(totals.net_rate) / good), params)


def _skus(session: Session, task: Task, campaign: Campaign) -> tuple[list[str], str]:
    declaration = latest_declaration(session, task.id or 0)
    if declaration is not None:
        lines = declaration_lines(session, declaration.id or 0)
        if lines:
            return sorted({x.sku for x in lines})[:MAX_SKUS], "declaration"
    products = list(session.exec(select(Product).order_by(Product.sku)))
    cats = {c.sku: c.category for c in session.exec(select(ProductCategory).where(
        ProductCategory.platform == campaign.platform))}
    scope = campaign_scope(campaign, products, cats)
    if scope["categories"] or scope["brands"]:
        brands = {b.lower() for b in scope["brands"]}
        chosen = [p.sku for p in products
                  if (not scope["categories"] or any(
                      (cats.get(p.sku) or p.category or "").startswith(c)
                      for c in scope["categories"]))
                  and (not brands or (p.brand or "").lower() in brands)]
        return chosen[:MAX_SKUS], "scope"
    sold = session.exec(select(CampaignResult.sku).where(
        CampaignResult.platform == campaign.platform, CampaignResult.sku != "").distinct()).all()
    return sorted(sold)[:MAX_SKUS], "sold"


def _past_units(session: Session, campaign: Campaign, skus: list[str],
                before: datetime) -> dict[str, float]:
    """Per SKU, the median units of its past campaigns on the platform (ended before): of
    this campaign type when the SKU has some, else of every type."""
    per: dict[tuple[str, int], int] = {}
    same: set[tuple[str, int]] = set()
    for row, other in session.exec(select(CampaignResult, Campaign).join(
            Campaign, Campaign.id == CampaignResult.campaign_id).where(
            CampaignResult.platform == campaign.platform, CampaignResult.sku.in_(skus),
            Campaign.id != campaign.id)):
        if other.event_end is not None and other.event_end <= before:
            key = (row.sku, other.id or 0)
            per[key] = per.get(key, 0) + row.units
            if campaign.type and other.type == campaign.type:
                same.add(key)
    out: dict[str, list[int]] = {}
    typed = {sku for sku, _ in same}
    for (sku, cid), units in per.items():
        if sku not in typed or (sku, cid) in same:
            out.setdefault(sku, []).append(units)
    return {sku: float(statistics.median(v)) for sku, v in out.items()}


def stock_factor(session: Session, task: Task, campaign: Campaign, before: datetime,
                 policy: RecommendationPolicy) -> Factor:
    skus, basis = _skus(session, task, campaign)
    expected = _past_units(session, campaign, skus, before) if skus else {}
    params: dict = {"basis": basis, "skus": len(skus)}
    if not expected:
        return Factor("stock", None, params)
    known = sorted(expected)
    held = commitments.committed_stock(session, campaign, known, exclude_task=task.id)
    products = {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(known)))}
    available = sum(max(p.stock - p.safety_stock - held.get(p.sku, 0), 0)
                    for p in products.values())
    wanted = sum(expected.values())
    cover = available / wanted if wanted else 0.0
    params |= {"n": len(known), "available": available, "expected": round(wanted),
               "cover": f"{cover:.1f}", "held": sum(held.values())}
    return Factor("stock", scale(cover, float(policy.target("cover_bad")),
                                 float(policy.target("cover_good"))), params)


def budget_factor(session: Session, campaign: Campaign, now: datetime,
                  policy: RecommendationPolicy) -> Factor:
    budget = policy.budget(campaign.platform)
    params: dict = {"platform": campaign.platform}
    if not budget:
        return Factor("budget", None, params)
    month = local_date(now).strftime("%Y-%m")
    spent = Decimal("0")
    for row, other in session.exec(select(CampaignResult, Campaign).join(
            Campaign, Campaign.id == CampaignResult.campaign_id).where(
            CampaignResult.platform == campaign.platform)):
        day = row.day or (local_date(other.event_end).isoformat() if other.event_end else "")
        if day[:7] == month and day <= local_date(now).isoformat():
            spent += row.fees
    left = max(budget - spent, Decimal("0"))
    share = float(left / budget)
    params |= {"month": month, "budget": f"{budget:,.0f}", "spent": f"{spent:,.2f}",
               "left": f"{share:.0%}"}
    return Factor("budget", clamp(2 * share - 1), params)


def slot_factor(session: Session, campaign: Campaign, before: datetime,
                policy: RecommendationPolicy) -> Factor:
    req = campaign.requirements or {}
    slot = str(req.get("slot") or req.get("资源位") or "").strip()
    params: dict = {"platform": campaign.platform, "slot": slot or "—",
                    "type": campaign.type or "—"}
    pairs = [(r, c) for r, c in roi.rows_in(session, end=before, platforms=[campaign.platform])
             if c.id != campaign.id and c.event_end is not None]
    if slot:
        chosen, basis = [(r, c) for r, c in pairs if r.slot == slot], "slot"
    else:
        chosen, basis = [], "slot"
    if not chosen and campaign.type:
        chosen, basis = [(r, c) for r, c in pairs if c.type == campaign.type], "type"
    totals = roi.total(session, chosen)
    params["basis"] = basis
    if not chosen or totals.roi is None:
        return Factor("slot", None, params)
    params |= {"roi": str(totals.roi), "n": len(totals.campaigns), "fees": f"{totals.fees:,.2f}"}
    return Factor("slot", scale(float(totals.roi), float(policy.target("roi_bad")),
                                float(policy.target("roi_good"))), params)


def _reviewed(session: Session, platform: str, since: datetime, until: datetime,
              type_: str | None) -> tuple[int, int]:
    """(rejected lines, reviewed lines) of declarations on the platform in the window."""
    query = (select(DeclarationLine.result, Declaration.task_id, Declaration.version)
             .join(Declaration, Declaration.id == DeclarationLine.declaration_id)
             .join(Task, Task.id == Declaration.task_id)
             .join(Campaign, Campaign.id == Task.campaign_id)
             .where(Campaign.platform == platform, DeclarationLine.result.is_not(None),
                    Declaration.created_at >= since, Declaration.created_at < until))
    if type_ is not None:
        query = query.where(Campaign.type == type_)
    results = session.exec(query).all()
    return sum(1 for r, _, _ in results if r == "rejected"), len(results)


def rejection_factor(session: Session, campaign: Campaign, before: datetime,
                     policy: RecommendationPolicy) -> Factor:
    since = before - timedelta(days=REJECTION_DAYS)
    rejected, reviewed = _reviewed(session, campaign.platform, since, before, campaign.type) \
        if campaign.type else (0, 0)
    scope = "type"
    if reviewed < TYPE_MIN_LINES:
        rejected, reviewed = _reviewed(session, campaign.platform, since, before, None)
        scope = "platform"
    learned = len(session.exec(select(RuleProposal.id).where(
        RuleProposal.platform == campaign.platform, RuleProposal.created_at < before,
        RuleProposal.state.in_(("proposed", "accepted")))).all())
    reasons = session.exec(select(RejectionRecord.category).where(
        RejectionRecord.platform == campaign.platform, RejectionRecord.created_at >= since,
        RejectionRecord.created_at < before)).all()
    top = statistics.mode(sorted(reasons)) if reasons else ""
    params: dict = {"platform": campaign.platform, "which": campaign.type if scope == "type"
                    else "*", "days": REJECTION_DAYS, "rules": learned}
    if not reviewed:
        return Factor("rejection", None, params)
    rate = rejected / reviewed
    params |= {"rejected": rejected, "reviewed": reviewed, "rate": f"{rate:.0%}",
               "top": top or "—"}
    bad = float(policy.target("rejection_bad"))
    return Factor("rejection", clamp(1 - 2 * min(rate / bad, 1.0)), params)


def factors(session: Session, task: Task, as_of: datetime | None = None,
            policy: RecommendationPolicy | None = None) -> list[Factor]:
    policy = policy or current()
    campaign = session.get(Campaign, task.campaign_id)
    if campaign is None:
        return []
    before = _cutoff(campaign, as_of)
    now = as_of or utcnow()
    return [history_factor(session, campaign, before, policy),
            stock_factor(session, task, campaign, before, policy),
            budget_factor(session, campaign, now, policy),
            slot_factor(session, campaign, before, policy),
            rejection_factor(session, campaign, before, policy)]


def recommend(session: Session, task: Task, as_of: datetime | None = None,
              policy: RecommendationPolicy | None = None) -> Recommendation:
    policy = policy or current()
    return score(task.id or 0, factors(session, task, as_of, policy), policy)
