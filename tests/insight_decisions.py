"""A small, made-up year of Tmall campaigns with results, for the recommendation, forecast,
alert and back-test tests and ``bench/insight_backtest.py``.

Three campaign types, each in its own slot, repeating every three weeks from January 2026:

| type | slot | price | units/day/SKU | fees | what it does |
|---|---|---|---|---|---|
| 日常促销 | 频道页 | 85 % of list | 40 | ¥1,500 | pays well |
| 百亿补贴 | 首页焦点图 | 55 % | 120 | ¥30,000 | loses money; a line rejected each time |
| 聚划算 | 聚划算坑位 | 75 % | 70 | ¥6,000 (¥25,000 once) | pays, but once it did not |

Weekends sell 30 % more. Products have no category, so the fees are Tmall's defaults.
Two new tasks wait for a decision: ``new_daily`` (日常促销, 频道页) and ``new_subsidy``
(百亿补贴, 首页焦点图). ``NOW`` is mid-November 2026.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlmodel import delete, select

from storage.models import (
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
from storage.models_results import CampaignResult

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 15, 10, 0, tzinfo=SH)
TYPES = {  # type: (slot, price ratio, units a day per SKU, fees)
    "日常促销": ("频道页", Decimal("0.85"), 40, Decimal("1500")),
    "百亿补贴": ("首页焦点图", Decimal("0.55"), 120, Decimal("30000")),
    "聚划算": ("聚划算坑位", Decimal("0.75"), 70, Decimal("6000")),
}
ORDER = ["日常促销", "百亿补贴", "聚划算"]
PRODUCTS = {"P1": (Decimal("199.00"), Decimal("60.00"), 2000, 100),
            "P2": (Decimal("99.00"), Decimal("30.00"), 1500, 100),
            "P3": (Decimal("59.00"), Decimal("25.00"), 40, 20)}
COUNT = 14  # past campaigns


def plan() -> list[dict]:
    """The past campaigns, oldest first: external id, type, event start."""
    start = datetime(2026, 1, 5, 0, 0, tzinfo=SH)
    return [{"ext": f"TM-{i + 1:02d}", "type": ORDER[i % 3],
             "start": start + timedelta(days=21 * i)} for i in range(COUNT)]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def build(db, *, reverse: bool = False) -> dict[str, int]:
    """The history (``reverse``: stored newest first, to show order does not matter)."""
    ids: dict[str, int] = {}
    with db.session() as s:  # beside the demo data, when a test has it
        if s.get(Platform, "tmall") is None:
            s.add(Platform(code="tmall", name="天猫"))
        team = Team(code="hist", name="一组")
        s.add(team)
        s.flush()
        for name, shown, roles in (("li.na", "李娜", ["ops"]), ("wang.fang", "王芳", ["manager"])):
            if s.exec(select(User).where(User.name == name)).first() is None:
                s.add(User(name=name, display_name=shown, roles=roles, team_id=team.id))
        s.add(ChatBinding(chat="web", channel_id="tmall-promo", platform="tmall",
                          purpose="notices", team_id=team.id))
        s.add(ChatBinding(chat="web", channel_id="ops-room", platform="*", purpose="ops",
                          team_id=team.id))
        s.exec(delete(Product).where(Product.sku.in_(list(PRODUCTS))))
        for sku, (price, cost, stock, safety) in sorted(PRODUCTS.items(), reverse=reverse):
            s.add(Product(sku=sku, title=f"商品 {sku}", list_price=price, cost=cost,
                          stock=stock, safety_stock=safety))
        s.flush()
        campaigns = plan()
        for item in (reversed(campaigns) if reverse else campaigns):
            ids[item["ext"]] = _past(s, team.id, item)
        for name, kind, slot in (("new_daily", "日常促销", "频道页"),
                                 ("new_subsidy", "百亿补贴", "首页焦点图")):
            start = datetime(2026, 11, 20, 0, 0, tzinfo=SH)
            c = Campaign(platform="tmall", external_id=name, title=f"{kind} 11月场", type=kind,
                         content_hash=name, event_start=start,
                         event_end=start + timedelta(days=2, hours=23, minutes=59),
                         registration_end=start - timedelta(days=3),
                         requirements={"slot": slot}, created_at=NOW - timedelta(days=1))
            s.add(c)
            s.flush()
            task = Task(campaign_id=c.id, team_id=team.id, state="new")
            s.add(task)
            s.flush()
            ids[name] = task.id or 0
    return ids


def _past(s, team_id: int, item: dict) -> int:
    kind, start = item["type"], item["start"]
    slot, ratio, per_day, fees = TYPES[kind]
    if item["ext"] == "TM-09":  # the 聚划算 that did not pay
        fees = Decimal("25000")
    c = Campaign(platform="tmall", external_id=item["ext"], title=f"{kind} {item['ext']}",
                 type=kind, content_hash=item["ext"], event_start=start,
                 event_end=start + timedelta(days=2, hours=23, minutes=59),
                 requirements={"slot": slot}, created_at=start - timedelta(days=10))
    s.add(c)
    s.flush()
    task = Task(campaign_id=c.id, team_id=team_id, state="finished",
                created_at=start - timedelta(days=10))
    s.add(task)
    s.flush()
    declared = start - timedelta(days=7)
    d = Declaration(task_id=task.id, version=1, created_at=declared)
    s.add(d)
    s.flush()
    for sku in ("P1", "P2"):
        list_price = PRODUCTS[sku][0]
        s.add(DeclarationLine(declaration_id=d.id, sku=sku, list_price=list_price,
                              promo_price=_cents(list_price * ratio), promo_stock=per_day * 4,
                              result="accepted"))
    if kind == "百亿补贴":
        s.add(DeclarationLine(declaration_id=d.id, sku="P3", list_price=PRODUCTS["P3"][0],
                              promo_price=_cents(PRODUCTS["P3"][0] * ratio), promo_stock=20,
                              result="rejected", reason_code="PRICE_HIGH",
                              reason_text="价格高于近30天最低价"))
        s.add(RejectionRecord(platform="tmall", task_id=task.id, declaration_version=1,
                              sku="P3", reason_code="PRICE_HIGH", reason_text="价格高于近30天最低价",
                              category="price", signature="price:PRICE_HIGH",
                              created_at=declared + timedelta(days=2)))
    share = _cents(fees / 6)  # two SKUs × three days
    for day in range(3):
        moment = start + timedelta(days=day)
        weekend = moment.weekday() >= 5
        for sku in ("P1", "P2"):
            units = round(per_day * (1.3 if weekend else 1.0))
            price = _cents(PRODUCTS[sku][0] * ratio)
            s.add(CampaignResult(campaign_id=c.id, task_id=task.id, platform="tmall", sku=sku,
                                 slot=slot, day=moment.date().isoformat(),
                                 exposure=units * 200, clicks=units * 12, orders=units,
                                 units=units, gmv=price * units, fees=share))
    return task.id or 0
