"""DingTalk's open API (api.dingtalk.com): an access token from client id/secret, then JSON calls.

Messages to one group are paced like the custom robot's (DingTalk documents 20 a minute per
robot; the app robot is held to the same per group): one over the limit takes a reserved
later slot and goes back to the outbox with ``retry_after`` = the wait for it, so a fan-out
to many groups never has DingTalk refuse a message and nothing is dropped.

Failures are sorted the way the outbox needs them: throttling → ``ChatDeliveryError`` with
``retry_after`` (a group's throttle waits out the group's window); network trouble and 5xx →
a couple of quick retries, then a retryable error; an expired token → refreshed once; other
4xx → permanent (retrying cannot fix a bad request).
Tokens and secrets never reach a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from typing import Any

import httpx

from bot.core.ports import ChatDeliveryError

from .settings import DingTalkSettings
from .webhook import SlotLimiter

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
QUICK_RETRIES = 2
RATE_LIMIT_CODES = {"send.too.fast", "too.many.group", "too.many.people",
                    "send.byToken.tooFast", "Throttling", "Throttling.Api"}
TOKEN_CODES = {"InvalidAuthentication", "invalidAuthentication", "40014", "88",
               "InvalidAccessToken"}
GROUP_PER_WINDOW, GROUP_WINDOW = 20, 60.0  # messages to one group per window (seconds)
GROUP_SENDS = {"/v1.0/robot/groupMessages/send", "/v1.0/card/instances/createAndDeliver"}


def group_of(path: str, body: dict[str, Any]) -> str:
    """The group a call posts a new message to ("" when it posts none)."""
    if path not in GROUP_SENDS:
        return ""
    space = str(body.get("openSpaceId") or "")
    return str(body.get("openConversationId") or space.partition("IM_GROUP.")[2])


class GroupLimits:
    """One ``SlotLimiter`` per group: groups never wait for each other."""

    def __init__(self, per_window: int = GROUP_PER_WINDOW, window: float = GROUP_WINDOW) -> None:
        self.per_window, self.window = per_window, window
        self._groups: dict[str, SlotLimiter] = {}

    def acquire(self, group: str, body: dict[str, Any]) -> float:
        """0 → send now; otherwise seconds until this message's reserved slot."""
        limiter = self._groups.get(group)
        if limiter is None:
            limiter = self._groups[group] = SlotLimiter(self.per_window, self.window)
        key = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                             .encode()).hexdigest()
        return limiter.acquire(key)


class OpenApi:
    def __init__(self, settings: DingTalkSettings, groups: GroupLimits | None = None) -> None:
        self.base = settings.base
        self.client_id = settings.client_id
        self._secret = settings.client_secret
        self._token: str | None = None
        self._expires = 0.0
        self.groups = groups or GroupLimits()

    async def token(self, http: httpx.AsyncClient) -> str:
        if self._token and time.monotonic() < self._expires:
            return self._token
        secret = self._secret.get_secret_value() if self._secret else ""
        try:
            response = await http.post(f"{self.base}/v1.0/oauth2/accessToken",
                                       json={"appKey": self.client_id, "appSecret": secret})
        except httpx.TransportError as exc:
            raise ChatDeliveryError(f"DingTalk token request failed: {exc!r}") from exc
        body = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise ChatDeliveryError(f"DingTalk token endpoint {response.status_code}",
                                    retry_after=_retry_after(response))
        if response.status_code >= 400 or not body.get("accessToken"):
            log.error("dingtalk token refused", extra={"status": response.status_code,
                                                       "code": body.get("code")})
            raise ChatDeliveryError(
                f"DingTalk refused the client id/secret ({body.get('code') or response.status_code})",
                permanent=True)
        self._token = str(body["accessToken"])
        lifetime = float(body.get("expireIn") or 7200)
        self._expires = time.monotonic() + max(lifetime - 300, lifetime / 2)
        return self._token

    def forget_token(self) -> None:
        self._token = None

    async def call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One API call with the retry policy above; returns the JSON body."""
        group = group_of(path, body)
        refreshed = False
        attempt = 0
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            while True:
                attempt += 1
                token = await self.token(http)
                # the slot is taken just before the request (not before a token fetch), so
                # the time it is counted from is close to the one DingTalk counts
                wait = self.groups.acquire(group, body) if group else 0.0
                if wait > 0:
                    raise ChatDeliveryError(f"group {group} at its limit: queued for later",
                                            retry_after=wait)
                try:
                    response = await http.request(
                        method, f"{self.base}{path}", json=body,
                        headers={"x-acs-dingtalk-access-token": token})
                except httpx.TransportError as exc:
                    if attempt <= QUICK_RETRIES:
                        await _backoff(attempt)
                        continue
                    raise ChatDeliveryError(f"{method} {path}: {exc!r}") from exc
                data = _json(response)
                code = str(data.get("code") or data.get("errcode") or "")
                if (response.status_code == 401 or code in TOKEN_CODES) and not refreshed:
                    refreshed = True
                    self.forget_token()
                    continue
                if response.status_code == 429 or code in RATE_LIMIT_CODES or "QpsLimit" in code:
                    wait = _retry_after(response) or (self.groups.window if group else 2.0)
                    log.warning("dingtalk throttled", extra={"path": path, "code": code,
                                                             "retry_after": wait})
                    raise ChatDeliveryError(f"{method} {path} throttled ({code or 429})",
                                            retry_after=wait)
                if response.status_code >= 500:
                    if attempt <= QUICK_RETRIES:
                        await _backoff(attempt)
                        continue
                    raise ChatDeliveryError(f"{method} {path} → {response.status_code}")
                if response.status_code >= 400:
                    log.error("dingtalk api refused", extra={
                        "path": path, "status": response.status_code, "code": code,
                        "api_message": str(data.get("message", ""))[:200],
                        "requestid": data.get("requestid")})
                    raise ChatDeliveryError(
                        f"{method} {path} → {response.status_code} {code}: "
                        f"{str(data.get('message', ''))[:200]}", permanent=True)
                return data


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.25 * 2 ** attempt, 2.0) + random.uniform(0, 0.1))
