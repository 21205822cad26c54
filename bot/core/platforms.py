"""The marketplaces PromoPilot knows by code, with the names their teams call them."""

from __future__ import annotations

PLATFORM_NAMES = {"tmall": "天猫", "jd": "京东", "douyin": "抖音", "pdd": "拼多多"}
PLATFORM_CODES = tuple(PLATFORM_NAMES)
# what a person may type for one: the Chinese name, the English one (any case), the code
_SAID = {**{name: code for code, name in PLATFORM_NAMES.items()},
         "pinduoduo": "pdd", "天猫商城": "tmall", "京东商城": "jd"}


def platform_code(value: str) -> str | None:
    """天猫 / Tmall / tmall → ``tmall``; None when it is no marketplace we know."""
    text = (value or "").strip()
    code = _SAID.get(text, _SAID.get(text.lower(), text.lower()))
    return code if code in PLATFORM_CODES else None


def as_code(value: str) -> str:
    """A platform a person typed, as the code PromoPilot stores: a known marketplace's name
    (天猫, Tmall) is its code; anything else (a platform added by a team, ``*``) is kept,
    lower-cased. ``绑定 天猫`` must bind ``tmall``, or the group never hears a notice."""
    return platform_code(value) or (value or "").strip().lower()
