"""Reading rules that people write as text: discounts in 折, percentages, whether a price
limit is strict (低于) or not (不高于), "the lowest price across channels" (全网最低价,
百亿补贴), and image sizes and ratios.

One reader for every place that meets such text — the rules files, a notice's requirements
and the rules learned from rejections — so 95折 means 0.95 everywhere.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from math import gcd

# 9折, 95折, 7.5折, 8.8 折 — and "打9折", "九五折" is not read (write digits).
_FOLD = re.compile(r"(\d+(?:\.\d+)?)\s*折")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%%]")
_DAYS = re.compile(r"(\d+)\s*-?\s*(?:天|日|days?)", re.I)
_RATIO_PCT = re.compile(r"(\d+(?:\.\d+)?)\s*[%%]\s*of|的\s*(\d+(?:\.\d+)?)\s*[%%]", re.I)
_LOWEST = re.compile(r"最低|\blow(?:est)?\b", re.I)
# A limit that may be reached ("not above"): removed before looking for a strict one, so the
# 低于 inside 不低于 or the "below" of "not below" never counts.
_NOT_ABOVE = re.compile(
    r"(?:低于|小于|少于)(?:或)?等于|≤|<=|不(?:得|能|可|应|准|要)?(?:高于|超过|超出|大于|高过|低于|少于|小于)"
    r"|not\s+(?:be\s+)?(?:above|higher\s+than|more\s+than|greater\s+than|exceed\w*|below|lower\s+than|less\s+than)"
    r"|no\s+(?:higher|more|greater)\s+than|at\s+most|or\s+(?:lower|less|below)|以下|以内|及以下",
    re.I)
_BELOW = re.compile(r"低于|小于|少于|\bbelow\b|lower\s+than|less\s+than|\bunder\b", re.I)
# A campaign that asks for the lowest price on every channel, not only on its own platform.
ACROSS_CHANNELS = ("全网", "全渠道", "全平台", "百亿补贴", "across channels", "all channels",
                   "every channel", "any channel", "lowest online")


def fold_value(raw: str) -> Decimal | None:
    """The number written before 折 as a price ratio: 9 → 0.9, 95 → 0.95, 88 → 0.88,
    7.5 → 0.75, 10 → 1; ``None`` when it is not a discount."""
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return None
    digits = raw.strip()
    if "." in digits or len(digits) == 1:
        ratio = number / 10
    elif digits == "10":
        ratio = Decimal(1)
    elif len(digits) == 2:
        ratio = number / 100
    else:
        return None
    return ratio if Decimal(0) < ratio <= 1 else None


def fold(text: str) -> Decimal | None:
    """The first 折 in ``text`` as a ratio of the price (``"近30天最低价的95折"`` → 0.95)."""
    found = _FOLD.search(text or "")
    return fold_value(found.group(1)) if found else None


def discount(value: object) -> float | None:
    """A minimum discount (the fraction off the list price) however it is written:
    ``0.15``, ``15`` or ``"15%"`` → 0.15, ``"85折"`` → 0.15, ``"9折"`` → 0.1."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
    else:
        text = str(value).strip()
        ratio = fold(text)
        if ratio is not None:
            return float(1 - ratio)
        percent = _PERCENT.search(text)
        try:
            number = Decimal(percent.group(1)) / 100 if percent else Decimal(text)
        except InvalidOperation:
            return None
    if 1 < number <= 100:  # 15 means 15 %
        number = number / 100
    return float(number) if Decimal(0) <= number < 1 else None


def is_strict(text: str) -> bool | None:
    """``True`` when the text asks for a price *below* the limit (低于, below), ``False``
    when reaching it is allowed (不高于, 不得超过, 以下, at most); ``None`` when it says neither."""
    text = text or ""
    if _BELOW.search(_NOT_ABOVE.sub(" ", text)):
        return True
    if _NOT_ABOVE.search(text) or "须为" in text or _LOWEST.search(text):
        return False
    return None


def across_channels(text: str) -> bool:
    low = (text or "").lower()
    return any(marker in low for marker in ACROSS_CHANNELS)


def price_rule(text: str) -> dict:
    """A notice's price rule as rule parameters: ``'秒杀价须低于近15天最低价的95折'`` →
    ``{lowest_days: 15, max_ratio_of_lowest: 0.95, strict: True, text: …}``; 全网最低价 adds
    ``channels: all``."""
    out: dict = {}
    days = _DAYS.search(text)
    if days:
        out["lowest_days"] = int(days.group(1))
    ratio = fold(text)
    percent = _RATIO_PCT.search(text)
    if ratio is None and percent:
        ratio = Decimal(percent.group(1) or percent.group(2)) / 100
    if ratio is not None:
        out["max_ratio_of_lowest"] = float(ratio)
    elif _LOWEST.search(text):
        out["max_ratio_of_lowest"] = 1.0
    if across_channels(text):
        out["channels"] = "all"
    if out:
        out["text"] = text
        out["strict"] = bool(is_strict(text))
    return out


def strict(rule: dict) -> bool:
    """Whether a price rule's limit is strict: its ``strict`` when set, else its ``text``."""
    if isinstance(rule.get("strict"), bool):
        return rule["strict"]
    return bool(is_strict(str(rule.get("text") or "")))


def ratio_of(width: int, height: int) -> str:
    d = gcd(width, height) or 1
    return f"{width // d}:{height // d}"


def image_ratios(rule: dict) -> list[tuple[int, int]]:
    """The aspect ratios an image rule accepts (``ratio: "1:1"`` or a list of them); a rule
    written as a size (``width``/``height``, older files) accepts that size's ratio."""
    raw = rule.get("ratio")
    items = raw if isinstance(raw, list) else ([raw] if raw else [])
    if not items and rule.get("width") and rule.get("height"):
        items = [ratio_of(int(rule["width"]), int(rule["height"]))]
    out = []
    for item in items:
        a, sep, b = str(item).replace("：", ":").partition(":")
        if not sep or not a.strip().isdigit() or not b.strip().isdigit() or not int(a) or not int(b):
            raise ValueError(f"ratio {item!r} is not like 1:1 or 3:4")
        out.append((int(a), int(b)))
    return out


def image_bounds(rule: dict) -> tuple[int | None, int | None, int | None, int | None]:
    """(min width, min height, max width, max height); ``width``/``height`` of an older rule
    are minimums, not the one allowed size."""
    def number(*names: str) -> int | None:
        for name in names:
            if rule.get(name):
                return int(rule[name])
        return None

    return (number("min_width", "width"), number("min_height", "height"),
            number("max_width"), number("max_height"))


def image_problem(rule: dict) -> str | None:
    """What is wrong with an image rule's parameters, for the rules-file check."""
    try:
        image_ratios(rule)
        low_w, low_h, high_w, high_h = image_bounds(rule)
    except (TypeError, ValueError) as exc:
        return str(exc)
    if low_w and high_w and low_w > high_w or low_h and high_h and low_h > high_h:
        return "min_width/min_height above max_width/max_height"
    return None
