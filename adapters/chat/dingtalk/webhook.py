"""The custom robot webhook: signed requests, and its 20-messages-a-minute limit honoured.

Nothing is dropped: a message over the limit gets a reserved future slot and goes back to the
outbox with ``retry_after`` = the wait for that slot, so each message is deferred about once
and the robot never sees more than ``limit`` messages in any window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from bot.core.ports import ChatDeliveryError

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
THROTTLED = {130101, 660026}  # "send too fast, exceed 20 times per minute"
EPSILON = 0.05  # a reserved slot this close is due (the outbox's pass is never exact)
MARGIN = 0.5  # seconds after the window: DingTalk counts arrivals, and a slot taken up to
# EPSILON early after a slow first send would be the 21st in its minute (130101; the custom
# robot is then held for ten minutes)


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's webhook signature: base64(HMAC-SHA256(secret, "ts\\nsecret")), URL-quoted."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


class SlotLimiter:
    """At most ``limit`` sends in any ``window`` seconds; waiting messages hold a reserved slot."""

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(limit, 1)
        self.window = window
        self.clock = clock
        self._times: deque[float] = deque()  # sends and reserved slots, ascending
        self._reserved: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0 → send now; otherwise seconds until this message's reserved slot."""
        with self._lock:
            now = self.clock()
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            slots = self._reserved.get(key)
            if slots:
                if slots[0] <= now + EPSILON:
                    slots.pop(0)
                    if not slots:
                        del self._reserved[key]
                    return 0.0
                return slots[0] - now
            slot = now
            if self._times:
                slot = max(slot, self._times[-1])
            if len(self._times) >= self.limit:
                slot = max(slot, self._times[-self.limit] + self.window + MARGIN)
            self._times.append(slot)
            if slot <= now + EPSILON:
                return 0.0
            self._reserved.setdefault(key, []).append(slot)
            return slot - now


class WebhookRobot:
    def __init__(self, url: SecretStr, secret: SecretStr | None, limiter: SlotLimiter) -> None:
        self._url = url
        self._secret = secret
        self.limiter = limiter

    def signed_url(self) -> str:
        url = self._url.get_secret_value()
        secret = self._secret.get_secret_value() if self._secret else ""
        if not secret:
            return url
        timestamp = int(time.time() * 1000)
        joiner = "&" if "?" in url else "?"
        return f"{url}{joiner}timestamp={timestamp}&sign={sign(secret, timestamp)}"

    async def send(self, body: dict) -> str:
        key = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                             .encode()).hexdigest()
        wait = self.limiter.acquire(key)
        if wait > 0:
            raise ChatDeliveryError("webhook robot rate limit: queued for later",
                                    retry_after=wait)
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                response = await http.post(self.signed_url(), json=body)
        except httpx.TransportError as exc:  # the URL holds the robot's token: never log it
            raise ChatDeliveryError(f"webhook robot unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise ChatDeliveryError(f"webhook robot → {response.status_code}",
                                    retry_after=self.limiter.window
                                    if response.status_code == 429 else None)
        try:
            data = response.json()
        except ValueError:
            data = {}
        errcode = data.get("errcode", 0 if response.status_code < 400 else response.status_code)
        if errcode in THROTTLED:
            log.warning("webhook robot throttled", extra={"errcode": errcode})
            raise ChatDeliveryError("webhook robot throttled", retry_after=self.limiter.window)
        if errcode != 0 or response.status_code >= 400:
            log.error("webhook robot refused", extra={"errcode": errcode,
                                                      "errmsg": str(data.get("errmsg"))[:200]})
            raise ChatDeliveryError(
                f"webhook robot refused the message ({errcode}: {str(data.get('errmsg'))[:200]}); "
                "check DINGTALK_WEBHOOK_URL / DINGTALK_WEBHOOK_SECRET", permanent=True)
        return f"webhook:{secrets.token_hex(8)}"
