"""Every notice is checked before it is stored, whatever source it came from.

A notice that cannot be read is *rejected* with a reason (``Unreadable``); what can be read
is *normalised* so no stored value can later break a query, an insert or a card:

- texts lose control characters and lone surrogates and are cut to their column's size;
- times must be aware and inside ``EARLIEST``–``LATEST`` (2000–2100 UTC): a date valid in
  its own zone but outside what UTC (or any sane campaign) can hold is refused, not stored;
- requirements are made plain JSON (no NaN, no surrogates, bounded depth and size); the
  values PromoPilot computes with (``min_discount``, ``min_stock`` …) become numbers or
  lists, and one that cannot be read moves to ``requirements["_unreadable"]`` as text, so
  the card shows it flagged and the rules never compute with it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.core.ports import MAX_TITLE, Notice
from bot.declarations import rule_text as written

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIME_FIELDS = ("registration_start", "registration_end", "event_start", "event_end")
UNREADABLE = "_unreadable"  # requirements the notice gave that we could not read
MAX_REQUIREMENTS = 20_000  # characters of JSON
FRACTIONS = ("min_discount",)  # 0 ≤ x < 1 (a "10%" string is read as 0.1)
COUNTS = ("min_stock", "title_max_length")  # whole numbers ≥ 0
LISTS = ("required_documents", "categories", "banned_words", "shops")
SCALARS = ("image_size", "image_ratio", "price_rule", "shop")


class Unreadable(ValueError):
    """A notice (or one of its values) that cannot be stored as it is."""


def clean_text(value: Any, limit: int) -> str:
    """Printable text (newlines and tabs kept; controls and lone surrogates dropped), cut
    to ``limit`` with an ellipsis."""
    text = "" if value is None else str(value)
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sane_time(value: Any, what: str = "time") -> datetime | None:
    """``value`` if it is an aware datetime inside 2000–2100 (UTC), else ``Unreadable``."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise Unreadable(f"{what} is not a time ({type(value).__name__})")
    try:
        if value.tzinfo is None or value.utcoffset() is None:
            raise Unreadable(f"{what} has no time zone")
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # valid in its zone, not in UTC
        raise Unreadable(f"{what} {value.isoformat()[:40]} is outside what can be stored"
                         ) from exc
    if not EARLIEST <= utc < LATEST:
        raise Unreadable(f"{what} {value.isoformat()[:40]} is outside "
                         f"{EARLIEST.year}–{LATEST.year}")
    return value


def check_notice(notice: Notice) -> Notice:
    """The notice, normalised; ``Unreadable`` when it cannot be stored."""
    if not isinstance(notice, Notice):
        raise Unreadable(f"not a notice ({type(notice).__name__})")
    platform = clean_text(notice.platform, 33)
    if not platform or len(platform) > 32:
        raise Unreadable(f"unusable platform code {platform[:40]!r}")
    external_id = clean_text(notice.external_id, 128)
    title = clean_text(notice.title, MAX_TITLE)
    if not external_id or not title:
        raise Unreadable("notice without id or title")
    times = {name: sane_time(getattr(notice, name), name) for name in TIME_FIELDS}
    return dataclasses.replace(
        notice, platform=platform, external_id=external_id, title=title,
        type=clean_text(notice.type, 64), source_url=clean_text(notice.source_url, 2000),
        text=clean_text(notice.text, 20_000),
        requirements=normalise_requirements(notice.requirements), **times)


def normalise_requirements(req: Any) -> dict:
    if req is None:
        return {}
    if not isinstance(req, dict):
        raise Unreadable("requirements is not an object")
    plain = {clean_text(k, 100) or "?": _plain(v, 0) for k, v in req.items()}
    given = plain.pop(UNREADABLE, None)
    unreadable = dict(given) if isinstance(given, dict) else {}
    for key in list(plain):
        value, ok = _known(key, plain[key])
        if ok:
            plain[key] = value
            continue
        bad = plain.pop(key)
        unreadable[key] = clean_text(bad if isinstance(bad, str)
                                     else json.dumps(bad, ensure_ascii=False), 200)
    if unreadable:
        plain[UNREADABLE] = unreadable
    if len(json.dumps(plain, ensure_ascii=False)) > MAX_REQUIREMENTS:
        raise Unreadable(f"requirements larger than {MAX_REQUIREMENTS} characters")
    return plain


def _plain(value: Any, depth: int) -> Any:
    """JSON a database and every renderer accept: finite numbers, clean strings, ≤ 6 deep."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**15 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean_text(value, 2000)
    if depth >= 6:
        return clean_text(value, 200)
    if isinstance(value, dict):
        return {clean_text(k, 100) or "?": _plain(v, depth + 1)
                for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in list(value)[:200]]
    return clean_text(value, 200)


def number(value: Any) -> Decimal | None:
    """A finite number from a number or a numeric string (``"10%"`` → 0.1); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        percent = text.endswith(("%", "％"))
        try:
            parsed = Decimal(text.rstrip("%％").strip())
        except InvalidOperation:
            return None
        parsed = parsed / 100 if percent else parsed
    elif isinstance(value, int | float | Decimal):
        parsed = Decimal(str(value))
    else:
        return None
    return parsed if parsed.is_finite() else None


FEE_RATES, FEE_AMOUNTS = ("commission", "payment"), ("shipping",)


def _fees(value: Any) -> tuple[Any, bool]:
    """``{commission: "2%", shipping: 6}`` → rates as fractions below 1, amounts ≥ 0."""
    if not isinstance(value, dict) or not value:
        return value, False
    out: dict[str, float] = {}
    for name, raw in value.items():
        parsed = number(raw)
        if name not in FEE_RATES + FEE_AMOUNTS or parsed is None or parsed < 0 \
                or (name in FEE_RATES and parsed >= 1):
            return value, False
        out[name] = float(parsed)
    return out, True


def _known(key: str, value: Any) -> tuple[Any, bool]:
    """(normalised value, readable?) for the requirements PromoPilot computes with."""
    if value is None:
        return None, True
    if key in FRACTIONS:
        parsed = number(value)
        if parsed is None and isinstance(value, str) and "折" in value:  # "95折" → 0.05 off
            off = written.discount(value)
            parsed = Decimal(str(off)) if off is not None else None
        if parsed is None or not 0 <= parsed < 1:
            return value, False
        return (value if isinstance(value, int | float) else float(parsed)), True
    if key in COUNTS:
        parsed = number(value)
        if parsed is None or parsed < 0 or parsed != parsed.to_integral_value():
            return value, False
        return int(parsed), True
    if key in LISTS:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict | list) for v in items):
            return value, False
        return [str(v) for v in items if v not in (None, "")], True
    if key in SCALARS:
        return (value, True) if not isinstance(value, dict | list) else (value, False)
    if key == "fees":  # the campaign's own fee terms (bot.insight.fees.campaign_fees)
        return _fees(value)
    if key == "rules":
        return (value, True) if isinstance(value, list) and all(
            isinstance(r, dict) for r in value) else (value, False)
    return value, True
