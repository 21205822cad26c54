"""Untrusted text made safe for Slack mrkdwn: it shows as typed and can never notify anyone.

Slack reads ``<…>`` as mentions (``<!channel>``, ``<@U123>``) and links, and ``&`` starts an
entity, so those three characters are always escaped. ``@channel``/``@here``/``@everyone``
typed as words get an invisible joiner so no client or ``link_names`` setting turns them live.
Truncation happens on the raw text so an entity (``&amp;``) is never cut in half.
"""

from __future__ import annotations

import re
from urllib.parse import quote

ZWJ = "\u2060"  # word joiner: invisible, splits "@channel" so it is never a broadcast
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_BROADCAST = re.compile(r"([@＠])(channel|here|everyone)\b", re.I)
ELLIPSIS = "…"


# Slack has no escape for its formatting characters, so untrusted text on a card gets
# look-alikes that Slack does not read: "*限时*" inside the bold title stays "∗限时∗", not a
# bold toggle; a word-edge underscore, a tilde pair and backticks likewise. (Replies keep the
# real characters: our own texts use `code` there.)
_LOOKALIKE = str.maketrans({"*": "\u2217", "~": "\u223c", "`": "\u02cb"})
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z\u4e00-\u9fff])_|_(?![0-9A-Za-z\u4e00-\u9fff])")


def literal(text: object) -> str:
    """Untrusted text with Slack's formatting characters replaced by look-alikes."""
    value = str(text if text is not None else "").translate(_LOOKALIKE)
    return _EDGE_UNDERSCORE.sub("\u02cd", value)


def mrkdwn(text: object, *, one_line: bool = False, plain_format: bool = False) -> str:
    """Plain untrusted text as mrkdwn that renders literally (``plain_format``: its ``*``,
    ``_``, ``~`` and backticks too, as look-alikes)."""
    value = _CONTROL.sub("", str(text if text is not None else ""))
    if plain_format:
        value = literal(value)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if one_line:
        value = " ".join(value.split())
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: m.group(1) + ZWJ + m.group(2), value)


def code(text: object) -> str:
    """Text for inside a ``` block: escaped, and unable to close the block early."""
    return mrkdwn(text).replace("```", "`\u200b``")


def fit(raw: object, limit: int, *, suffix: str = "", one_line: bool = False,
        as_code: bool = False, plain_format: bool = False) -> str:
    """Escape ``raw`` and make it fit ``limit`` characters, appending ``suffix`` if cut."""

    def esc(value: str) -> str:
        return code(value) if as_code else mrkdwn(value, one_line=one_line,
                                                  plain_format=plain_format)

    source = str(raw if raw is not None else "")
    full = esc(source)
    if len(full) <= limit:
        return full
    tail = ELLIPSIS + suffix
    keep = max(0, min(len(source), limit - len(tail)))
    while keep > 0:
        head = esc(source[:keep])
        if len(head) + len(tail) <= limit:
            return head + tail
        keep -= max(1, len(head) + len(tail) - limit)
    return tail[:limit]


def plain(text: object, limit: int) -> str:
    """Text for a ``plain_text`` object (button labels, modal titles): one line, cut to size."""
    value = " ".join(_CONTROL.sub("", str(text or "")).split())
    # plain_text is not parsed for mentions; joiners keep it so even if a client tried
    value = _BROADCAST.sub(lambda m: m.group(1) + ZWJ + m.group(2), value.replace("<", "<" + ZWJ))
    return value if len(value) <= limit else value[: limit - 1] + ELLIPSIS


def link(url: str | None, label: str) -> str:
    """A ``<url|label>`` link for our own URLs; empty unless it is http(s)."""
    value = (url or "").strip()
    if not re.match(r"^https?://[^\s]+$", value):
        return ""
    safe = quote(value, safe=":/?#[]@!$&'()*+,;=%-._~").replace("&", "&amp;")  # no < > |
    return f"<{safe}|{mrkdwn(label, one_line=True)}>"
