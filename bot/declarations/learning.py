"""Learning from platform rejections.

Every per-SKU rejection (code and text) is stored and classified. When the same reason
has been seen ``THRESHOLD`` times on a platform, a pre-check rule is proposed from it and
posted as a card; a rules owner accepts it with one button, which stores a new version of
the platform's rules, so the next declaration with the same defect is stopped before
submission. Accepted lines also feed the price history.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from bot.core import lifecycle, outbox
from bot.core.actors import Actor
from bot.core.errors import Conflict, Forbidden, NotFound
from bot.core.i18n import Term, platform_name, roles, t
from bot.core.lifecycle import Outcome
from bot.core.templating import TemplateRefused, render
from bot.core.timefmt import local
from bot.declarations import learn_scope, price_history, rules
from bot.declarations import rule_text as written
from cards.builders import builder
from cards.callback import CallbackData
from cards.model import Button, Card, CardField
from storage.models import AuditEvent, Campaign, Platform, Task, User
from storage.models_data import RejectionRecord, RuleProposal
from storage.queries import declaration_lines, latest_declaration
from storage.types import utcnow

log = logging.getLogger(__name__)
THRESHOLD = 3
RULE_OWNERS = frozenset({"legal", "manager", "admin"})
# (category, pattern over "CODE text"): first match wins.
CLASSES: list[tuple[str, re.Pattern[str]]] = [
    ("banned_words", re.compile(r"BANNED|WORD|极限词|违禁词|广告法|禁用词|敏感词", re.I)),
    ("image", re.compile(r"IMAGE|PIC|图片|主图|尺寸|像素", re.I)),
    ("title", re.compile(r"TITLE|标题", re.I)),
    ("price", re.compile(r"PRICE|DISCOUNT|价格|最低价|折扣|活动价|原价", re.I)),
    ("stock", re.compile(r"STOCK|INVENTORY|库存", re.I)),
    ("documents", re.compile(r"DOC|LICEN|QUALIF|AUTH|资质|授权|执照|许可证|报告", re.I)),
    ("category", re.compile(r"CATEGORY|类目", re.I)),
]



def classify(code: str | None, text: str | None) -> str:
    probe = f"{learn_scope.meaningful_code(code)} {text or ''}"
    return next((name for name, pattern in CLASSES if pattern.search(probe)), "other")


def signature(code: str | None, text: str | None) -> str:
    """What makes two rejections "the same reason": a code that names one, else the class and
    the text without digits (``REPORTED`` hand-offs are told apart by what was reported)."""
    code = learn_scope.meaningful_code(code)
    if code:
        return f"code:{code.upper()}"[:160]
    words = re.sub(r"\s+", " ", re.sub(r"\d+", "#", text or "")).strip()
    return f"text:{classify(None, text)}:{words}"[:160]


def derive_rule(category: str, code: str, text: str) -> dict | None:
    """A pre-check rule that would have caught this rejection, when the text says enough."""
    quoted = re.findall(r"[「“\"'『【]([^」”\"'』】]{1,20})[」”\"'』】]", text)
    if category == "banned_words" and quoted:
        return {"kind": "banned_words", "fields": ["title", "note"], "words": quoted}
    if category == "price":  # 折, strictness and 全网 read as in notices
        parsed = written.price_rule(text)
        if parsed.get("lowest_days") and "max_ratio_of_lowest" in parsed:
            return {"kind": "price", "lowest_days": parsed["lowest_days"],
                    "max_ratio_of_lowest": parsed["max_ratio_of_lowest"],
                    **({"strict": True} if parsed.get("strict") else {}),
                    **({"channels": "all"} if parsed.get("channels") else {})}
        fold = written.fold(text)  # "须为原价9折以下": at least 10 % off the list price
        if fold is not None:
            return {"kind": "price", "min_discount": float(1 - fold)}
        pct = re.search(r"(\d+(?:\.\d+)?)\s*%", text)
        if pct:
            return {"kind": "price", "min_discount": float(pct.group(1)) / 100}
    if category == "stock":
        n = re.search(r"(\d+)\s*(?:件|pcs|units?)?", text)
        if n:
            return {"kind": "min_stock", "min": int(n.group(1))}
    if category == "image":
        size = re.search(r"(\d+)\s*[x×*]\s*(\d+)", text)
        if size:
            return {"kind": "image", "width": int(size.group(1)), "height": int(size.group(2))}
    if category == "title":
        n = re.search(r"(\d+)\s*(?:个)?(?:字|characters?)", text)
        if n:
            return {"kind": "text_length", "field": "title", "max": int(n.group(1))}
    if category == "documents":
        kinds = sorted({kind for name, kind in rules.DOC_ALIASES.items() if name in text})
        if kinds:
            return {"kind": "documents", "required": kinds}
    return None


def rule_text(rule: dict, lang: str | None) -> str:
    """A rule in words; a scoped (learned) rule says where it applies."""
    text = rule_words(rule, lang)
    if rule.get("scope"):
        text += t("learn.scoped", lang, scope=learn_scope.scope_text(rule, lang))
    return text


def scope_text(rule: dict, lang: str | None) -> str:
    return learn_scope.scope_text(rule, lang)


def rule_words(rule: dict, lang: str | None) -> str:
    kind = rule.get("kind")
    if kind == "banned_words":
        return t("learn.r.banned_words", lang, words="、".join(rule.get("words", [])))
    if kind == "price" and rule.get("lowest_days"):
        return t("learn.r.lowest", lang, days=rule["lowest_days"])
    if kind == "price":
        return t("learn.r.min_discount", lang, pct=f"{rule.get('min_discount', 0):.0%}")
    if kind == "min_stock":
        return t("learn.r.min_stock", lang, n=rule.get("min"))
    if kind == "image":
        return t("learn.r.image", lang, w=rule.get("width"), h=rule.get("height"))
    if kind == "text_length":
        return t("learn.r.title", lang, n=rule.get("max"))
    if kind == "documents":
        return t("learn.r.documents", lang, kinds=", ".join(rule.get("required", [])))
    return str(rule)


# -- recording ------------------------------------------------------------------------------

def on_review(session: Session, task: Task, outcome: Outcome, actor: Actor) -> None:
    """Lifecycle listener: after a platform review, keep rejections and accepted prices."""
    if outcome.action not in ("platform_reject", "accept"):
        return
    campaign = session.get(Campaign, task.campaign_id)
    declaration = latest_declaration(session, task.id or 0)
    if campaign is None or declaration is None:
        return
    now = utcnow()
    for line in declaration_lines(session, declaration.id or 0):
        if line.result == "accepted" and line.promo_price is not None:
            price_history.record(session, line.sku, campaign.platform, line.promo_price, now,
                                 source="accepted")
        elif line.result == "rejected":
            record_rejection(session, task, campaign.platform, declaration.version, line.sku,
                             line.reason_code or "", line.reason_text or "")


def record_rejection(session: Session, task: Task, platform: str, version: int, sku: str,
                     code: str, text: str) -> RuleProposal | None:
    exists = session.exec(select(RejectionRecord.id).where(
        RejectionRecord.task_id == task.id, RejectionRecord.declaration_version == version,
        RejectionRecord.sku == sku)).first()
    if exists:
        return None
    category, sig = classify(code, text), signature(code, text)
    session.add(RejectionRecord(platform=platform, task_id=task.id or 0, declaration_version=version,
                                sku=sku, reason_code=code[:64], reason_text=text, category=category,
                                signature=sig))
    session.flush()
    seen = learn_scope.occurrences(session, platform, sig)  # one per declaration, not per line
    return _maybe_propose(session, task, platform, sig, category, code, text, seen)


def _maybe_propose(session: Session, task: Task, platform: str, sig: str, category: str,
                   code: str, text: str, seen: int) -> RuleProposal | None:
    proposal = session.exec(select(RuleProposal).where(
        RuleProposal.platform == platform, RuleProposal.signature == sig)).first()
    if proposal is not None:
        if proposal.state == "proposed" and proposal.occurrences != seen:
            scope = learn_scope.scope_for(proposal.rule, learn_scope.evidence(session, platform, sig))
            if isinstance(scope, dict):  # more evidence may widen (or narrow) where it applies
                proposal.rule = {**{k: v for k, v in proposal.rule.items() if k != "scope"},
                                 **({"scope": scope} if scope else {})}
        proposal.occurrences, proposal.task_id = seen, task.id
        session.add(proposal)
        if proposal.state == "proposed":
            _enqueue_card(session, proposal)
        return proposal
    if seen < THRESHOLD:
        return None
    rule = derive_rule(category, code, text)
    if rule is None:
        log.info("recurring rejection without a derivable rule",
                 extra={"platform": platform, "signature": sig, "seen": seen})
        return None
    scope = learn_scope.scope_for(rule, learn_scope.evidence(session, platform, sig))
    if scope == learn_scope.SKIP:
        log.info("recurring rejection restates the campaigns' own requirement; not proposed",
                 extra={"platform": platform, "signature": sig, "seen": seen})
        return None
    if scope:
        rule["scope"] = scope
    digest = hashlib.sha1(f"{platform}:{sig}".encode()).hexdigest()[:8]  # Chinese texts slug to ""
    rule["id"] = f"learned_{re.sub(r'[^a-z0-9]+', '_', sig.lower()).strip('_')[:30]}_{digest}"
    proposal = RuleProposal(platform=platform, signature=sig, category=category, reason_code=code[:64],
                            sample_text=text, occurrences=seen, rule=rule, task_id=task.id)
    session.add(proposal)
    session.flush()
    log.info("rule proposed", extra={"platform": platform, "proposal_id": proposal.id,
                                     "signature": sig})
    _enqueue_card(session, proposal)
    return proposal


def _enqueue_card(session: Session, proposal: RuleProposal) -> None:
    bindings = outbox.bindings_for(session, proposal.platform, "ops") or \
        outbox.bindings_for(session, proposal.platform, "notices")
    card_key = f"rule_proposal:{proposal.id}"
    for b in bindings:
        outbox.enqueue_card(session, b.chat, b.channel_id, card_key, "rule_proposal",
                            {"proposal_id": proposal.id},
                            key=f"{card_key}:{proposal.state}:{proposal.occurrences}:{b.chat}:{b.channel_id}")


# -- deciding ---------------------------------------------------------------------------------

def decide(session: Session, proposal_id: int, actor: Actor, accept: bool,
           event_id: str | None = None) -> RuleProposal:
    """Accept (a new rules version) or dismiss a proposal; once, by a rules owner."""
    if not actor.has_any(RULE_OWNERS):
        raise Forbidden("learn.not_owner", roles=roles(RULE_OWNERS))
    proposal = session.get(RuleProposal, proposal_id)
    if proposal is None:
        raise NotFound("learn.not_found", id=proposal_id)
    state = "accepted" if accept else "dismissed"
    done = session.execute(
        update(RuleProposal).where(RuleProposal.id == proposal_id, RuleProposal.state == "proposed")
        .values(state=state, decided_by=actor.user_id, decided_at=utcnow())
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        session.refresh(proposal)
        raise Conflict("learn.already", id=proposal_id, state=Term(f"learn.state.{proposal.state}"))
    session.refresh(proposal)
    if accept:
        version = rules.add_rule(session, proposal.platform, dict(proposal.rule), actor.name,
                                 source="proposal",
                                 note=f"proposal #{proposal.id}: {proposal.sample_text[:200]}")
        proposal.rule_version = version.version
        session.add(proposal)
    session.add(AuditEvent(task_id=proposal.task_id, actor=actor.name,
                           action="accept_rule" if accept else "dismiss_rule", event_id=event_id,
                           detail={"proposal": proposal.id, "rule": proposal.rule,
                                   "rule_version": proposal.rule_version}))
    session.flush()
    _enqueue_card(session, proposal)
    return proposal


def card_button(action: str, proposal: RuleProposal, lang: str, style: str) -> Button:
    # A card button carries (action, task, version); the version slot names the proposal.
    value = CallbackData(action, proposal.task_id or 0, proposal.id or 0).pack()
    return Button(label=t(f"learn.{action.split('_')[0]}", lang), action=action, value=value,
                  style=style)  # type: ignore[arg-type]


@builder("rule_proposal")
def proposal_card(session: Session, params: dict, lang: str) -> Card | None:
    proposal = session.get(RuleProposal, params["proposal_id"])
    if proposal is None:
        return None
    platform = session.get(Platform, proposal.platform)
    name = platform_name(proposal.platform, lang, platform.name if platform else None)
    text_rule = rule_text(proposal.rule, lang)
    try:
        body = render("rule_proposal", lang, proposal=proposal, platform_name=name,
                      rule_text=text_rule)
    except TemplateRefused:
        body = proposal.sample_text
    card = Card(kind="report", color="purple", text=body,
                title=t("learn.card_title", lang, platform=name,
                        category=t(f"learn.cat.{proposal.category}", lang)),
                fields=[CardField(label=t("learn.rule", lang), value=text_rule, short=False),
                        CardField(label=t("learn.seen", lang), value=str(proposal.occurrences))],
                task_id=proposal.task_id)
    if proposal.state == "proposed" and proposal.task_id:
        card.buttons = [card_button("accept_rule", proposal, lang, "primary"),
                        card_button("dismiss_rule", proposal, lang, "default")]
    else:
        card.locked = True
        user = session.get(User, proposal.decided_by) if proposal.decided_by else None
        who = user.display_name if user else "—"
        card.color = "green" if proposal.state == "accepted" else "grey"
        card.footer = (t("learn.accepted", lang, who=who, version=proposal.rule_version,
                         when=local(proposal.decided_at, fmt="%m-%d %H:%M") if proposal.decided_at else "")
                       if proposal.state == "accepted" else t("learn.dismissed", lang, who=who))
    return card


def handle_decision(session: Session, task: Task, req) -> Outcome:
    """Action handler for the card buttons ``accept_rule`` / ``dismiss_rule``."""
    proposal_id = int(req.payload.get("proposal_id") or req.version or 0)
    decide(session, proposal_id, req.actor, req.action == "accept_rule", req.event_id)
    return Outcome(task.id or 0, req.action, task.state, task.state, task.version, changed=False)


# -- the report -----------------------------------------------------------------------------------

def top_reasons(session: Session, platform: str | None = None, days: int = 90,
                top: int = 5) -> dict[str, list[tuple[int, str, str]]]:
    """Per platform: (count, category, sample text) of the most frequent reasons."""
    query = select(RejectionRecord).where(RejectionRecord.created_at >= utcnow() - timedelta(days=days))
    if platform:
        query = query.where(RejectionRecord.platform == platform)
    counts: dict[str, Counter] = {}
    samples: dict[tuple[str, str], tuple[str, str]] = {}
    seen: set[tuple] = set()
    for r in session.exec(query):
        samples[(r.platform, r.signature)] = (r.category, r.reason_text or r.reason_code)
        if (r.platform, r.signature, r.task_id, r.declaration_version) in seen:
            continue  # one rejected declaration counts once, however many lines it had
        seen.add((r.platform, r.signature, r.task_id, r.declaration_version))
        counts.setdefault(r.platform, Counter())[r.signature] += 1
    return {p: [(n, *samples[(p, sig)]) for sig, n in c.most_common(top)]
            for p, c in sorted(counts.items())}


def report_text(session: Session, lang: str | None, platform: str | None = None, days: int = 90) -> str:
    data = top_reasons(session, platform, days)
    if not data:
        return t("learn.report_empty", lang, days=days)
    out = [t("learn.report_title", lang, days=days)]
    for code, rows in data.items():
        platform_row = session.get(Platform, code)
        out.append(f"[{platform_name(code, lang, platform_row.name if platform_row else None)}]")
        out += [f"  {t('learn.report_line', lang, n=n, category=t(f'learn.cat.{cat}', lang), text=text[:80])}"
                for n, cat, text in rows]
    return "\n".join(out)


def install() -> None:
    lifecycle.on_transition(on_review)

