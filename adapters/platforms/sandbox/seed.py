"""Realistic campaign notices for the sandbox marketplace (the demo and the tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.platforms import PLATFORM_NAMES

PLATFORMS = PLATFORM_NAMES
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(base: datetime, days: int, hour: int, minute: int = 0) -> str:
    day = (base + timedelta(days=days)).astimezone(SHANGHAI)
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0).isoformat()


def demo_notices(now: datetime) -> dict[str, list[dict]]:
    """A few open notices per platform, dated relative to ``now``."""
    return {
        "tmall": [
            {
                "id": "TM-2026-1212-001",
                "title": "2026天猫双12品质狂欢节·美妆个护会场招商",
                "type": "大促",
                "registration": {"start": _at(now, -2, 10), "end": _at(now, 3, 23, 59)},
                "event": {"start": _at(now, 14, 0), "end": _at(now, 16, 23, 59)},
                "requirements": {
                    "min_discount": 0.15, "min_stock": 50, "image_size": "800x800",
                    "price_rule": "活动价不得高于近30天最低成交价",
                    "required_documents": ["营业执照", "品牌授权书"],
                    "categories": ["美妆个护"],
                },
                "body": "报名时间:报名开始后3天内截止。商品需满足近30天最低价要求,主图800x800白底。",
            },
            {
                "id": "TM-2026-NY-014",
                "title": "天猫年货节·食品生鲜频道报名",
                "type": "频道活动",
                "registration": {"start": _at(now, -1, 10), "end": _at(now, 9, 18)},
                "event": {"start": _at(now, 30, 0), "end": _at(now, 40, 23, 59)},
                "requirements": {"min_discount": 0.10, "min_stock": 100,
                                 "required_documents": ["营业执照", "食品经营许可证"],
                                 "categories": ["食品"]},
                "body": "年货节食品频道,需提供食品经营许可证。",
            },
        ],
        "jd": [
            {
                "id": "JD-PLUS-20261201",
                "title": "京东PLUS会员日·家电数码秒杀报名",
                "type": "秒杀",
                "registration": {"start": _at(now, -3, 9), "end": _at(now, 1, 20)},
                "event": {"start": _at(now, 6, 10), "end": _at(now, 6, 22)},
                "requirements": {"min_discount": 0.20, "min_stock": 30, "image_size": "800x800",
                                 "price_rule": "秒杀价须为近30天最低价的9折以下",
                                 "required_documents": ["营业执照"],
                                 "categories": ["家电数码"]},
                "body": "PLUS会员日秒杀,库存需锁定。",
            },
        ],
        "douyin": [
            {
                "id": "DY-ECOM-8851",
                "title": "抖音商城「冬季焕新」直播间补贴活动",
                "type": "平台补贴",
                "registration": {"start": _at(now, -1, 0), "end": _at(now, 5, 23, 59)},
                "event": {"start": _at(now, 12, 0), "end": _at(now, 18, 23, 59)},
                "requirements": {"min_discount": 0.12, "min_stock": 20, "image_size": "750x1000",
                                 "required_documents": ["营业执照", "质检报告"]},
                "body": "直播间补贴,主图3:4。",
            },
        ],
        "pdd": [
            {
                "id": "PDD-BYBT-3390",
                "title": "拼多多百亿补贴·12月第二期招商",
                "type": "百亿补贴",
                "registration": {"start": _at(now, -4, 0), "end": _at(now, 2, 12)},
                "event": {"start": _at(now, 10, 0), "end": _at(now, 24, 23, 59)},
                "requirements": {"min_discount": 0.25, "min_stock": 200,
                                 "price_rule": "补贴价须为全网最低价",
                                 "required_documents": ["营业执照", "品牌授权书"]},
                "body": "百亿补贴需全网最低价,库存充足。",
            },
        ],
    }
