"""Generic HTTP-JSON notice source: a URL plus a field mapping of jmespath expressions.

The path for official open APIs and internal feeds; the sandbox feed is one such source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jmespath

from adapters.platforms.http_fetch import conditional_get, new_validators
from adapters.platforms.textenc import decode
from bot.core.ports import MAX_TITLE, Notice
from bot.watch.validate import Unreadable, clean_text, sane_time

log = logging.getLogger(__name__)

SANDBOX_MAPPING = {
    "items": "data.notices",
    "external_id": "id",
    "title": "title",
    "type": "type",
    "registration_start": "registration.start",
    "registration_end": "registration.end",
    "event_start": "event.start",
    "event_end": "event.end",
    "requirements": "requirements",
    "source_url": "url",
    "text": "body",
}


class MalformedNotice(ValueError):
    pass


class Rejection(str):
    """A skipped notice. It reads as its message (``source: skipped notice: why``); ``ref``
    names the notice (its id, else a digest of the item, stable from poll to poll) and
    ``reason`` says why. The watcher logs and announces each one once."""

    ref: str
    reason: str

    def __new__(cls, message: str, ref: str, reason: str) -> Rejection:
        self = super().__new__(cls, message[:300])
        self.ref, self.reason = ref[:160], reason[:300]
        return self


def item_ref(raw: Any, external_id: Any = None) -> str:
    """How a rejected item is named: its id when it has a usable one, else ``#digest``."""
    if isinstance(external_id, str | int) and not isinstance(external_id, bool):
        named = clean_text(external_id, 128)
        if named:
            return named
    body = json.dumps(raw, sort_keys=True, default=str)  # ASCII escapes: surrogates are fine
    return "#" + hashlib.sha1(body.encode()).hexdigest()[:12]


def parse_time(value: Any, tz: str) -> datetime | None:
    """ISO-8601 (or epoch seconds; milliseconds when the number is that large) → aware
    datetime; naive times are in the team's zone. Anything else, and any time outside
    2000–2100 UTC, is ``MalformedNotice`` (never another exception)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise MalformedNotice(f"unreadable time {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise MalformedNotice(f"unreadable time {value!r}")
        seconds = value / 1000 if abs(value) >= 1e11 else value  # epoch milliseconds
        try:
            parsed = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedNotice(f"time out of range {value!r}"[:80]) from exc
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedNotice(f"unreadable time {value[:40]!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    else:
        raise MalformedNotice(f"unreadable time (a {type(value).__name__})")
    try:
        return sane_time(parsed)
    except Unreadable as exc:
        raise MalformedNotice(str(exc)) from exc


def to_notice(platform: str, raw: dict, mapping: dict[str, str], tz: str) -> Notice:
    def get(name: str) -> Any:
        expr = mapping.get(name)
        return jmespath.search(expr, raw) if expr else None

    external_id = get("external_id")
    title = clean_text(get("title"), 10_000)
    if not external_id or not title:
        raise MalformedNotice("notice without id or title")
    if len(title) > MAX_TITLE:
        log.warning("notice title truncated", extra={"platform": platform,
                                                     "external_id": str(external_id)[:64],
                                                     "length": len(title)})
        title = clean_text(title, MAX_TITLE)
    requirements = get("requirements")
    if requirements is not None and not isinstance(requirements, dict):
        raise MalformedNotice("requirements is not an object")
    return Notice(
        platform=platform,
        external_id=clean_text(external_id, 128),
        title=title,
        type=clean_text(get("type"), 64),
        registration_start=parse_time(get("registration_start"), tz),
        registration_end=parse_time(get("registration_end"), tz),
        event_start=parse_time(get("event_start"), tz),
        event_end=parse_time(get("event_end"), tz),
        requirements=requirements or {},
        source_url=clean_text(get("source_url"), 2000),
        text=clean_text(get("text"), 20_000),
    )


@dataclass
class HttpJsonSource:
    """JSON over HTTP: ``mapping`` says where the list and each field are (jmespath)."""

    name: str
    platform: str
    url: str
    mapping: dict[str, str] = field(default_factory=lambda: dict(SANDBOX_MAPPING))
    timezone: str = "Asia/Shanghai"
    client: httpx.Client | None = None
    rejected: list[str] = field(default_factory=list)  # reasons from the last fetch
    headers: dict[str, str] = field(default_factory=dict)
    interval: float = 300.0  # seconds between polls (the watcher's schedule)
    timeout: float = 10.0
    attempts: int = 4
    alert_after: int = 3
    channel: str | None = None  # "chat:channel" that also hears this source's notices
    validators: dict = field(default_factory=dict)  # ETag / Last-Modified of the last answer
    kind: str = "http_json"

    def _get(self) -> Any:
        fetched = conditional_get(self.url, self.validators, client=self.client,
                                  headers={"Accept": "application/json", **self.headers},
                                  timeout=self.timeout, attempts=self.attempts)
        self.validators = new_validators(fetched, self.validators)
        if fetched.not_modified:
            return None
        try:
            return json.loads(decode(fetched.content, fetched.charset))
        except ValueError as exc:
            raise MalformedNotice(f"{self.name}: body is not JSON ({exc})"[:300]) from exc

    def fetch(self) -> list[Notice]:
        body = self._get()
        if body is None:  # 304: nothing changed since the last answer
            self.rejected = []
            return []
        items = jmespath.search(self.mapping.get("items", "@"), body)
        if not isinstance(items, list):
            raise MalformedNotice(f"{self.name}: no list at {self.mapping.get('items')!r}")
        notices, self.rejected = [], []
        for raw in items:
            try:
                if not isinstance(raw, dict):
                    raise MalformedNotice("notice is not an object")
                notices.append(to_notice(self.platform, raw, self.mapping, self.timezone))
            except Exception as exc:  # noqa: BLE001 - one unreadable notice never stops the feed
                reason = str(exc) if isinstance(exc, MalformedNotice) else \
                    f"unreadable notice ({type(exc).__name__}: {exc})"
                self.rejected.append(Rejection(f"{self.name}: skipped notice: {reason}",
                                               self._ref(raw), reason))
                # logged once by the watcher when it is new, not on every poll
                log.debug("notice rejected", extra={"source": self.name, "reason": reason[:200]})
        return notices

    def _ref(self, raw: Any) -> str:
        try:
            external = jmespath.search(self.mapping.get("external_id") or "id", raw) \
                if isinstance(raw, dict) else None
        except Exception:  # noqa: BLE001 - the digest names it then
            external = None
        return item_ref(raw, external)
