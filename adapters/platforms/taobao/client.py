"""One signed call to the Taobao/Tmall open platform (TOP), its error codes, token refresh.

Every request is a form POST to the router with ``method``, ``app_key``, ``session`` (the
shop's access token), ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, GMT+8), ``format=json``,
``v=2.0``, ``sign_method`` and the business parameters; ``sign`` is, per ``sign_method``
(TOP's "签名算法"): every parameter but ``sign`` sorted by name, name and value
concatenated, then ``md5`` — MD5 of the app secret + that + the app secret — or ``hmac`` —
HMAC-MD5 keyed with the app secret — (or ``hmac-sha256``), upper-case hex. TOP's published
example (secret ``helloworld`` → 66987CB115214E59E6EC978214934FB8) is reproduced by
``tests/test_connectors_taobao.py``. An answer is ``{"<method without taobao., _>_response":
{…}}`` or ``{"error_response": {"code", "msg", "sub_code", "sub_msg", "request_id"}}``.

An expired session (code 27, "Invalid session") is refreshed once with
``taobao.top.auth.token.refresh`` (its ``token_result`` is a JSON text), the new tokens
stored encrypted, the call made again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from adapters.platforms.connector.base import transport
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
from adapters.platforms.connector.shared import beijing, http_failure, json_body, retry_after
from adapters.platforms.connector.signing import wire
from adapters.platforms.connector.tokens import TokenKeeper

GATEWAY = "https://eco.taobao.com/router/rest"
REFRESH = "taobao.top.auth.token.refresh"
PLATFORM = "tmall"
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
TOKEN_EXPIRED = {27}  # Invalid session (expired or revoked: refreshed once)
UNAUTHORIZED = {11, 12, 26, 53}  # isv / user permissions, missing session
BAD_SIGNATURE = {25}
RATE_LIMITED = {7}  # App Call Limited
RETRYABLE = {10, 520}  # service unavailable; code 15 with an isp.* sub_code too


def sign_top(params: dict[str, Any], secret: str, method: str = "md5") -> str:
    body = "".join(f"{k}{wire(params[k])}" for k in sorted(params)
                   if k != "sign" and params[k] is not None)
    if method == "md5":
        digest = hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest()
    elif method == "hmac":
        digest = hmac.new(secret.encode(), body.encode(), hashlib.md5).hexdigest()
    elif method == "hmac-sha256":
        digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown sign_method {method!r}; use one of {', '.join(SIGN_METHODS)}")
    return digest.upper()


def _codes(options: dict, name: str, default: set[int]) -> set[int]:
    return default | {int(c) for c in options.get(name) or []}


class TopClient:
    def __init__(self, connector: Any) -> None:
        self.c = connector
        options = connector.config.options
        self.sign_method = str(options.get("sign_method") or "md5")
        if self.sign_method not in SIGN_METHODS:  # a misspelt setting stops start-up
            raise ValueError(f"connector {connector.name}: sign_method must be one of "
                             f"{', '.join(SIGN_METHODS)}")
        self.token_expired = _codes(options, "token_expired_codes", TOKEN_EXPIRED)
        self.unauthorized = _codes(options, "unauthorized_codes", UNAUTHORIZED)
        self.rate_limited = _codes(options, "rate_limit_codes", RATE_LIMITED)
        self.retryable = _codes(options, "retry_codes", RETRYABLE)
        self.tokens = TokenKeeper(connector, self._refresh)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict:
        """The answer's ``…_response`` object; an expired session is refreshed once."""
        return self.tokens.call(lambda secrets: self._once(method, params or {}, secrets))

    def _once(self, method: str, params: dict[str, Any], secrets: dict,
              with_session: bool = True) -> dict:
        key, secret = secrets.get("app_key"), secrets.get("app_secret")
        if not key or not secret:
            raise Unauthorized("app_key and app_secret are required", platform=PLATFORM)
        form: dict[str, Any] = {"method": method, "app_key": str(key), "timestamp": beijing(),
                                "format": "json", "v": "2.0", "sign_method": self.sign_method,
                                **params}
        if with_session:
            form["session"] = str(secrets.get("access_token") or "")
        form["sign"] = sign_top(form, str(secret), self.sign_method)
        try:
            response = self.c.client.post(self.c.gateway,
                                          data={k: wire(v) for k, v in form.items()},
                                          timeout=self.c.request_timeout())
        except httpx.HTTPError as exc:
            raise transport(PLATFORM, exc) from None
        failed = http_failure(PLATFORM, method, response)
        if failed is not None:
            raise failed
        body = json_body(PLATFORM, method, response)
        if "error_response" in body:
            raise self._error(method, body["error_response"], response)
        answer = body.get(method.removeprefix("taobao.").replace(".", "_") + "_response")
        if not isinstance(answer, dict):
            answer = next((v for k, v in body.items() if k.endswith("_response")), None)
        if not isinstance(answer, dict):
            raise Malformed(f"{method}: no …_response object", platform=PLATFORM)
        return answer

    def _error(self, method: str, error: Any, response: httpx.Response) -> ConnectorError:
        error = error if isinstance(error, dict) else {}
        try:
            number = int(error.get("code"))
        except (TypeError, ValueError):
            number = -1
        sub = str(error.get("sub_code") or "")
        text = str(error.get("sub_msg") or error.get("msg") or "error")
        detail = f"{method}: {text}" + (f" ({sub})" if sub else "")
        kw: dict[str, Any] = {"platform": PLATFORM, "code": sub or number,
                              "request_id": error.get("request_id")}
        wait = retry_after(response)
        if number in self.token_expired:
            exc: ConnectorError = TokenExpired(detail, **kw)
        elif number in self.unauthorized:
            exc = Unauthorized(detail, **kw)
        elif number in BAD_SIGNATURE:
            exc = BadSignature(detail, **kw)
        elif number in self.rate_limited or sub.startswith("accesscontrol."):
            exc = RateLimited(detail, retry_after=wait, **kw)
        elif number in self.retryable or sub.startswith("isp."):
            exc = Unavailable(detail, retry_after=wait, **kw)
        else:
            exc = InvalidParam(detail, **kw)
        exc.platform_text = text  # type: ignore[attr-defined]  # a per-item reason
        return exc

    def _refresh(self, current: dict) -> dict:
        answer = self._once(REFRESH, {"refresh_token": current["refresh_token"]}, current,
                            with_session=False)
        result = answer.get("token_result")
        try:
            tokens = json.loads(result) if isinstance(result, str) else result
        except ValueError:
            raise Malformed(f"{REFRESH}: token_result is not JSON", platform=PLATFORM) from None
        if not isinstance(tokens, dict):
            raise Malformed(f"{REFRESH}: no token_result", platform=PLATFORM)
        return tokens
