"""The platform's own eligibility answer as the first compliance gate.

Where a marketplace connector can say which products may join a campaign (and within which
maximum activity price and minimum stock), its answer is stored per campaign and SKU
(``platform_candidates``) and the pre-check reports, before anyone approves: a SKU the
platform refuses, a promo price above the platform's maximum, a promo stock below its
minimum (errors), or a SKU not yet checked (a warning).

The answer is asked for just before ``request_approval`` and ``compliance_override`` (a
guard ahead of the pre-check: one attempt with a short timeout, so it never holds the
action long; a failure leaves the last answer and the pre-check says "not checked") and
every time a connector enrols. The
connectors plugin hands in each platform's checker with ``configure``; this module never
imports an adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlmodel import Session, select

from bot.core import actions, lifecycle
from bot.core.ports import Candidate
from bot.declarations import checks
from bot.declarations.violations import Context, Violation, money
from storage.models import Campaign, Task
from storage.models_connectors import PlatformCandidate
from storage.queries import declaration_lines, latest_declaration
from storage.types import utcnow

log = logging.getLogger(__name__)
FRESH = timedelta(minutes=10)  # an answer younger than this is not asked for again
# (the action's session, campaign id, SKUs) → answers; reads through that session only
Checker = Callable[[Session, str, list[str]], list[Candidate]]
_checkers: dict[str, tuple[str, Checker]] = {}  # platform → (connector name, checker)


def configure(platform: str, connector: str, checker: Checker) -> None:
    _checkers[platform] = (connector, checker)


def clear() -> None:
    _checkers.clear()


def checked(platform: str) -> bool:
    return platform in _checkers


def store(session: Session, platform: str, campaign_id: str, candidates: list[Candidate],
          connector: str = "") -> None:
    """Keep the platform's answer (one row per campaign and SKU, the newest wins)."""
    now = utcnow()
    wanted = {c.sku for c in candidates}
    rows = {r.sku: r for r in session.exec(select(PlatformCandidate).where(
        PlatformCandidate.platform == platform, PlatformCandidate.campaign_id == campaign_id,
        PlatformCandidate.sku.in_(wanted)))} if wanted else {}
    for c in candidates:
        row = rows.get(c.sku) or PlatformCandidate(platform=platform, campaign_id=campaign_id,
                                                   sku=c.sku)
        row.connector, row.eligible, row.checked_at = connector, c.eligible, now
        row.reason_code, row.reason_text = c.reason_code, (c.reason_text or None)
        row.max_price, row.min_stock = c.max_price, c.min_stock
        session.add(row)
    session.flush()


def answers(session: Session, platform: str, campaign_id: str,
            skus: list[str]) -> dict[str, PlatformCandidate]:
    if not skus:
        return {}
    return {r.sku: r for r in session.exec(select(PlatformCandidate).where(
        PlatformCandidate.platform == platform, PlatformCandidate.campaign_id == campaign_id,
        PlatformCandidate.sku.in_(skus)))}


def refresh(session: Session, task: Task, *, force: bool = False) -> bool:
    """Ask the platform about the task's declared SKUs unless a fresh answer is stored;
    True when it answered. A failure is logged and leaves the last answer in place."""
    campaign = session.get(Campaign, task.campaign_id)
    if campaign is None or campaign.platform not in _checkers:
        return False
    declaration = latest_declaration(session, task.id or 0)
    if declaration is None:
        return False
    skus = [line.sku for line in declaration_lines(session, declaration.id or 0)]
    known = answers(session, campaign.platform, campaign.external_id, skus)
    cutoff = utcnow() - FRESH
    if not skus or (not force and all(s in known and known[s].checked_at > cutoff
                                      for s in skus)):
        return False
    connector, checker = _checkers[campaign.platform]
    try:
        found = checker(session, campaign.external_id, skus)
    except Exception as exc:  # noqa: BLE001 - the pre-check says "not checked" instead
        log.warning("platform eligibility unavailable", extra={
            "task_id": task.id, "platform": campaign.platform, "connector": connector,
            "error": str(exc)[:300]})
        return False
    store(session, campaign.platform, campaign.external_id, found, connector)
    return True


def before_request_approval(session: Session, task: Task, req: actions.ActionRequest) -> None:
    transition = lifecycle.TRANSITIONS.get(req.action)
    if transition is not None and task.state not in transition.sources:
        return
    refresh(session, task)


# Ahead of the pre-check guard, whichever registered first; before a waiver too, so the
# waiver sees (and keeps: its transaction commits) the platform's answer.
for _action in ("request_approval", "compliance_override"):
    _guards = actions.before_action.setdefault(_action, [])
    if before_request_approval not in _guards:
        _guards.insert(0, before_request_approval)


def check(ctx: Context, lines: list) -> list[Violation]:
    """The pre-check's platform findings for the declaration's lines."""
    platform, campaign_id = ctx.campaign.platform, ctx.campaign.external_id
    found = answers(ctx.session, platform, campaign_id, [line.sku for line in lines])
    if not found and platform not in _checkers:
        return []
    out: list[Violation] = []
    for line in lines:
        row = found.get(line.sku)
        if row is None:
            if platform in _checkers:
                out.append(Violation("platform_eligibility", "platform", "sku", line.sku,
                                     "cv.rule.platform_unchecked", "cv.fix.platform_unchecked",
                                     line.sku, "warning"))
            continue
        if not row.eligible:
            reason = row.reason_text or row.reason_code or "—"
            out.append(Violation("platform_eligibility", "platform", "sku", line.sku,
                                 "cv.rule.platform_ineligible", "cv.fix.remove_line", line.sku,
                                 params={"reason": reason}))
            continue
        if row.max_price is not None and line.promo_price is not None \
                and line.promo_price > row.max_price:
            out.append(Violation("platform_max_price", "platform", "promo_price",
                                 money(line.promo_price), "cv.rule.platform_max_price",
                                 "cv.fix.max_price", line.sku,
                                 params={"max": money(row.max_price)}))
        if row.min_stock is not None and line.promo_stock < row.min_stock:
            out.append(Violation("platform_min_stock", "platform", "promo_stock",
                                 str(line.promo_stock), "cv.rule.platform_min_stock",
                                 "cv.fix.min_stock", line.sku, params={"n": row.min_stock}))
    return out


if check not in checks.DECLARATION_CHECKS:
    checks.DECLARATION_CHECKS.append(check)
