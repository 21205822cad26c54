"""Stock already promised elsewhere: what other campaigns' declarations hold of a SKU.

A unit of stock can be sold once. Declarations that are in approval, approved, submitted or
accepted by a platform (up to the end of their event) hold their promo stock for the
event's dates; a new declaration for overlapping dates can only use what is left. The
stock red line (``checks``) and auto-fill read this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from storage.models import Campaign, Declaration, DeclarationLine, Task

# Tasks whose declared stock is spoken for: on its way to the platform or accepted by it.
HOLDING_STATES = ("in_approval", "approved", "submitting", "submitted", "in_review",
                  "accepted", "running")


@dataclass(frozen=True)
class Commitment:
    task_id: int
    title: str
    platform: str
    sku: str
    quantity: int

    def label(self) -> str:
        return f"#{self.task_id} {self.title[:30]}"


def _window(campaign: Campaign) -> tuple[datetime | None, datetime | None]:
    start, end = campaign.event_start, campaign.event_end
    return start or end, end or start


def overlap(a: Campaign, b: Campaign) -> bool:
    """Whether two campaigns' events share a moment; a campaign without event dates might
    run any time, so it overlaps everything."""
    a0, a1 = _window(a)
    b0, b1 = _window(b)
    if a0 is None or a1 is None or b0 is None or b1 is None:
        return True
    return a0 <= b1 and b0 <= a1


def commitments(session: Session, campaign: Campaign, skus: list[str],
                exclude_task: int | None = None) -> dict[str, list[Commitment]]:
    """Per SKU, the stock other holding tasks declared for events overlapping ``campaign``'s
    (their latest declaration; lines the platform rejected hold nothing)."""
    if not skus:
        return {}
    query = (select(Task.id, Campaign).join(Campaign, Campaign.id == Task.campaign_id)
             .where(Task.state.in_(HOLDING_STATES)))
    if exclude_task is not None:
        query = query.where(Task.id != exclude_task)
    others = {tid: other for tid, other in session.exec(query).all() if overlap(campaign, other)}
    if not others:
        return {}
    latest: dict[int, int] = {}  # task → id of its latest declaration version
    for declaration in session.exec(select(Declaration).where(
            Declaration.task_id.in_(list(others))).order_by(Declaration.version)):
        latest[declaration.task_id] = declaration.id or 0
    task_of = {declaration_id: tid for tid, declaration_id in latest.items()}
    out: dict[str, list[Commitment]] = {}
    for line in session.exec(select(DeclarationLine).where(
            DeclarationLine.declaration_id.in_(list(task_of)), DeclarationLine.sku.in_(skus))
            .order_by(DeclarationLine.id)):
        if line.result == "rejected" or line.promo_stock <= 0:
            continue
        tid = task_of[line.declaration_id]
        other = others[tid]
        out.setdefault(line.sku, []).append(
            Commitment(tid, other.title, other.platform, line.sku, line.promo_stock))
    return out


def committed_stock(session: Session, campaign: Campaign, skus: list[str],
                    exclude_task: int | None = None) -> dict[str, int]:
    """Per SKU, how many units overlapping campaigns already hold."""
    return {sku: sum(c.quantity for c in held)
            for sku, held in commitments(session, campaign, skus, exclude_task).items()}
