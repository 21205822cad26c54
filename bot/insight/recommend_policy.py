"""The recommendation's weights and targets: ``policies/recommendation.yaml`` (or the file
``PROMOPILOT_RECOMMENDATION_POLICY`` names). Data a team edits; a file that cannot be used
stops start-up with what to fix, never a silent default."""

from __future__ import annotations

import hashlib
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from bot.core.errors import Invalid
from bot.core.policies import PolicyHolder
from bot.core.settings import ROOT

log = logging.getLogger(__name__)
DEFAULT_PATH = ROOT / "policies" / "recommendation.yaml"
FACTORS = ("history", "stock", "budget", "slot", "rejection")
VERDICTS = ("apply", "caution", "skip")
TARGETS = {"net_rate_good": "0.10", "cover_good": "1.5", "cover_bad": "0.5", "roi_good": "5",
           "roi_bad": "2", "rejection_bad": "0.3"}


class RecommendationPolicy(BaseModel):
    version: int = 1
    thresholds: dict[str, int] = Field(default_factory=lambda: {"apply": 60, "skip": 40})
    weights: dict[str, float] = Field(default_factory=lambda: {
        "history": 15, "stock": 10, "budget": 5, "slot": 10, "rejection": 10})
    targets: dict[str, Decimal] = Field(default_factory=dict)
    budgets: dict[str, Decimal] = Field(default_factory=dict)
    similar: dict[str, int] = Field(default_factory=lambda: {"max": 10, "days": 365})
    digest: str = ""  # of the file's text: which weights a logged recommendation used

    def target(self, name: str) -> Decimal:
        return Decimal(str(self.targets.get(name, TARGETS[name])))

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 0))

    def budget(self, platform: str) -> Decimal | None:
        value = self.budgets.get(platform, self.budgets.get("*"))
        return Decimal(str(value)) if value is not None else None

    def verdict(self, score: int) -> str:
        if score >= self.thresholds.get("apply", 60):
            return "apply"
        return "skip" if score < self.thresholds.get("skip", 40) else "caution"

    @property
    def label(self) -> str:
        return f"v{self.version}" + (f"-{self.digest}" if self.digest else "")

    def with_weights(self, weights: dict[str, float]) -> RecommendationPolicy:
        return self.model_copy(update={"weights": dict(weights)})


def problems(policy: RecommendationPolicy) -> str | None:
    for name, value in policy.weights.items():
        if name not in FACTORS:
            return f"weights.{name}: unknown factor (known: {', '.join(FACTORS)})"
        if value < 0:
            return f"weights.{name}: a weight cannot be negative"
    if sum(policy.weights.values()) > 50:
        return "weights: at most 50 together (the score is 50 ± the points, within 0-100)"
    apply, skip = policy.thresholds.get("apply", 60), policy.thresholds.get("skip", 40)
    if set(policy.thresholds) - {"apply", "skip"}:
        return "thresholds: only apply and skip"
    if not 0 <= skip <= apply <= 100:
        return "thresholds: 0 <= skip <= apply <= 100"
    for name in policy.targets:
        if name not in TARGETS:
            return f"targets.{name}: unknown (known: {', '.join(TARGETS)})"
    if policy.target("cover_bad") >= policy.target("cover_good"):
        return "targets: cover_bad must be below cover_good"
    if policy.target("roi_bad") >= policy.target("roi_good"):
        return "targets: roi_bad must be below roi_good"
    if policy.target("net_rate_good") <= 0 or policy.target("rejection_bad") <= 0:
        return "targets: net_rate_good and rejection_bad must be above 0"
    for platform, value in policy.budgets.items():
        if value < 0:
            return f"budgets.{platform}: cannot be negative"
    return None


def load(path: Path | None = None) -> RecommendationPolicy:
    path = path or Path(os.environ.get("PROMOPILOT_RECOMMENDATION_POLICY") or DEFAULT_PATH)
    if not path.exists():
        log.warning("no recommendation policy; default weights", extra={"path": str(path)})
        return RecommendationPolicy()
    try:
        text = path.read_text("utf-8")
        raw: Any = yaml.safe_load(text) or {}
        policy = RecommendationPolicy.model_validate(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        raise Invalid("rec.bad_policy", file=path.name, reason=str(exc)[:300]) from exc
    problem = problems(policy)
    if problem:
        raise Invalid("rec.bad_policy", file=path.name, reason=problem)
    policy.digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return policy


_holder: PolicyHolder[RecommendationPolicy] = PolicyHolder(load)
current = _holder.current
use = _holder.use  # swap the policy (tests, a reload, trial weights)
