"""How well the recommendations predicted, and which weights would have done better.

**Back-test**: every campaign with results is replayed as of its start (``recommend`` with
``as_of``: only results, rejections and budgets from before count) and its verdict is
compared with what the campaign really did: it **paid** when its net (margin after fees −
slot fees, ``bot.insight.roi``) was above zero, or — without costs in the pool — when its
ROI reached the policy's ``roi_bad``. *Apply* is a hit when it paid, *skip* when it did not;
*caution* is neither and is counted on its own. The hit rate is hits ÷ (apply + skip).

**Logged**: the same comparison for what PromoPilot really showed when the team decided
(``recommendation_log``, written when a task leaves ``new``).

**Tuning**: the factors' values do not depend on the weights, so other weights are scored on
the same replay: a coordinate search over ``GRID`` per factor (the weights adding up to at most
50) keeps the best hit rate (ties: the current weights). It is **reported** — by
``promopilot recommend backtest --tune`` and ``bench/insight_backtest.py`` — never written
to ``policies/recommendation.yaml`` silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from bot.insight import roi
from bot.insight.recommend import Factor, score
from bot.insight.recommend import factors as factors_of
from bot.insight.recommend_policy import FACTORS, RecommendationPolicy, current
from storage.models import Campaign, Task
from storage.models_results import CampaignResult, RecommendationLog

GRID = (0, 5, 10, 15, 20, 25)


@dataclass(frozen=True)
class Case:
    task_id: int
    campaign: str
    factors: tuple[Factor, ...]
    paid: bool | None  # None: the results say neither (no fees, no costs)
    net_rate: str


def outcome(session: Session, campaign_id: int,
            policy: RecommendationPolicy) -> tuple[bool | None, str]:
    totals = roi.total(session, roi.rows_in(session, campaign_ids=[campaign_id]))
    if totals.net is not None:
        return totals.net > 0, f"{totals.net_rate:.1%}" if totals.net_rate is not None else "—"
    if totals.roi is not None:
        return totals.roi >= policy.target("roi_bad"), f"ROI {totals.roi}"
    return None, "—"


def cases(session: Session, policy: RecommendationPolicy | None = None) -> list[Case]:
    """Every campaign with results, oldest first, replayed as of its start."""
    policy = policy or current()
    found = []
    campaigns = session.exec(select(Campaign).where(
        Campaign.id.in_(select(CampaignResult.campaign_id)))).all()
    for campaign in sorted(campaigns, key=lambda c: (c.event_start or c.created_at,
                                                     c.external_id)):
        task = session.exec(select(Task).where(Task.campaign_id == campaign.id)
                            .order_by(Task.id)).first()
        if task is None:
            continue
        as_of = campaign.event_start or campaign.registration_end or campaign.created_at
        paid, rate = outcome(session, campaign.id or 0, policy)
        found.append(Case(task.id or 0, campaign.title,
                          tuple(factors_of(session, task, as_of, policy)), paid, rate))
    return found


def evaluate(found: list[Case], policy: RecommendationPolicy) -> dict:
    counts = {"apply": 0, "caution": 0, "skip": 0}
    hits = decided = 0
    rows = []
    for case in found:
        rec = score(case.task_id, list(case.factors), policy)
        counts[rec.verdict] += 1
        hit = None
        if case.paid is not None and rec.verdict != "caution":
            decided += 1
            hit = (rec.verdict == "apply") == case.paid
            hits += hit
        rows.append({"task_id": case.task_id, "campaign": case.campaign,
                     "verdict": rec.verdict, "score": rec.score, "paid": case.paid,
                     "net_rate": case.net_rate, "hit": hit})
    return {"cases": len(found), "decided": decided, "hits": hits,
            "hit_rate": round(hits / decided, 4) if decided else None,
            "verdicts": counts, "rows": rows}


def tune(found: list[Case], policy: RecommendationPolicy, rounds: int = 3) -> dict:
    """The weights with the best hit rate on the replay (coordinate search over ``GRID``)."""
    best = {name: policy.weight(name) for name in FACTORS}
    best_rate = evaluate(found, policy).get("hit_rate") or 0.0
    for _ in range(rounds):
        improved = False
        for name in FACTORS:
            for value in GRID:
                trial = {**best, name: float(value)}
                if sum(trial.values()) > 50 or trial == best:
                    continue
                rate = evaluate(found, policy.with_weights(trial)).get("hit_rate") or 0.0
                if rate > best_rate:
                    best, best_rate, improved = trial, rate, True
        if not improved:
            break
    return {"weights": best, "hit_rate": best_rate,
            "changed": {k: v for k, v in best.items() if v != policy.weight(k)}}


def logged(session: Session, policy: RecommendationPolicy | None = None) -> dict:
    """What was shown when teams decided, against what their campaigns then did."""
    policy = policy or current()
    hits = decided = total = 0
    for row in session.exec(select(RecommendationLog).order_by(RecommendationLog.task_id)):
        task = session.get(Task, row.task_id)
        if task is None:
            continue
        has_results = session.exec(select(CampaignResult.id).where(
            CampaignResult.campaign_id == task.campaign_id)).first()
        if has_results is None:
            continue
        total += 1
        paid, _ = outcome(session, task.campaign_id, policy)
        if paid is None or row.verdict == "caution":
            continue
        decided += 1
        hits += (row.verdict == "apply") == paid
    return {"logged": total, "decided": decided, "hits": hits,
            "hit_rate": round(hits / decided, 4) if decided else None}


def report(session: Session, policy: RecommendationPolicy | None = None,
           with_tuning: bool = False) -> dict:
    policy = policy or current()
    found = cases(session, policy)
    out = {"policy": policy.label, "weights": {n: policy.weight(n) for n in FACTORS},
           "backtest": evaluate(found, policy), "logged": logged(session, policy)}
    if with_tuning:
        out["tuning"] = tune(found, policy)
    return out
