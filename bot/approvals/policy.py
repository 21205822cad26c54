"""The approval policy (``policies/approval.yaml``): which steps a declaration needs.

Kept as data so that a team changes who approves what without a release; this module only
computes the facts of a declaration (discount depth, budget, margin, new brand/category)
and matches them against the rules. It also holds the human gates (see ``bot.approvals.gates``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, select

from bot.core.policies import PolicyHolder
from bot.core.settings import ROOT
from bot.core.users import members_with_role
from storage.models import Campaign, Declaration, DeclarationLine, Product, Task, Team, User

DEFAULT_PATH = ROOT / "policies" / "approval.yaml"
DONE_STATES = ("accepted", "running", "finished")


class StepSpec(BaseModel):
    seq: int = Field(ge=1)
    roles: list[str] = Field(min_length=1)
    mode: Literal["all_of", "any_of"] = "all_of"
    sla_hours: float | None = None


class Rule(BaseModel):
    name: str
    reason: str = ""
    when: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepSpec]


class TeamPolicy(BaseModel):
    people: dict[str, list[str]] = Field(default_factory=dict)
    known_brands: list[str] = Field(default_factory=list)
    known_categories: list[str] = Field(default_factory=list)


class Policy(BaseModel):
    defaults: dict[str, float] = Field(default_factory=lambda: {"sla_hours": 4,
                                                                "margin_floor": 0.15})
    rules: list[Rule] = Field(default_factory=list)
    teams: dict[str, TeamPolicy] = Field(default_factory=dict)
    gates: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)

    def team(self, code: str) -> TeamPolicy:
        return self.teams.get(code) or self.teams.get("default") or TeamPolicy()


KNOWN_CONDITIONS = {"discount_over", "budget_over", "margin_below", "new_brand", "new_category",
                    "platform"}


class PolicyError(ValueError):
    """The policy file is unreadable; the message says where."""


def load(path: Path | str | None = None) -> Policy:
    path = Path(path or os.environ.get("PROMOPILOT_APPROVAL_POLICY") or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        policy = Policy.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise PolicyError(f"approval policy {path}: {exc}") from exc
    for rule in policy.rules:
        unknown = set(rule.when) - KNOWN_CONDITIONS
        if unknown:
            raise PolicyError(f"approval policy {path}: rule {rule.name!r} has unknown "
                              f"conditions {sorted(unknown)}")
    return policy


_holder: PolicyHolder[Policy] = PolicyHolder(load)
current = _holder.current
use = _holder.use  # swap the policy (tests, a reload, trial weights)


@dataclass
class Facts:
    platform: str
    team: str = "default"
    max_discount: Decimal = Decimal("0")
    budget: Decimal = Decimal("0")
    min_margin: Decimal | None = None
    new_brands: list[str] = field(default_factory=list)
    new_categories: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


def _known(session: Session, task: Task, column: Any) -> set[str]:
    """Brands or categories this team has had accepted by a platform before."""
    rows = session.exec(
        select(column).join(DeclarationLine, DeclarationLine.sku == Product.sku)
        .join(Declaration, Declaration.id == DeclarationLine.declaration_id)
        .join(Task, Task.id == Declaration.task_id)
        .where(Task.team_id == task.team_id, Task.id != task.id, Task.state.in_(DONE_STATES))
    )
    return {r for r in rows if r}


def facts_for(session: Session, task: Task, lines: list[DeclarationLine]) -> Facts:
    campaign = session.get(Campaign, task.campaign_id)
    team = session.get(Team, task.team_id)
    code = team.code if team else "default"
    team_policy = current().team(code)
    facts = Facts(platform=campaign.platform if campaign else "", team=code)
    products = {p.sku: p for p in session.exec(
        select(Product).where(Product.sku.in_([line.sku for line in lines])))}
    brands, categories = set(), set()
    for line in lines:
        if line.list_price and line.promo_price is not None:
            off = 1 - line.promo_price / line.list_price
            facts.max_discount = max(facts.max_discount, off)
            facts.budget += max(line.list_price - line.promo_price, Decimal("0")) * line.promo_stock
        product = products.get(line.sku)
        if product is None:
            continue
        if product.cost is not None and line.promo_price:
            margin = (line.promo_price - product.cost) / line.promo_price
            facts.min_margin = margin if facts.min_margin is None else min(facts.min_margin, margin)
        brands.add(product.brand)
        categories.add(product.category)
    known_brands = set(team_policy.known_brands) | _known(session, task, Product.brand)
    known_categories = set(team_policy.known_categories) | _known(session, task, Product.category)
    facts.new_brands = sorted(b for b in brands if b and b not in known_brands)
    facts.new_categories = sorted(c for c in categories if c and c not in known_categories)
    facts.max_discount = facts.max_discount.quantize(Decimal("0.0001"))
    facts.budget = facts.budget.quantize(Decimal("0.01"))
    if facts.min_margin is not None:
        facts.min_margin = facts.min_margin.quantize(Decimal("0.0001"))
    return facts


def _holds(rule: Rule, facts: Facts, policy: Policy) -> bool:
    for name, want in rule.when.items():
        if name == "discount_over" and not facts.max_discount > Decimal(str(want)):
            return False
        if name == "budget_over" and not facts.budget > Decimal(str(want)):
            return False
        if name == "margin_below":
            floor = policy.defaults.get("margin_floor", 0.15) if want == "floor" else want
            if facts.min_margin is None or not facts.min_margin < Decimal(str(floor)):
                return False
        if name == "new_brand" and bool(facts.new_brands) != bool(want):
            return False
        if name == "new_category" and bool(facts.new_categories) != bool(want):
            return False
        if name == "platform" and facts.platform not in (want if isinstance(want, list)
                                                         else [want]):
            return False
    return True


def route(facts: Facts, policy: Policy | None = None) -> list[dict]:
    """The steps the rules ask for: ``{seq, role, group, mode, reason, sla}``, merged."""
    policy = policy or current()
    default_sla = float(policy.defaults.get("sla_hours", 4))
    merged: dict[tuple, dict] = {}
    for rule in policy.rules:
        if not _holds(rule, facts, policy):
            continue
        reason = rule.reason or rule.name
        for spec in rule.steps:
            sla = timedelta(hours=spec.sla_hours or default_sla)
            group = f"{rule.name}@{spec.seq}" if spec.mode == "any_of" else ""
            for role in spec.roles:
                key = (spec.seq, group, role)
                step = merged.get(key)
                if step is None:
                    merged[key] = {"seq": spec.seq, "role": role, "group": group,
                                   "mode": spec.mode, "reason": reason, "sla": sla,
                                   "rules": [rule.name]}
                else:
                    if reason not in step["reason"]:
                        step["reason"] = f"{step['reason']}; {reason}"[:256]
                    step["rules"].append(rule.name)
                    step["sla"] = min(step["sla"], sla)
    return sorted(merged.values(), key=lambda s: (s["seq"], s["group"], s["role"]))


def people(session: Session, role: str, team_id: int | None) -> list[User]:
    """Who holds ``role`` in the team: the policy's list if it names people, else members."""
    team = session.get(Team, team_id) if team_id else None
    names = current().team(team.code if team else "default").people.get(role)
    if names:
        return list(session.exec(select(User).where(User.name.in_(names),
                                                    User.active == True)))  # noqa: E712
    return members_with_role(session, role, team_id)


def eligible(session: Session, role: str, team_id: int | None, requested_by: int | None,
             claimant: int | None) -> tuple[list[User], str]:
    """Who can decide a step of ``role`` on one request, and why them: the holders of the
    role except the requester and the claimant (nobody approves their own request)
    (``"role"``); when that leaves nobody, the requester's or claimant's manager
    (``"manager"``); last, an admin (``"admin"``); ``"nobody"`` when there is none at all.
    A request is never left waiting for someone who may not decide it."""
    own = {requested_by, claimant} - {None}
    holders = [u for u in people(session, role, team_id) if u.id not in own]
    if holders:
        return holders, "role"
    bosses: list[User] = []
    for user_id in (requested_by, claimant):
        user = session.get(User, user_id) if user_id else None
        boss = session.get(User, user.manager_id) if user and user.manager_id else None
        if boss is not None and boss.active and boss.id not in own and boss not in bosses:
            bosses.append(boss)
    if bosses:
        return bosses, "manager"
    admins = [u for u in people(session, "admin", team_id) if u.id not in own]
    return admins, "admin" if admins else "nobody"
