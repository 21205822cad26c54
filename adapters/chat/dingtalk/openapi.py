"""DingTalk's open API (api.dingtalk.com): an access token from client id/secret, then JSON calls.

Failures are sorted the way the outbox needs them: throttling → ``ChatDeliveryError`` with
``retry_after``; network trouble and 5xx → a couple of quick retries, then a retryable error;
an expired token → refreshed once; other 4xx → permanent (retrying cannot fix a bad request).
Tokens and secrets never reach a log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx

from bot.core.ports import ChatDeliveryError

from .settings import DingTalkSettings

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
QUICK_RETRIES = 2
RATE_LIMIT_CODES = {"send.too.fast", "too.many.group", "too.many.people",
                    "send.byToken.tooFast", "Throttling", "Throttling.Api"}
TOKEN_CODES = {"InvalidAuthentication", "invalidAuthentication", "40014", "88",
               "InvalidAccessToken"}


class OpenApi:
    def __init__(self, settings: DingTalkSettings) -> None:
        self.base = settings.base
        self.client_id = settings.client_id
        self._secret = settings.client_secret
        self._token: str | None = None
        self._expires = 0.0

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
        refreshed = False
        attempt = 0
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            while True:
                attempt += 1
                token = await self.token(http)
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
                    wait = _retry_after(response) or 2.0
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
