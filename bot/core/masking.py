"""Masking personal data in what leaves PromoPilot (audit export, BI export, reports).

One place for it: ``mask`` hides phone numbers and e-mail addresses inside any text (and
inside lists and dicts of texts), ``mask_name`` hides a person's name or handle. Whoever
exports decides when not to mask (``--unmasked`` on the CLI, an admin on the API).
"""

from __future__ import annotations

import re
from typing import Any

PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask(value: Any) -> Any:
    """Mask PII inside strings, lists and dicts (138****5678, a***@example.com)."""
    if isinstance(value, str):
        return EMAIL.sub(r"\1***@\2", PHONE.sub(r"\1****\2", value))
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    return value


def mask_name(name: str | None) -> str | None:
    """A person's name or handle with only its first character kept: 李娜 → 李*,
    li.na → l****. Empty stays empty."""
    if not name:
        return name
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1)
