"""Demo data: a team, people with every role, products, documents, channels and notices."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal

from sqlmodel import select

from adapters.platforms.http_json import SANDBOX_MAPPING, to_notice
from adapters.platforms.sandbox.seed import PLATFORMS, demo_notices
from adapters.platforms.sandbox.server import seed as seed_sandbox
from bot.core.settings import Settings
from bot.core.users import add_user
from bot.watch.ingest import ingest
from storage.db import Database, one_at_a_time
from storage.models import (
    ChatBinding,
    ChatIdentity,
    Platform,
    Product,
    QualificationDocument,
    Team,
    User,
)
from storage.types import utcnow

PEOPLE = [
    ("wang.fang", "王芳(市场)", ["market"], "zh-CN"),
    ("li.na", "李娜(运营)", ["ops"], "zh-CN"),
    ("chen.jing", "陈静(设计)", ["design"], "zh-CN"),
    ("zhao.lei", "赵磊(财务)", ["finance"], "zh-CN"),
    ("sun.li", "孙丽(法务)", ["legal"], "zh-CN"),
    ("zhou.qiang", "周强(经理)", ["manager"], "zh-CN"),
    ("alex", "Alex (ops)", ["ops", "market"], "en"),
    ("admin", "管理员 Admin", ["admin"], "zh-CN"),
]
PRODUCTS = [
    # sku, barcode, title, brand, category, list, cost, stock, safety
    ("MZ-001", "6901234567001", "玻尿酸补水面膜 10片装", "水润坊", "美妆个护", "129.00", "38.00", 800, 100),
    ("MZ-002", "6901234567002", "氨基酸洁面乳 120ml", "水润坊", "美妆个护", "89.00", "21.50", 450, 80),
    ("MZ-003", "6901234567003", "烟酰胺精华液 30ml", "光研", "美妆个护", "239.00", "66.00", 260, 60),
    ("MZ-004", "6901234567004", "防晒喷雾 SPF50+ 150ml", "光研", "美妆个护", "159.00", "42.00", 40, 20),
    ("SP-101", "6902234567101", "每日坚果礼盒 750g", "果然好", "食品", "168.00", "79.00", 1200, 200),
    ("SP-102", "6902234567102", "手工牛轧糖 500g", "果然好", "食品", "59.90", "19.80", 900, 150),
    ("SP-103", "6902234567103", "冻干咖啡 24颗", "晨光", "食品", "99.00", "35.00", 350, 100),
    ("JD-201", "6903234567201", "无线降噪耳机 Pro", "声域", "家电数码", "699.00", "310.00", 150, 30),
    ("JD-202", "6903234567202", "磁吸充电宝 10000mAh", "声域", "家电数码", "199.00", "72.00", 600, 100),
    ("JD-203", "6903234567203", "便携榨汁杯", "厨小白", "家电数码", "149.00", "48.00", 500, 50),
]
DOCUMENTS = [
    ("business_licence", "营业执照", "上海市市场监督管理局", "", 900),
    ("brand_authorisation", "品牌授权书(水润坊)", "水润坊品牌方", "水润坊", 200),
    ("brand_authorisation", "品牌授权书(光研)", "光研品牌方", "光研", 20),
    ("food_licence", "食品经营许可证", "上海市市场监督管理局", "", 400),
    ("quality_report", "质检报告(声域耳机)", "SGS", "声域", 120),
]
WEB_CHANNELS = [
    ("tmall-promo", "天猫活动群", ["tmall"], "notices"),
    ("jd-promo", "京东活动群", ["jd"], "notices"),
    ("douyin-pdd", "抖音·拼多多群", ["douyin", "pdd"], "notices"),
    ("approvals", "审批群", ["*"], "approvals"),
    ("ops", "运维告警", ["*"], "ops"),
]


SEED_LOCK = 7_170_718  # PostgreSQL advisory lock: one replica seeds at a time


def one_seeder(db: Database) -> AbstractContextManager[None]:
    """Replicas started together on an empty database seed one after the other; the later
    ones then find everything there and add nothing."""
    return one_at_a_time(db, SEED_LOCK)


def is_empty(db: Database) -> bool:
    with db.session() as session:
        return session.exec(select(User.id).limit(1)).first() is None


def seed(db: Database, settings: Settings, *, notices: bool = True) -> dict:
    """Idempotent: running it twice adds nothing the second time — also when two replicas
    run it at the same moment (``one_seeder``)."""
    with one_seeder(db):
        return _seed(db, settings, notices=notices)


def _seed(db: Database, settings: Settings, *, notices: bool) -> dict:
    now = utcnow()
    with db.session() as session:
        if session.exec(select(Team).where(Team.code == settings.default_team)).first() is None:
            session.add(Team(code=settings.default_team, name="默认团队",
                             timezone=settings.timezone))
        for code, name in PLATFORMS.items():
            if session.get(Platform, code) is None:
                session.add(Platform(code=code, name=name, submit_mode="api_submit"))
        session.flush()
        for name, display, roles, lang in PEOPLE:
            if session.exec(select(User).where(User.name == name)).first() is None:
                add_user(session, name, roles, display_name=display, lang=lang,
                                chat="web", external_id=name)
        manager = session.exec(select(User).where(User.name == "zhou.qiang")).first()
        for user in session.exec(select(User)):
            if manager and user.id != manager.id and user.manager_id is None:
                user.manager_id = manager.id
                session.add(user)
            if session.exec(select(ChatIdentity).where(ChatIdentity.chat == "web",
                                                       ChatIdentity.user_id == user.id)).first() \
                    is None:
                session.add(ChatIdentity(user_id=user.id or 0, chat="web",
                                         external_id=user.name))
        for sku, barcode, title, brand, cat, lp, cost, stock, safety in PRODUCTS:
            if session.exec(select(Product).where(Product.sku == sku)).first() is None:
                session.add(Product(sku=sku, barcode=barcode, title=title, brand=brand,
                                    category=cat, list_price=Decimal(lp), cost=Decimal(cost),
                                    stock=stock, safety_stock=safety))
        for kind, title, issuer, brand, days in DOCUMENTS:
            if session.exec(select(QualificationDocument).where(
                    QualificationDocument.title == title)).first() is None:
                session.add(QualificationDocument(kind=kind, title=title, issuer=issuer,
                                                  brand=brand,
                                                  valid_until=now + timedelta(days=days)))
        for channel, name, platforms, purpose in WEB_CHANNELS:
            for platform in platforms:
                if session.exec(select(ChatBinding).where(
                        ChatBinding.chat == "web", ChatBinding.channel_id == channel,
                        ChatBinding.platform == platform)).first() is None:
                    session.add(ChatBinding(chat="web", channel_id=channel, channel_name=name,
                                            platform=platform, purpose=purpose,
                                            roles=["market", "ops"]))
    bodies = demo_notices(now)
    added = seed_sandbox(db, bodies)
    report = None
    if notices:
        parsed = [to_notice(platform, body, SANDBOX_MAPPING, settings.timezone)
                  for platform, items in bodies.items() for body in items]
        report = ingest(db, parsed)
    return {"sandbox_notices": added, "campaigns": len(report.new) if report else 0}
