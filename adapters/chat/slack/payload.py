"""Signed, but is it Slack's shape? Checked before slack-bolt sees the request.

slack-bolt reads a request's body while it builds its context, before any listener runs:
a non-JSON ``payload=``, ``"view": null`` or ``"user": 5`` made it raise, so a correctly
signed but malformed request answered 500 (and Slack sent it again). ``/slack/events``
therefore checks the signature itself, then the shape of what bolt and our listeners read
(``problem``); a request that is not in shape is refused with 400 and
``X-Slack-No-Retry: 1`` (a retry would be just as malformed), logged with the reason, and
never reaches the inbox or the router. Fields Slack leaves out stay optional: the check
only refuses a value of the wrong kind where one is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

WINDOW = 300  # seconds, as Slack and bolt allow
IDENTITY = ("user", "channel", "team", "enterprise")  # a str or an object, as bolt reads them
NESTED = ("message", "previous_message", "item", "assistant_thread")  # bolt looks inside
TEXTS = ("type", "user_id", "channel_id", "team_id", "enterprise_id", "trigger_id",
         "event_id", "response_url", "command", "text", "thread_ts", "ts", "callback_id",
         "api_app_id", "token", "challenge", "channel_type", "subtype", "bot_id")


class Malformed(ValueError):
    """The request is signed but not in Slack's shape; the reason is logged only."""


def signed(raw: bytes, headers: Mapping[str, str], secret: str,
           now: float | None = None) -> bool:
    """Slack's v0 signature over the raw bytes, within the 5-minute window."""
    timestamp = headers.get("x-slack-request-timestamp") or ""
    given = headers.get("x-slack-signature") or ""
    if not (timestamp.isascii() and timestamp.isdigit() and given):
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > WINDOW:
        return False
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw,
                      hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={digest}".encode(), given.encode())


def parse(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as slack-bolt will read it (``request.internals.parse_body``)."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body is not UTF-8") from None
    if not body:
        return {}
    kind = (content_type or "").split(";")[0].strip()
    try:
        if kind == "application/json" or body.startswith("{"):
            found = json.loads(body)
        elif "payload" in body:
            given = dict(parse_qsl(body, keep_blank_values=True)).get("payload")
            found = {} if given is None else json.loads(given)
        else:
            return dict(parse_qsl(body, keep_blank_values=True))
    except ValueError:
        raise Malformed("payload is not JSON") from None
    if not isinstance(found, dict):
        raise Malformed("payload is not a JSON object")
    return found


def problem(body: dict[str, Any]) -> str | None:
    """What is wrong with this body's shape, or None when bolt and our listeners can read it."""
    for key in ("event", "view"):
        if key in body and not isinstance(body[key], dict):
            return f"{key} is not an object"
    for key in ("authorizations", "response_urls"):
        value = body.get(key)
        if value is not None and not (isinstance(value, list) and all(
                isinstance(v, dict) for v in value)):
            return f"{key} is not a list of objects"
    levels = [("", body), *[("authorizations[0].", a) for a in body.get("authorizations") or []
                            ][:1]]
    event = body.get("event")
    if isinstance(event, dict):
        if not isinstance(event.get("type"), str):
            return "event.type is not text"
        if event["type"] in ("app_mention", "message"):  # our listeners read them as text
            for key in ("user", "channel"):
                if not isinstance(event.get(key), str | None):
                    return f"event.{key} is not text"
        levels.append(("event.", event))
    for prefix, level in list(levels):
        for key in NESTED:
            if isinstance(level.get(key), dict):
                levels.append((f"{prefix}{key}.", level[key]))
            elif level.get(key) is not None:
                return f"{prefix}{key} is not an object"
    for prefix, level in levels:
        found = _fields(prefix, level)
        if found:
            return found
    kind = body.get("type")
    if kind == "block_actions":
        return _block_actions(body)
    if kind in ("view_submission", "view_closed"):
        return _view(body)
    return None


def _fields(prefix: str, level: dict) -> str | None:
    for key in IDENTITY:
        value = level.get(key)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, dict):
            return f"{prefix}{key} is neither text nor an object"
        for inner in ("id", "team_id", "enterprise_id"):
            if not isinstance(value.get(inner), str | None):
                return f"{prefix}{key}.{inner} is not text"
    for key in TEXTS:
        if not isinstance(level.get(key), str | None):
            return f"{prefix}{key} is not text"
    for key in ("container", "state"):
        if not isinstance(level.get(key), dict | None):
            return f"{prefix}{key} is not an object"
    return None


def _person(body: dict) -> str | None:
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "user is not an object with an id"
    return None


def _block_actions(body: dict) -> str | None:
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return "actions is not a list of actions"
    for action in actions:
        if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
            return "an action is not an object with an action_id"
        for key in ("action_id", "value", "action_ts", "type", "block_id"):
            if not isinstance(action.get(key), str | None):
                return f"action.{key} is not text"
    if not isinstance(body.get("channel"), dict | None):
        return "channel is not an object"
    container = body.get("container") or {}
    for key in ("channel_id", "message_ts"):
        if not isinstance(container.get(key), str | None):
            return f"container.{key} is not text"
    return _person(body)


def _view(body: dict) -> str | None:
    view = body.get("view")
    if not isinstance(view, dict):
        return "view is missing"
    for key in ("id", "callback_id", "private_metadata", "type", "team_id",
                "app_installed_team_id"):
        if not isinstance(view.get(key), str | None):
            return f"view.{key} is not text"
    meta = view.get("private_metadata")
    if view.get("callback_id") == "pp_comment" and meta:
        try:
            if not isinstance(json.loads(meta), dict):
                return "view.private_metadata is not a JSON object"
        except ValueError:
            return "view.private_metadata is not JSON"
    state = view.get("state")
    if not isinstance(state, dict | None):
        return "view.state is not an object"
    values = (state or {}).get("values")
    if not isinstance(values, dict | None):
        return "view.state.values is not an object"
    for block_id, block in (values or {}).items():
        if not isinstance(block, dict):
            return f"view.state.values.{block_id[:40]} is not an object"
        for action_id, element in block.items():
            if not isinstance(element, dict):
                return f"view.state.values.{block_id[:40]}.{action_id[:40]} is not an object"
            if not isinstance(element.get("value"), str | None):
                return f"view.state.values.{block_id[:40]}.{action_id[:40]}.value is not text"
    return _person(body)
