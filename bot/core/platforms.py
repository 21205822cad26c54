"""The marketplaces PromoPilot knows by code, with the names their teams call them."""

from __future__ import annotations

PLATFORM_NAMES = {"tmall": "天猫", "jd": "京东", "douyin": "抖音", "pdd": "拼多多"}
PLATFORM_CODES = tuple(PLATFORM_NAMES)
