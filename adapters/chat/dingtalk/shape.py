"""Is a DingTalk stream frame in the shape we read? Checked before it reaches the router.

A frame's ``data`` comes from DingTalk as JSON; a ``text`` that is not an object, a
``cardPrivateData``/``params`` that is a string or a list, or an id that is a number used
to raise (AttributeError) in the handler, ending in a traceback and 出错了 for
the sender. ``message_problem`` and ``card_problem`` name what is wrong, or return None; the
handler then refuses: a log line, the sender told once that nothing was done, no action.
The frame itself was acknowledged with OK when it was stored (DingTalk's non-retry answer:
resending it would not make it readable).
"""

from __future__ import annotations

import json
from typing import Any

TEXT = (str, type(None))
IDS = ("senderStaffId", "senderId", "conversationId", "robotCode", "msgtype", "msgId")
CARD_IDS = ("userId", "outTrackId", "spaceId")


def _texts(data: dict, keys: tuple[str, ...], prefix: str = "") -> str | None:
    for key in keys:
        if not isinstance(data.get(key), TEXT):
            return f"{prefix}{key} is {type(data.get(key)).__name__}, not text"
    return None


def message_problem(data: Any) -> str | None:
    """What is wrong with a chatbot message frame, or None."""
    if not isinstance(data, dict):
        return "data is not an object"
    found = _texts(data, IDS)
    if found:
        return found
    if not isinstance(data.get("conversationType"), (str, int, type(None))) or isinstance(
            data.get("conversationType"), bool):
        return "conversationType is neither text nor a number"
    if not isinstance(data.get("isInAtList"), (bool, type(None))):
        return "isInAtList is not true or false"
    kind = data.get("msgtype")
    if kind == "text":
        text = data.get("text")
        if not isinstance(text, dict | None):
            return "text is not an object"
        return _texts(text or {}, ("content",), "text.")
    if kind == "richText":
        content = data.get("content")
        if not isinstance(content, dict | None):
            return "content is not an object"
        parts = (content or {}).get("richText")
        if not isinstance(parts, list | None):
            return "content.richText is not a list"
        for part in parts or []:
            if isinstance(part, dict) and not isinstance(part.get("text"), TEXT):
                return "a richText part's text is not text"
    return None


def card_problem(data: Any) -> str | None:
    """What is wrong with an interactive-card callback frame, or None."""
    if not isinstance(data, dict):
        return "data is not an object"
    found = _texts(data, CARD_IDS)
    if found:
        return found
    content = data.get("content")
    if isinstance(content, str):  # content that is no JSON object names no button: the
        try:                      # router answers it as an expired card, as it always did
            content = json.loads(content or "{}")
        except ValueError:
            return None
    if not isinstance(content, dict):
        return None
    private = content.get("cardPrivateData")
    if not isinstance(private, dict | None):
        return "content.cardPrivateData is not an object"
    params = (private or {}).get("params")
    if not isinstance(params, dict | None):
        return "cardPrivateData.params is not an object"
    found = _texts(params or {}, ("value", "actionValue", "comment", "reason"), "params.")
    if found:
        return found
    ids = (private or {}).get("actionIds")
    if not isinstance(ids, list | None) or not all(isinstance(i, str) for i in ids or []):
        return "cardPrivateData.actionIds is not a list of texts"
    return None
