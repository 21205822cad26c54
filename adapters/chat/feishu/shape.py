"""Is a verified Feishu event in the shape we read? Checked before it is stored or routed.

lark-oapi's typed events check only that objects are objects and lists are lists, and it
raises when they are not; a text field can hold anything. So odd shapes (``"message": 5``,
an open_id that is an object, a post whose paragraphs are not lists) raised inside the
handlers and ended in the endpoint's catch-all with a traceback. ``problem`` names what is
wrong, or returns None; the caller refuses the event with a log line and Feishu's non-retry
answer (HTTP 200: ``{}`` for a message, an error toast for a click). Fields Feishu leaves out
stay optional: only a value of the wrong kind where one is read is refused.
"""

from __future__ import annotations

import json
from typing import Any

TEXT = (str, type(None))
OBJECT = (dict, type(None))
LIST = (list, type(None))
IDS = {"open_id": TEXT, "user_id": TEXT, "union_id": TEXT, "tenant_key": TEXT}
HEADER = {"header": OBJECT, "header.event_id": TEXT, "header.event_type": TEXT,
          "header.token": TEXT, "header.app_id": TEXT, "header.tenant_key": TEXT}
MESSAGE = {
    **HEADER, "event": (dict,),
    "event.sender": (dict,), "event.sender.sender_type": TEXT,
    "event.sender.sender_id": OBJECT, **{f"event.sender.sender_id.{k}": v for k, v in IDS.items()},
    "event.message": (dict,), "event.message.message_id": TEXT, "event.message.chat_id": TEXT,
    "event.message.chat_type": TEXT, "event.message.message_type": TEXT,
    "event.message.content": TEXT, "event.message.mentions": LIST,
}
MENTION = {"key": TEXT, "name": TEXT, "mentioned_type": TEXT, "id": OBJECT,
           **{f"id.{k}": v for k, v in IDS.items()}}
CARD = {
    **HEADER, "event": (dict,), "event.token": TEXT,
    "event.operator": (dict,), **{f"event.operator.{k}": v for k, v in IDS.items()},
    "event.action": (dict,), "event.action.value": OBJECT, "event.action.value.pp": TEXT,
    "event.action.form_value": OBJECT, "event.action.form_value.comment": TEXT,
    "event.action.input_value": TEXT, "event.action.tag": TEXT, "event.action.options": LIST,
    "event.context": OBJECT, "event.context.open_chat_id": TEXT,
    "event.context.open_message_id": TEXT,
}


def _at(data: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted path; not found when a step is missing or not an object."""
    for step in path.split("."):
        if not isinstance(data, dict) or step not in data:
            return False, None
        data = data[step]
    return True, data


def _check(data: Any, spec: dict[str, tuple[type, ...]], prefix: str = "") -> str | None:
    for path, kinds in spec.items():
        found, value = _at(data, path)
        if not found:  # required only where its parent is there (parents come first)
            if type(None) not in kinds and ("." not in path
                                            or _at(data, path.rsplit(".", 1)[0])[0]):
                return f"{prefix}{path} is missing"
            continue
        if not isinstance(value, kinds):
            return f"{prefix}{path} is {_kind(value)}, not {'/'.join(_name(k) for k in kinds)}"
    return None


def message_problem(payload: dict) -> str | None:
    """What is wrong with an ``im.message.receive_v1`` payload, or None."""
    found = _check(payload, MESSAGE)
    if found:
        return found
    message = payload["event"]["message"]
    for n, mention in enumerate(message.get("mentions") or []):
        if not isinstance(mention, dict):
            return f"event.message.mentions[{n}] is {_kind(mention)}, not an object"
        found = _check(mention, MENTION, f"event.message.mentions[{n}].")
        if found:
            return found
    if message.get("message_type") in ("text", "post") and message.get("content"):
        return _content_problem(message["message_type"], message["content"])
    return None


def _content_problem(kind: str, raw: str) -> str | None:
    try:
        content = json.loads(raw)
    except ValueError:
        return "event.message.content is not JSON"
    if not isinstance(content, dict):
        return "event.message.content is not a JSON object"
    if kind == "text":
        return None if isinstance(content.get("text"), TEXT) else \
            "event.message.content.text is not text"
    body = content.get("content")
    if body is None:  # a post in one language: {"zh_cn": {"title": …, "content": […]}}
        body = next((v.get("content") for v in content.values() if isinstance(v, dict)), None)
    if not isinstance(body, LIST):
        return "the post's content is not a list of paragraphs"
    for paragraph in body or []:
        if not isinstance(paragraph, LIST):
            return "a post paragraph is not a list"
        for run in paragraph or []:
            if not isinstance(run, dict):
                return "a post run is not an object"
            if not isinstance(run.get("text"), TEXT) or not isinstance(run.get("user_id"), TEXT):
                return "a post run's text or user_id is not text"
    return None


def card_problem(payload: dict) -> str | None:
    """What is wrong with a ``card.action.trigger`` payload, or None."""
    return _check(payload, CARD)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _name(kind: type) -> str:
    return {str: "text", dict: "an object", list: "a list", type(None): "absent"}.get(
        kind, kind.__name__)
