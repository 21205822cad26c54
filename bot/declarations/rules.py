"""The rules knowledge base: one YAML file per platform, versioned in the database.

A rules file is data a rules owner edits (``rules/tmall.yaml`` …); ``sync`` stores a new
``RuleVersion`` (author, time) whenever a file's content changes, so a pre-check can always
say which version it applied. A campaign's own requirements (from its notice) override the
platform defaults; ``effective`` merges the two.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from bot.core.errors import Invalid
from bot.declarations import rule_text
from storage.models import Campaign
from storage.models_data import RuleVersion

log = logging.getLogger(__name__)
RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
KINDS = {"image", "text_length", "banned_words", "price", "min_stock", "documents", "category"}
# Names a notice uses for documents → the document kinds of the data pool.
DOC_ALIASES = {
    "营业执照": "business_licence", "business licence": "business_licence",
    "品牌授权书": "brand_authorisation", "品牌授权": "brand_authorisation",
    "brand authorisation": "brand_authorisation",
    "质检报告": "quality_report", "检测报告": "quality_report", "quality report": "quality_report",
    "食品经营许可证": "food_licence", "food licence": "food_licence",
    "商标注册证": "trademark_certificate",
}
# Documents that belong to a brand: one covers the brand (or the category) it names, never
# every brand of a declaration. The other kinds (licences) cover the whole company.
BRAND_SCOPED_DOCS = frozenset({"brand_authorisation", "quality_report", "trademark_certificate"})
# Other sections of a rules file (``fees:`` …), checked by the feature that reads them:
# name → fn(section) returning why it is unusable, or None.
SECTION_CHECKS: dict[str, Any] = {}



class RulesError(Invalid):
    pass


@dataclass
class RuleSet:
    """The rules that apply to one campaign (platform defaults + the notice's overrides)."""

    platform: str
    version: int
    rules: list[dict] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.rules if r.get("kind") == kind]

    def first(self, kind: str) -> dict:
        found = self.of_kind(kind)
        return found[0] if found else {}


def doc_kind(name: str) -> str:
    return DOC_ALIASES.get(str(name).strip().lower(), DOC_ALIASES.get(str(name).strip(), str(name)))


def validate(content: Any, source: str) -> dict:
    """Check the shape of a rules file; raise ``RulesError`` naming the file and the fault."""
    if not isinstance(content, dict) or not isinstance(content.get("platform"), str):
        raise RulesError("rules.bad_file", file=source, reason="needs 'platform: <code>'")
    rules = content.get("rules")
    if not isinstance(rules, list):
        raise RulesError("rules.bad_file", file=source, reason="needs a 'rules:' list")
    seen: set[str] = set()
    for i, rule in enumerate(rules, 1):
        if not isinstance(rule, dict) or rule.get("kind") not in KINDS:
            raise RulesError("rules.bad_file", file=source,
                             reason=f"rule {i}: kind must be one of {', '.join(sorted(KINDS))}")
        rule.setdefault("id", f"{rule['kind']}_{i}")
        problem = rule_text.image_problem(rule) if rule["kind"] == "image" else None
        if problem:
            raise RulesError("rules.bad_file", file=source, reason=f"rule {rule['id']}: {problem}")
        if rule["id"] in seen:
            raise RulesError("rules.bad_file", file=source, reason=f"duplicate id {rule['id']!r}")
        seen.add(rule["id"])
    for name, problem_of in SECTION_CHECKS.items():
        problem = problem_of(content[name]) if name in content else None
        if problem:
            raise RulesError("rules.bad_file", file=source, reason=problem)
    return content


