"""One signed call to the Pinduoduo open platform router, its error codes, token refresh.

Every request is a form POST to the gateway with the system parameters ``type``,
``client_id``, ``access_token``, ``timestamp`` (unix seconds), ``data_type=JSON``,
``version=V1``, the business parameters (lists and objects as JSON text) and ``sign``
(``adapters.platforms.connector.signing``). An answer is ``{"<name>_response": {…}}`` or
``{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}``.

An expired access token is refreshed once with ``pdd.pop.auth.token.refresh`` (the new
tokens stored encrypted for the shop) and the call made once more; a second expiry, or a
refused refresh, means someone must authorise the shop again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import httpx

from adapters.platforms.connector.base import QUICK, transport
from adapters.platforms.connector.errors import (
    BadSignature,
    ConnectorError,
    InvalidParam,
    Malformed,
    RateLimited,
    TokenExpired,
    Unauthorized,
    Unavailable,
)
from adapters.platforms.connector.signing import sign, wire

log = logging.getLogger(__name__)
GATEWAY = "https://gw-api.pinduoduo.com/api/router"
REFRESH = "pdd.pop.auth.token.refresh"
# The common error codes as PromoPilot reads PDD's error-code page; a deployment can add
# codes per class in the connector's options (token_expired_codes, rate_limit_codes …).
TOKEN_EXPIRED = {10019}
UNAUTHORIZED = {10020}
BAD_SIGNATURE = {20004}
RATE_LIMITED = {70031, 70032, 70033}
RETRYABLE = {50000, 50001, 50002}


def _codes(options: dict, name: str, default: set[int]) -> set[int]:
    return default | {int(c) for c in options.get(name) or []}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class PddClient:
    def __init__(self, connector: Any) -> None:
        self.c = connector  # the PddConnector: gateway, client, credentials, options
        options = connector.config.options
        self.token_expired = _codes(options, "token_expired_codes", TOKEN_EXPIRED)
        self.unauthorized = _codes(options, "unauthorized_codes", UNAUTHORIZED)
        self.bad_signature = _codes(options, "bad_signature_codes", BAD_SIGNATURE)
        self.rate_limited = _codes(options, "rate_limit_codes", RATE_LIMITED)
        self.retryable = _codes(options, "retry_codes", RETRYABLE)
        self._refresh_lock = threading.Lock()

    def call(self, api: str, params: dict[str, Any] | None = None) -> dict:
        """The answer's ``…_response`` object; refreshes an expired token once."""
        secrets = self.c.secrets()
        try:
            return self._once(api, params or {}, secrets)
        except TokenExpired:
            if QUICK.get():
                raise  # inside an action: no refresh (it writes), the caller degrades
            self._refresh(secrets)
            try:
                return self._once(api, params or {}, self.c.secrets())
            except TokenExpired as again:
                raise Unauthorized("the access token expired again right after a refresh",
                                   platform="pdd", code=again.code) from None

    def _once(self, api: str, params: dict[str, Any], secrets: dict,
              with_token: bool = True) -> dict:
        client_id, secret = secrets.get("client_id"), secrets.get("client_secret")
        if not client_id or not secret:
            raise Unauthorized("client_id and client_secret are required", platform="pdd")
        form: dict[str, Any] = {"type": api, "client_id": client_id, "data_type": "JSON",
                                "version": "V1", "timestamp": str(int(time.time())),
                                **params}
        if with_token:
            form["access_token"] = secrets.get("access_token") or ""
        form["sign"] = sign(form, secret)
        try:
            response = self.c.client.post(self.c.gateway,
                                          data={k: wire(v) for k, v in form.items()},
                                          timeout=self.c.request_timeout())
        except httpx.HTTPError as exc:
            raise transport("pdd", exc) from None
        if response.status_code == 429:
            raise RateLimited(f"HTTP 429 on {api}", platform="pdd", code=429,
                              retry_after=_retry_after(response))
        if response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code} on {api}", platform="pdd",
                              code=response.status_code, retry_after=_retry_after(response))
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            raise Malformed(f"{api}: not JSON (HTTP {response.status_code})",
                            platform="pdd") from None
        if not isinstance(body, dict):
            raise Malformed(f"{api}: not an object", platform="pdd")
        if "error_response" in body:
            raise self._error(api, body["error_response"], response)
        if response.status_code >= 400:
            raise InvalidParam(f"HTTP {response.status_code} on {api}", platform="pdd",
                               code=response.status_code)
        answer = next((v for k, v in body.items() if k.endswith("_response")), None)
        if not isinstance(answer, dict):
            raise Malformed(f"{api}: no …_response object", platform="pdd")
        return answer

    def _error(self, api: str, error: Any, response: httpx.Response) -> ConnectorError:
        error = error if isinstance(error, dict) else {}
        code = error.get("error_code")
        try:
            number = int(code)
        except (TypeError, ValueError):
            number = -1
        text = " ".join(str(error.get(k) or "") for k in ("error_msg", "sub_msg")).strip()
        detail = f"{api}: {text or 'error'}"
        kw = {"platform": "pdd", "code": code, "request_id": error.get("request_id")}
        if number in self.token_expired:
            return TokenExpired(detail, **kw)
        if number in self.unauthorized:
            return Unauthorized(detail, **kw)
        if number in self.bad_signature:
            return BadSignature(detail, **kw)
        if number in self.rate_limited:
            return RateLimited(detail, retry_after=_retry_after(response), **kw)
        if number in self.retryable:
            return Unavailable(detail, retry_after=_retry_after(response), **kw)
        return InvalidParam(detail, **kw)

    def _refresh(self, used: dict) -> None:
        """Swap the refresh token for new tokens, once, for every thread waiting on it."""
        with self._refresh_lock:
            self.c.credentials.forget(self.c.platform, self.c.shop)
            current = self.c.secrets()
            if current.get("access_token") != used.get("access_token"):
                return  # another thread refreshed meanwhile
            refresh_token = current.get("refresh_token")
            if not refresh_token:
                raise Unauthorized("the access token expired and no refresh token is stored",
                                   platform="pdd")
            try:
                answer = self._once(REFRESH, {"refresh_token": refresh_token}, current,
                                    with_token=False)
            except ConnectorError as exc:
                raise Unauthorized(f"token refresh refused: {exc.detail}", platform="pdd",
                                   code=exc.code) from None
            token = answer.get("access_token")
            if not token:
                raise Unauthorized("token refresh answered without an access token",
                                   platform="pdd")
            fresh = {"access_token": token,
                     "refresh_token": answer.get("refresh_token") or refresh_token}
            if answer.get("expires_at") or answer.get("expires_in"):
                fresh["expires_at"] = str(answer.get("expires_at")
                                          or int(time.time()) + int(answer["expires_in"]))
            self.c.credentials.set(self.c.platform, self.c.shop, fresh)
            log.info("pdd access token refreshed", extra={"connector": self.c.name,
                                                          "shop": self.c.shop})
