"""A small, hand-written history of declarations (tasks, audit events, rejections) with
times in Asia/Shanghai, for the team metrics, review and BI export tests. Expected answers
are worked out by hand in tests/test_insight_metrics.py.

Working hours are the defaults: 09:00–18:00, Monday–Friday. 2026-11-02 is a Monday.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from storage.models import (
    ApprovalStep,
    AuditEvent,
    Campaign,
    ChatBinding,
    Declaration,
    DeclarationLine,
    Platform,
    Product,
    Task,
    Team,
    User,
)
from storage.models_data import RejectionRecord

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=SH)


def at(text: str) -> datetime:
    """Shanghai wall clock ``"11-02 10:00"`` (2026) or ``"2026-10-31 22:00"`` → aware."""
    full = text if text.count("-") == 2 else f"2026-{text}"
    return datetime.fromisoformat(full).replace(tzinfo=SH)


def build(db) -> dict[str, int]:
    """Tasks A–H; returns their ids by letter."""
    ids: dict[str, int] = {}
    with db.session() as s:
        for code, name in (("tmall", "天猫"), ("jd", "京东")):
            if s.get(Platform, code) is None:
                s.add(Platform(code=code, name=name))
        team = Team(code="t1", name="一组", timezone="Asia/Shanghai")
        s.add(team)
        s.flush()
        people = {}
        for name, display, roles in (("li.na", "李娜", ["ops"]), ("wang.fang", "王芳", ["manager"]),
                                     ("root", "管理员", ["admin"])):
            people[name] = User(name=name, display_name=display, roles=roles, team_id=team.id)
            s.add(people[name])
        s.add(Product(sku="SKU-1", title="保温杯 联系 13812345678", list_price=Decimal("100.00")))
        s.add(ChatBinding(chat="web", channel_id="ops-room", purpose="ops", team_id=team.id))
        s.add(ChatBinding(chat="web", channel_id="tmall-promo", platform="tmall",
                          purpose="notices", team_id=team.id))
        s.flush()

        def task(letter: str, platform: str, created: str, deadline: str | None,
                 events: list[tuple[str, str, str]], state: str, owner: str | None = "li.na"):
            campaign = Campaign(platform=platform, external_id=f"ext-{letter}",
                                title=f"活动 {letter}", content_hash=letter, created_at=at(created))
            s.add(campaign)
            s.flush()
            last = at(events[-1][0]) if events else at(created)
            row = Task(campaign_id=campaign.id, team_id=team.id, state=state,
                       deadline=at(deadline) if deadline else None, created_at=at(created),
                       updated_at=last, claimed_by=people[owner].id if owner else None)
            s.add(row)
            s.flush()
            for when, actor, action in events:
                s.add(AuditEvent(task_id=row.id, actor=actor, action=action, created_at=at(when)))
            ids[letter] = row.id
            return row

        # A (tmall): an approval rejection reworked in 2 h; submitted after hours by a click.
        a = task("A", "tmall", "11-02 10:00", "11-03 12:00", [
            ("11-02 10:30", "li.na", "claim"), ("11-02 14:00", "li.na", "request_approval"),
            ("11-02 15:00", "wang.fang", "reject"), ("11-02 17:00", "li.na", "request_approval"),
            ("11-02 17:30", "wang.fang", "approve"), ("11-02 19:30", "li.na", "submit"),
            ("11-02 20:00", "submitter", "mark_submitted"), ("11-03 09:00", "review", "accept"),
        ], "accepted")
        # B (tmall): submitted after its deadline; the platform rejects it; a person marks the
        # hand-off done on Saturday, 19 h later.
        b = task("B", "tmall", "11-04 09:00", "11-05 18:00", [
            ("11-04 09:30", "li.na", "claim"), ("11-06 10:00", "li.na", "submit"),
            ("11-06 11:00", "submitter", "mark_submitted"),
            ("11-06 15:00", "review", "platform_reject"), ("11-06 15:00", "system", "redraft"),
            ("11-07 10:00", "li.na", "mark_submitted"), ("11-08 09:00", "review", "accept"),
        ], "accepted")
        # C (jd): skipped before its deadline — not missed. D (jd): left to expire — missed.
        task("C", "jd", "11-10 09:00", "11-12 12:00", [("11-11 10:00", "li.na", "skip")],
             "skipped", owner=None)
        task("D", "jd", "11-10 09:00", "11-12 12:00", [("11-12 13:00", "system", "expire")],
             "expired", owner=None)
        # E (jd): rejected in approval on Oct 31, rework still open.
        task("E", "jd", "2026-10-31 20:00", None, [
            ("2026-10-31 21:00", "li.na", "request_approval"),
            ("2026-10-31 23:30", "wang.fang", "reject")], "drafting")
        # F (jd): submitted Sunday 07:00 Shanghai = Saturday 23:00 UTC: November, overtime.
        task("F", "jd", "2026-10-31 22:00", None, [
            ("11-01 07:00", "li.na", "submit"), ("11-01 07:00", "submitter", "mark_submitted")],
             "in_review")
        # G (tmall): the robot submits at 23:00 on its own — a submission, never overtime;
        # its deadline is still ahead of NOW.
        task("G", "tmall", "11-16 20:00", "11-25 12:00", [
            ("11-16 23:00", "system", "submit"), ("11-16 23:00", "submitter", "mark_submitted")],
             "in_review")
        # H (tmall): long before the window.
        task("H", "tmall", "2026-09-01 09:00", "2026-09-03 12:00", [
            ("2026-09-02 10:00", "li.na", "submit"),
            ("2026-09-02 10:00", "submitter", "mark_submitted")], "in_review")

        # Declarations for the export; B's platform rejection, two lines of one reason.
        da = Declaration(task_id=a.id, version=2, note="联系 13912345678", created_by=people["li.na"].id)
        s.add(Declaration(task_id=a.id, version=1, note="old", created_by=people["li.na"].id))
        db_ = Declaration(task_id=b.id, version=1, note="", created_by=people["li.na"].id)
        s.add_all([da, db_])
        s.flush()
        s.add(DeclarationLine(declaration_id=da.id, sku="SKU-1", list_price=Decimal("100.00"),
                              promo_price=Decimal("79.90"), promo_stock=50, result="accepted"))
        s.add(DeclarationLine(declaration_id=da.id, sku="SKU-2", list_price=Decimal("20.00"),
                              promo_price=Decimal("15.00"), promo_stock=5, result="rejected",
                              reason_code="PRICE", reason_text="价格高于 30 天最低价"))
        s.add(ApprovalStep(task_id=a.id, declaration_version=2, role="manager", state="approved",
                           decided_by=people["wang.fang"].id))
        for sku in ("SKU-1", "SKU-2"):
            s.add(RejectionRecord(platform="tmall", task_id=b.id, declaration_version=1, sku=sku,
                                  reason_code="", reason_text="价格高于 30 天最低价",
                                  category="price", signature="text:price",
                                  created_at=at("11-06 15:00")))
        s.commit()
    return ids
