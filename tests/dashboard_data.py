"""Dashboard test data: a history of submissions, verdicts and rejections on the demo's
tasks (audit events and rejection records as the lifecycle writes them), and a deadline at a
known moment."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from storage.db import Database
from storage.models import AuditEvent, Campaign, Task
from storage.models_data import RejectionRecord
from storage.types import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")


def task_of(db: Database, platform: str, index: int = 0) -> int:
    with db.session() as s:
        rows = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == platform).order_by(Task.id)).all()
        return rows[index]


def _event(s, task_id: int, action: str, at: datetime, actor: str = "system",
           before: str | None = None, after: str | None = None, **detail) -> None:
    s.add(AuditEvent(task_id=task_id, actor=actor, action=action, from_state=before,
                     to_state=after, detail=detail, created_at=at))


def history(db: Database) -> dict[str, int]:
    """tmall #1 accepted 6 h after its notice; jd rejected by the platform (price and
    image); tmall #2's deadline passed with nothing submitted (missed)."""
    now = utcnow()
    noticed = now - timedelta(days=10)
    accepted, rejected, missed = task_of(db, "tmall"), task_of(db, "jd"), task_of(db, "tmall", 1)
    with db.session() as s:
        for tid in (accepted, rejected, missed):
            task = s.get(Task, tid)
            task.created_at = noticed
        s.get(Task, accepted).state = "accepted"
        s.get(Task, rejected).state = "platform_rejected"
        late = s.get(Task, missed)
        late.state, late.deadline = "expired", now - timedelta(days=2)
        _event(s, accepted, "mark_submitted", noticed + timedelta(hours=6), "li.na",
               "submitting", "submitted")
        _event(s, accepted, "accept", noticed + timedelta(hours=30), "review", "in_review",
               "accepted")
        _event(s, rejected, "mark_submitted", noticed + timedelta(hours=12), "li.na",
               "submitting", "submitted")
        _event(s, rejected, "platform_reject", noticed + timedelta(hours=40), "review",
               "in_review", "platform_rejected")
        for sku, category, text in (("JD-201", "price", "活动价高于近30天最低价"),
                                    ("JD-202", "image", "主图不符合800x800")):
            s.add(RejectionRecord(platform="jd", task_id=rejected, declaration_version=1,
                                  sku=sku, reason_code=category.upper(), reason_text=text,
                                  category=category, signature=f"{category}:x",
                                  created_at=noticed + timedelta(hours=40)))
        _event(s, missed, "expire", now - timedelta(days=2), "system", "new", "expired")
    return {"accepted": accepted, "rejected": rejected, "missed": missed}


def results(db: Database) -> None:
    """Campaign results as ``promopilot import results`` stores them: the tmall 大促 brought
    6,500 on 2,000 of fees (ROI 3.25), the jd 秒杀 3,000 on 2,000 (1.5)."""
    from decimal import Decimal

    from storage.models_results import CampaignResult

    with db.session() as s:
        for platform, gmv, fees in (("tmall", "6500.00", "2000.00"), ("jd", "3000.00", "2000.00")):
            campaign = s.exec(select(Campaign).where(Campaign.platform == platform)
                              .order_by(Campaign.id)).first()
            campaign.event_end = utcnow() - timedelta(days=1)
            s.add(CampaignResult(campaign_id=campaign.id, platform=platform, gmv=Decimal(gmv),
                                 fees=Decimal(fees), units=10, orders=10))


def deadline_at(db: Database, task_id: int, local: datetime) -> datetime:
    """Sets the task's deadline to a wall-clock time in Shanghai; returns it (aware)."""
    at = local.replace(tzinfo=SHANGHAI)
    with db.session() as s:
        task = s.get(Task, task_id)
        task.deadline = at
        s.add(task)
    return at