def checksum(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()


def latest(session: Session, platform: str) -> RuleVersion | None:
    return session.exec(select(RuleVersion).where(RuleVersion.platform == platform)
                        .order_by(RuleVersion.version.desc()).limit(1)).first()


def history(session: Session, platform: str) -> list[RuleVersion]:
    return list(session.exec(select(RuleVersion).where(RuleVersion.platform == platform)
                             .order_by(RuleVersion.version)))


def store(session: Session, content: dict, author: str, source: str = "yaml",
          note: str = "") -> RuleVersion | None:
    """A new version when the content differs from the latest one; ``None`` if unchanged."""
    platform = content["platform"]
    digest = checksum(content)
    current = latest(session, platform)
    if current is not None and current.checksum == digest:
        return None
    row = RuleVersion(platform=platform, version=(current.version + 1) if current else 1,
                      author=author[:128], source=source, checksum=digest, content=content,
                      note=note)
    session.add(row)
    session.flush()
    log.info("rules stored", extra={"platform": platform, "version": row.version,
                                    "author": author, "source": source})
    return row


def read_file(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError("rules.bad_file", file=path.name, reason=str(exc)[:200]) from exc
    return validate(content, path.name)


def sync(session: Session, directory: Path = RULES_DIR, author: str | None = None) -> list[RuleVersion]:
    """Load every ``<platform>.yaml``; store the ones that changed."""
    stored = []
    for path in sorted(directory.glob("*.yaml")):
        content = read_file(path)
        author_ = author or str(content.get("author") or "yaml")
        content, kept = with_learned(session, content)
        row = store(session, content, author_,
                    note=f"from {path.name}" + (f" + {kept} learned" if kept else ""))
        if row is not None:
            stored.append(row)
    return stored


def learned(session: Session, platform: str) -> list[dict]:
    """The learned rules (accepted proposals) of a platform's current version."""
    row = latest(session, platform)
    return [r for r in (row.content.get("rules", []) if row else []) if r.get("origin") == "learned"]


def with_learned(session: Session, content: dict) -> tuple[dict, int]:
    """A rules file's content with the platform's learned rules kept on top (same id: the
    learned one wins), so a re-sync of the YAML baseline never drops what was learned."""
    kept = learned(session, content["platform"])
    if not kept:
        return content, 0
    ids = {r["id"] for r in kept}
    merged = [r for r in content.get("rules", []) if r.get("id") not in ids] + copy.deepcopy(kept)
    return {**content, "rules": merged}, len(kept)


def in_scope(rule: dict, campaign: Campaign) -> bool:
    """A learned rule scoped to campaign types or categories applies only to those campaigns."""
    scope = rule.get("scope") or {}
    types = [str(x) for x in scope.get("campaign_types") or []]
    if types and (campaign.type or "") not in types:
        return False
    cats = [str(x) for x in scope.get("categories") or []]
    if cats:
        mine = [str(c) for c in (campaign.requirements or {}).get("categories") or []]
        return any(a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/")
                   for a in mine for b in cats)
    return True


def platform_rules(session: Session, platform: str) -> tuple[int, list[dict]]:
    """The latest version of a platform's rules, loaded from its file on first use."""
    row = latest(session, platform)
    if row is None:
        path = RULES_DIR / f"{platform}.yaml"
        if not path.exists():
            return 0, []
        row = store(session, read_file(path), "system", note=f"first use, from {path.name}")
        assert row is not None
    return row.version, copy.deepcopy(row.content.get("rules", []))


def add_rule(session: Session, platform: str, rule: dict, author: str, source: str,
             note: str = "") -> RuleVersion:
    """A new version with one rule added (or replaced, same id): how learning lands."""
    row = latest(session, platform)
    if row is None:
        platform_rules(session, platform)
        row = latest(session, platform)
    content = copy.deepcopy(row.content) if row else {"platform": platform, "rules": []}
    content["rules"] = [r for r in content.get("rules", []) if r.get("id") != rule["id"]]
    content["rules"].append({**rule, "origin": "learned", "learned_by": author[:128]})
    validate(content, f"{platform} (+{rule['id']})")
    stored = store(session, content, author, source=source, note=note)
    return stored or latest(session, platform)  # type: ignore[return-value]


# -- campaign overrides --------------------------------------------------------------------

def _price_rule_text(text: str) -> dict:
    """'活动价不得高于近30天最低成交价' / '近30天最低价的95折' → days, ratio, strictness."""
    return rule_text.price_rule(text)


def _override(rules: list[dict], kind: str, values: dict) -> None:
    for rule in rules:
        if rule.get("kind") == kind:
            rule.update(values)
            rule["source"] = "campaign"
            return
    rules.append({"id": f"campaign_{kind}", "kind": kind, "source": "campaign", **values})


def campaign_overrides(rules: list[dict], req: dict, campaign_text: str = "") -> list[dict]:
    """Apply a notice's requirements on top of the platform's rules; ``campaign_text`` (the
    campaign's type and title) says whether it asks for the lowest price on every channel
    (百亿补贴)."""
    rules = copy.deepcopy(rules)
    if req.get("min_discount") is not None:
        off = rule_text.discount(req["min_discount"])  # 0.15, "15%", "85折"
        if off is None:
            log.warning("unreadable min_discount in a notice", extra={"value": str(req["min_discount"])[:40]})
        else:
            _override(rules, "price", {"min_discount": off})
    if req.get("price_rule"):
        parsed = _price_rule_text(str(req["price_rule"]))
        if parsed:
            _override(rules, "price", parsed)
    if req.get("min_stock") is not None:
        _override(rules, "min_stock", {"min": int(req["min_stock"])})
    size = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", str(req.get("image_size") or ""))
    if size:  # "800x800": at least that size, in that ratio (a 1200x1200 image is fine)
        w, h = int(size.group(1)), int(size.group(2))
        _override(rules, "image", {"min_width": w, "min_height": h,
                                   "ratio": rule_text.ratio_of(w, h), "width": None, "height": None})
    if req.get("image_ratio"):
        _override(rules, "image", {"ratio": str(req["image_ratio"]), "width": None, "height": None})
    if rule_text.across_channels(campaign_text):
        _override(rules, "price", {"channels": "all"})
    if req.get("required_documents"):
        _override(rules, "documents", {"required": [doc_kind(d) for d in req["required_documents"]]})
    if req.get("categories"):
        _override(rules, "category", {"allowed": [str(c) for c in req["categories"]]})
    if req.get("banned_words"):
        rules.append({"id": "campaign_banned_words", "kind": "banned_words", "source": "campaign",
                      "fields": ["title", "note"], "words": [str(w) for w in req["banned_words"]]})
    if req.get("title_max_length"):
        _override(rules, "text_length", {"max": int(req["title_max_length"])})
    for extra in req.get("rules") or []:  # structured overrides, merged by id
        if isinstance(extra, dict) and extra.get("kind") in KINDS:
            rules = [r for r in rules if r.get("id") != extra.get("id")]
            rules.append({**extra, "source": "campaign"})
    for rule in rules:  # "the lowest price" with no period: the last 30 days
        if rule.get("kind") == "price" and rule.get("channels") == "all":
            rule.setdefault("lowest_days", 30)
            rule.setdefault("max_ratio_of_lowest", 1.0)
    return rules


def effective(session: Session, campaign: Campaign) -> RuleSet:
    version, rules = platform_rules(session, campaign.platform)
    rules = [r for r in rules if in_scope(r, campaign)]
    return RuleSet(campaign.platform, version, campaign_overrides(
        rules, campaign.requirements or {}, f"{campaign.type} {campaign.title}"))
