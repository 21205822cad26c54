"""Make untrusted text safe for DingTalk: it shows as typed, never mentions, never breaks a card.

DingTalk notifies people only through a message's ``at`` fields, which we fill ourselves;
still, ``@所有人`` / ``@all`` typed into a notice title must not even *look* like a live
mention, so every ``@`` gets a zero-width joiner after it. Markdown and the small HTML subset
DingTalk renders (``<font>``, links, images) are neutralised so a title cannot restyle the card,
hide text or smuggle a link.
"""

from __future__ import annotations

import re

ZWJ = "\u2060"  # word joiner: invisible, breaks "@name" tokens
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_AT = re.compile(r"[@＠]")
_MD_SPECIAL = re.compile(r"([\\`*_#|~])")
# Structural neutralising, safe whatever a renderer does with backslashes: no brackets → no
# link or image, no angle brackets → no tag. Full-width forms read the same in a Chinese UI.
_LOOKALIKE = str.maketrans({"[": "\uff3b", "]": "\uff3d", "<": "\uff1c", ">": "\uff1e"})
_LOOKALIKE_TAGS = str.maketrans({"<": "\uff1c", ">": "\uff1e"})
_LINE_START = re.compile(r"^(\s*)([-+]|\d+\.)", re.M)


def plain(text: str | None, limit: int | None = None) -> str:
    """One-line plain text (titles, labels): no controls, no newlines, no live mentions.

    A template may show these as text *or* markdown, so ``<``/``>`` become their full-width
    look-alikes: readable either way, never a tag.
    """
    value = _CONTROL.sub("", str(text or ""))
    value = " ".join(value.split()).translate(_LOOKALIKE_TAGS)
    value = _AT.sub(lambda m: m.group(0) + ZWJ, value)
    return truncate(value, limit) if limit else value


def multiline(text: str | None) -> str:
    """Plain text that may keep its line breaks (text messages)."""
    value = _CONTROL.sub("", str(text or "").replace("\r\n", "\n").replace("\r", "\n"))
    return _AT.sub(lambda m: m.group(0) + ZWJ, value)


def markdown(text: str | None, *, one_line: bool = False) -> str:
    """Untrusted text as DingTalk markdown that renders literally."""
    value = " ".join(multiline(text).split()) if one_line else multiline(text)
    value = _MD_SPECIAL.sub(r"\\\1", value.translate(_LOOKALIKE))
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), value)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def safe_url(url: str | None) -> str:
    """Only http(s) links leave PromoPilot on a button."""
    value = (url or "").strip()
    return value if re.match(r"^https?://[^\s<>\"']+$", value) else ""
