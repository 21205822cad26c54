"""Should we join this campaign? 建议报名 / 谨慎 / 建议放弃 (apply / caution / skip), with a
score and a reason per factor in plain words, each naming the data it came from.

The factors (each a value from -1 to +1, worth up to its weight in points; weights and
targets in ``policies/recommendation.yaml``):

- ``history`` — the **net margin rate** (net ÷ GMV, ``bot.insight.roi``) of the most recent
  similar campaigns' results: the same platform and campaign type (else the same platform),
  ended before this one starts. ``net_rate_good`` earns +1, 0 % is 0, −``net_rate_good`` −1;
- ``stock`` — **stock cover**: the stock left for promotions (stock − safety stock − what
  overlapping campaigns hold) ÷ the units similar campaigns sold (per SKU, the median of its
  past campaigns on this platform), for the declaration's SKUs or, before there is one, the
  pool's SKUs in the campaign's scope. ``cover_good`` +1 … ``cover_bad`` −1;
- ``budget`` — the share of this month's promotion budget (``budgets``) not yet spent on
  slot fees (the results' fees of this month on this platform): all left +1, half 0, none −1;
- ``slot`` — the **ROI** (GMV ÷ fees) past results had in the slot the notice names
  (``requirements.slot`` / 资源位), else in this campaign type: ``roi_good`` +1 …
  ``roi_bad`` −1;
- ``rejection`` — the share of declared lines the platform rejected in the last 180 days
  (``rejection_records`` against reviewed lines; the campaign type's own when it has 5
  reviewed lines), and how many rules were learned from them (``rule_proposals``):
  none +1 … ``rejection_bad`` or more −1.

Score = 50 + Σ round(weight × value) (the weights add up to at most 50, so 0–100); a
factor without data is worth 0 and says so. Every query is ordered by data (dates,
external ids), never by insertion, so the same history gives the same answer whatever order
it was stored in. ``as_of`` replays the
recommendation as it would have been at a past moment (the back-test).
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from bot.core.i18n import t
from bot.core.timefmt import local_date
from bot.declarations.selection import campaign_scope
from bot.insight import recommend_data
from bot.insight.recommend_data import REJECTION_DAYS, Batch
from bot.insight.recommend_policy import FACTORS, RecommendationPolicy, current
from cards.review import platform_label
from storage.models import Campaign, Task

MAX_SKUS = 200
TYPE_MIN_LINES = 5


def clamp(value: float) -> float:
    return max(-1.0, min(1.0, value))


def scale(value: float, bad: float, good: float) -> float:
    """``bad`` → −1, ``good`` → +1, linear in between (either direction)."""
    return clamp(2 * (value - bad) / (good - bad) - 1) if good != bad else 0.0


@dataclass(frozen=True)
class Factor:
    name: str
    value: float | None  # −1 … +1; None: no data
    params: dict = field(default_factory=dict)  # the data the reason names


@dataclass(frozen=True)
class Reason:
    factor: str
    points: int
    value: float | None
    params: dict

    def text(self, lang: str | None) -> str:
        params = dict(self.params)
        if "platform" in params:
            params["platform"] = platform_label(str(params["platform"]), lang or "zh-CN")
        if params.get("which") == "*":
            params["which"] = t("rec.all_types", lang)
        if self.value is None:
            return t(f"rec.none.{self.factor}", lang, **params)
        return t(f"rec.reason.{self.factor}", lang, **params)

    def as_dict(self, lang: str | None) -> dict:
        return {"factor": self.factor, "points": self.points,
                "value": None if self.value is None else round(self.value, 3),
                "text": self.text(lang), "data": self.params}


@dataclass(frozen=True)
class Recommendation:
    task_id: int
    verdict: str
    score: int
    reasons: tuple[Reason, ...]
    policy: str

    def as_dict(self, lang: str | None = "en") -> dict:
        return {"task_id": self.task_id, "verdict": self.verdict,
                "label": t(f"rec.verdict.{self.verdict}", lang), "score": self.score,
                "base": 50, "policy": self.policy,
                "reasons": [r.as_dict(lang) for r in self.reasons]}

    def factors(self) -> dict[str, float | None]:
        return {r.factor: r.value for r in self.reasons}


def similar(data: Batch, campaign: Campaign, before: datetime,
            same_type: bool) -> list[Campaign]:
    """The most recent campaigns on the platform (of the type) with results, ended before."""
    policy = data.policy
    since = before - timedelta(days=policy.similar.get("days", 365))
    found = [c for c in data.with_results(campaign.platform) if c.id != campaign.id
             and (not same_type or c.type == campaign.type)
             and c.event_end is not None and since <= c.event_end <= before]
    found.sort(key=lambda c: (c.event_end, c.external_id), reverse=True)
    return found[:policy.similar.get("max", 10)]


def _names(campaigns: list[Campaign]) -> str:
    shown = "、".join(c.title[:20] for c in campaigns[:3])
    return shown + ("…" if len(campaigns) > 3 else "")


def history_factor(data: Batch, campaign: Campaign, before: datetime) -> Factor:
    past = similar(data, campaign, before, True) if campaign.type else []
    scope = "type"
    if not past:
        past, scope = similar(data, campaign, before, False), "platform"
    params = {"platform": campaign.platform, "type": campaign.type or "—", "scope": scope}
    if not past:
        return Factor("history", None, params)
    totals = data.total(data.of_campaigns({c.id or 0 for c in past}))
    params |= {"n": len(past), "names": _names(past), "gmv": f"{totals.gmv:,.2f}",
               "units": totals.units, "roi": "—" if totals.roi is None else str(totals.roi)}
    if totals.net_rate is None:
        return Factor("history", None, params | {"why": "cost"})
    params["rate"] = f"{totals.net_rate:.1%}"
    good = float(data.policy.target("net_rate_good"))
    return Factor("history", clamp(float(totals.net_rate) / good), params)


def _skus(data: Batch, task: Task, campaign: Campaign) -> tuple[list[str], str]:
    lines = data.latest_lines(task.id or 0)
    if lines:
        return sorted({x.sku for x in lines})[:MAX_SKUS], "declaration"
    products = data.all_products()
    cats = data.categories(campaign.platform)
    scope = campaign_scope(campaign, products, cats)
    if scope["categories"] or scope["brands"]:
        brands = {b.lower() for b in scope["brands"]}
        chosen = [p.sku for p in products
                  if (not scope["categories"] or any(
                      (cats.get(p.sku) or p.category or "").startswith(c)
                      for c in scope["categories"]))
                  and (not brands or (p.brand or "").lower() in brands)]
        return chosen[:MAX_SKUS], "scope"
    return data.sold(campaign.platform)[:MAX_SKUS], "sold"


def _past_units(data: Batch, campaign: Campaign, skus: list[str],
                before: datetime) -> dict[str, float]:
    """Per SKU, the median units of its past campaigns on the platform (ended before): of
    this campaign type when the SKU has some, else of every type."""
    per: dict[tuple[str, int], int] = {}
    same: set[tuple[str, int]] = set()
    ended = data.ended(campaign.platform)
    for sku in sorted(set(skus)):
        ends, rows = ended.get(sku, ([], []))
        for row in rows[:bisect.bisect_right(ends, before)]:
            if row.campaign_id == campaign.id:
                continue
            key = (sku, row.campaign_id)
            per[key] = per.get(key, 0) + row.units
            if campaign.type and row.type == campaign.type:
                same.add(key)
    out: dict[str, list[int]] = {}
    typed = {sku for sku, _ in same}
    for (sku, cid), units in per.items():
        if sku not in typed or (sku, cid) in same:
            out.setdefault(sku, []).append(units)
    return {sku: float(statistics.median(v)) for sku, v in out.items()}


def stock_factor(data: Batch, task: Task, campaign: Campaign, before: datetime) -> Factor:
    skus, basis = _skus(data, task, campaign)
    excluded = campaign.id if data.has_results(campaign) else None
    expected = data.memo(("units", campaign.platform, campaign.type, tuple(skus), before,
                          excluded), lambda: _past_units(data, campaign, skus, before)) \
        if skus else {}
    params: dict = {"basis": basis, "skus": len(skus)}
    if not expected:
        return Factor("stock", None, params)
    known = sorted(expected)
    held = data.committed(campaign, known, exclude_task=task.id or 0)
    products = data.products(known)
    available = sum(max(p.stock - p.safety_stock - held.get(p.sku, 0), 0)
                    for p in products.values())
    wanted = sum(expected.values())
    cover = available / wanted if wanted else 0.0
    params |= {"n": len(known), "available": available, "expected": round(wanted),
               "cover": f"{cover:.1f}", "held": sum(held.values())}
    return Factor("stock", scale(cover, float(data.policy.target("cover_bad")),
                                 float(data.policy.target("cover_good"))), params)


def budget_factor(data: Batch, campaign: Campaign, now: datetime) -> Factor:
    budget = data.policy.budget(campaign.platform)
    params: dict = {"platform": campaign.platform}
    if not budget:
        return Factor("budget", None, params)
    month = local_date(now).strftime("%Y-%m")
    spent = recommend_data.spent(data.on(campaign.platform), month, local_date(now).isoformat())
    left = max(budget - spent, Decimal("0"))
    share = float(left / budget)
    params |= {"month": month, "budget": f"{budget:,.0f}", "spent": f"{spent:,.2f}",
               "left": f"{share:.0%}"}
    return Factor("budget", clamp(2 * share - 1), params)


def slot_factor(data: Batch, campaign: Campaign, before: datetime) -> Factor:
    req = campaign.requirements or {}
    slot = str(req.get("slot") or req.get("资源位") or "").strip()
    params: dict = {"platform": campaign.platform, "slot": slot or "—",
                    "type": campaign.type or "—"}
    rows = [r for r in data.before(campaign.platform, before)
            if r.campaign_id != campaign.id and r.end is not None]
    if slot:
        chosen, basis = [r for r in rows if r.slot == slot], "slot"
    else:
        chosen, basis = [], "slot"
    if not chosen and campaign.type:
        chosen, basis = [r for r in rows if r.type == campaign.type], "type"
    totals = data.total(chosen)
    params["basis"] = basis
    if not chosen or totals.roi is None:
        return Factor("slot", None, params)
    params |= {"roi": str(totals.roi), "n": len(totals.campaigns), "fees": f"{totals.fees:,.2f}"}
    return Factor("slot", scale(float(totals.roi), float(data.policy.target("roi_bad")),
                                float(data.policy.target("roi_good"))), params)


def rejection_factor(data: Batch, campaign: Campaign, before: datetime) -> Factor:
    since = before - timedelta(days=REJECTION_DAYS)
    rejected, reviewed = data.reviewed(campaign.platform, since, before, campaign.type) \
        if campaign.type else (0, 0)
    scope = "type"
    if reviewed < TYPE_MIN_LINES:
        rejected, reviewed = data.reviewed(campaign.platform, since, before, None)
        scope = "platform"
    learned = data.learned(campaign.platform, before)
    reasons = data.rejections(campaign.platform, since, before)
    top = statistics.mode(sorted(reasons)) if reasons else ""
    params: dict = {"platform": campaign.platform, "which": campaign.type if scope == "type"
                    else "*", "days": REJECTION_DAYS, "rules": learned}
    if not reviewed:
        return Factor("rejection", None, params)
    rate = rejected / reviewed
    params |= {"rejected": rejected, "reviewed": reviewed, "rate": f"{rate:.0%}",
               "top": top or "—"}
    bad = float(data.policy.target("rejection_bad"))
    return Factor("rejection", clamp(1 - 2 * min(rate / bad, 1.0)), params)


def _factors(data: Batch, task: Task) -> list[Factor]:
    campaign = data.campaigns.get(task.campaign_id)
    if campaign is None:
        return []
    before, now = data.cutoff(campaign), data.now
    # What depends on the campaign's platform, type, slot and moments only is computed once
    # a batch; its own id matters only when it has results itself (they are left out).
    excluded = campaign.id if data.has_results(campaign) else None
    req = campaign.requirements or {}
    slot = str(req.get("slot") or req.get("资源位") or "").strip()
    kind = (campaign.platform, campaign.type)
    return [data.memo(("history", *kind, before, excluded),
                      lambda: history_factor(data, campaign, before)),
            stock_factor(data, task, campaign, before),
            data.memo(("budget", campaign.platform, now),
                      lambda: budget_factor(data, campaign, now)),
            data.memo(("slot", *kind, slot, before, excluded),
                      lambda: slot_factor(data, campaign, before)),
            data.memo(("rejection", *kind, before),
                      lambda: rejection_factor(data, campaign, before))]


def factors_many(session: Session, tasks: list[Task], as_of: datetime | None = None,
                 policy: RecommendationPolicy | None = None) -> list[list[Factor]]:
    """Each task's factors, in order, from reads shared by the whole call."""
    data = Batch(session, tasks, as_of, policy or current())
    return [_factors(data, task) for task in tasks]


