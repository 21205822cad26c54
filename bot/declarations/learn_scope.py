"""What a rejection means for learning: which code says something, and where a learned rule
applies.

A code like ``REPORTED`` (a person reporting a hand-off's verdict) or ``NOT_ELIGIBLE`` says
nothing about the reason, so such rejections are grouped by their text instead; otherwise an
image rejection and a price rejection would fold into one proposal. A rule derived from
rejections that all came from one campaign type (or that restates what the campaigns'
notices asked for, such as one campaign's 12 % minimum discount) is scoped to those campaign
types or categories instead of becoming a rule for the whole platform.
"""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core.i18n import t
from bot.declarations import rules
from storage.models import Campaign, Task
from storage.models_data import RejectionRecord

# Codes that only say "rejected": the text carries the reason.
GENERIC_CODES = frozenset({"REPORTED", "REJECTED", "REJECT", "NOT_ELIGIBLE", "OTHER", "OTHERS",
                           "UNKNOWN", "ERROR", "FAIL", "FAILED", "MANUAL", "DENIED", "0", "-1"})
SKIP = "skip"  # the campaigns' own requirement with nothing to scope it to: no proposal


def meaningful_code(code: str | None) -> str:
    """The code when it names a reason, else ``""``."""
    value = (code or "").strip()
    return "" if value.upper() in GENERIC_CODES else value


def evidence(session: Session, platform: str, signature: str) -> list[Campaign]:
    """The campaign of every distinct rejected declaration with this reason (one each)."""
    pairs = session.exec(select(RejectionRecord.task_id, RejectionRecord.declaration_version)
                         .where(RejectionRecord.platform == platform,
                                RejectionRecord.signature == signature).distinct()).all()
    out = []
    for task_id, _ in pairs:
        task = session.get(Task, task_id)
        campaign = session.get(Campaign, task.campaign_id) if task else None
        if campaign is not None:
            out.append(campaign)
    return out


def occurrences(session: Session, platform: str, signature: str) -> int:
    """How often a reason was seen: once per rejected declaration, however many lines."""
    return len(session.exec(select(RejectionRecord.task_id, RejectionRecord.declaration_version)
                            .where(RejectionRecord.platform == platform,
                                   RejectionRecord.signature == signature).distinct()).all())


def _restates(rule: dict, campaign: Campaign) -> bool:
    """Whether the rule says what the campaign's own notice already asked for."""
    own = rules.campaign_overrides([], campaign.requirements or {},
                                   f"{campaign.type} {campaign.title}")
    keys = [k for k in rule if k not in ("id", "kind", "scope", "fields", "source", "origin",
                                        "learned_by")]
    for mine in (r for r in own if r.get("kind") == rule.get("kind")):
        if rule["kind"] in ("banned_words", "documents"):
            field = "words" if rule["kind"] == "banned_words" else "required"
            if set(rule.get(field) or []) <= set(mine.get(field) or []):
                return True
        elif all(_same(mine.get(k), rule.get(k)) for k in keys):
            return True
    return False


def _same(a: object, b: object) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return a == b


def _categories(campaign: Campaign) -> set[str]:
    found = (campaign.requirements or {}).get("categories") or []
    return {str(c) for c in (found if isinstance(found, list) else [found]) if str(c).strip()}


def scope_for(rule: dict, campaigns: list[Campaign]) -> dict | str:
    """``{}`` (the whole platform), ``{"campaign_types": […]}``, ``{"categories": […]}`` or
    ``SKIP`` when the rule only restates notices that give nothing to scope it to."""
    if not campaigns:
        return {}
    types = sorted({c.type for c in campaigns if c.type})
    all_typed = all(c.type for c in campaigns)
    named = [_categories(c) for c in campaigns]
    common = sorted(set.intersection(*named)) if all(named) else []
    if any(_restates(rule, c) for c in campaigns):
        if all_typed:
            return {"campaign_types": types}
        return {"categories": common} if common else SKIP
    if all_typed and len(types) == 1:
        return {"campaign_types": types}
    if common:
        return {"categories": common}
    return {}


def scope_text(rule: dict, lang: str | None) -> str:
    """Where a learned rule applies, in words."""
    scope = rule.get("scope") or {}
    sep = "、" if (lang or "zh-CN") != "en" else ", "
    if scope.get("campaign_types"):
        return t("learn.scope.types", lang, types=sep.join(scope["campaign_types"]))
    if scope.get("categories"):
        return t("learn.scope.categories", lang, categories=sep.join(scope["categories"]))
    return t("learn.scope.platform", lang)