def factors(session: Session, task: Task, as_of: datetime | None = None,
            policy: RecommendationPolicy | None = None) -> list[Factor]:
    return factors_many(session, [task], as_of, policy)[0]


def score(task_id: int, found: list[Factor], policy: RecommendationPolicy) -> Recommendation:
    """The verdict from the factors' values and the policy's weights and thresholds."""
    reasons = []
    for name in FACTORS:
        factor = next((f for f in found if f.name == name), Factor(name, None))
        points = 0 if factor.value is None else round(policy.weight(name) * factor.value)
        params = {**factor.params, "points": f"{points:+d}", "weight": f"{policy.weight(name):g}"}
        reasons.append(Reason(name, points, factor.value, params))
    total = 50 + sum(r.points for r in reasons)  # weights add up to ≤ 50: within 0–100
    reasons.sort(key=lambda r: (-abs(r.points), FACTORS.index(r.factor)))
    return Recommendation(task_id, policy.verdict(total), total, tuple(reasons), policy.label)


def recommend_many(session: Session, tasks: list[Task], as_of: datetime | None = None,
                   policy: RecommendationPolicy | None = None) -> list[Recommendation]:
    """The recommendation of each task (in order), a few queries for the whole list: the
    decision log's batch of claims."""
    policy = policy or current()
    return [score(task.id or 0, found, policy)
            for task, found in zip(tasks, factors_many(session, tasks, as_of, policy),
                                   strict=True)]


def recommend(session: Session, task: Task, as_of: datetime | None = None,
              policy: RecommendationPolicy | None = None) -> Recommendation:
    return recommend_many(session, [task], as_of, policy)[0]
