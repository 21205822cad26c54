"""One signed call to the 抖店 open platform, its error codes and the token refresh.

A call is a POST to ``<gateway>/<method with "." → "/">`` with the query parameters
``app_key``, ``method``, ``access_token``, ``timestamp`` (unix seconds), ``v=2``,
``sign_method`` and ``sign``, and the business parameters as the body, ``param_json``: the
JSON object with its keys sorted (recursively), no spaces, no HTML escaping. The signature
(抖店's "签名算法", op.jinritemai.com guide-docs 10/813): ``app_key<k>method<m>param_json<j>
timestamp<t>v<v>`` wrapped in the app secret on both ends, then HMAC-SHA256 keyed with the
app secret (``sign_method=hmac-sha256``, the default) or MD5 (``md5``), lower-case hex.

An answer is ``{"code": 10000, "msg", "sub_code", "sub_msg", "data": {…}, "log_id"}`` (older
apps: ``err_no`` 0 / ``message``). The codes follow 抖店's 平台基础错误码 page (guide-docs
212/1427): 20000/20001 unavailable, 30001 no permission, 40003 with ``isv.signature-invalid``
a bad signature and with ``isv.access-token-expired`` an expired token — refreshed once with
``token.refresh`` (the new tokens stored encrypted) — 60000 rate limited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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
from adapters.platforms.connector.shared import http_failure, json_body, retry_after
from adapters.platforms.connector.tokens import TokenKeeper

GATEWAY = "https://openapi-fxg.jinritemai.com"
PLATFORM = "douyin"
SIGN_METHODS = ("hmac-sha256", "md5")
OK = {10000, 10001, 0}  # 10001: part of the request failed (the answer says which part)
EXPIRED = {"isv.access-token-expired", "isv.access-token-no-existed"}
REVOKED = {"isv.access-token-invalid", "isv.app-id-invalid", "isv.app-id-expired",
           "dop.authorization-no-existed", "dop.authorization-closed", "dop.app-forbidden"}
RETRYABLE = {20000, 20001, 90000}


def param_json(params: dict[str, Any]) -> str:
    return json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sign_douyin(app_key: str, secret: str, method: str, body: str, timestamp: str,
                v: str = "2", sign_method: str = "hmac-sha256") -> str:
    text = f"{secret}app_key{app_key}method{method}param_json{body}timestamp{timestamp}v{v}{secret}"
    if sign_method == "md5":
        return hashlib.md5(text.encode()).hexdigest()
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    raise ValueError(f"unknown sign_method {sign_method!r}; use one of {', '.join(SIGN_METHODS)}")


class DouyinClient:
    def __init__(self, connector: Any) -> None:
        self.c = connector
        self.sign_method = str(connector.config.options.get("sign_method") or "hmac-sha256")
        if self.sign_method not in SIGN_METHODS:  # a misspelt setting stops start-up
            raise ValueError(f"connector {connector.name}: sign_method must be one of "
                             f"{', '.join(SIGN_METHODS)}")
        self.tokens = TokenKeeper(connector, self._refresh)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict:
        """The answer's ``data``; an expired token is refreshed once."""
        return self.tokens.call(lambda secrets: self._once(method, params or {}, secrets))

    def _once(self, method: str, params: dict[str, Any], secrets: dict,
              with_token: bool = True) -> dict:
        key, secret = secrets.get("app_key"), secrets.get("app_secret")
        if not key or not secret:
            raise Unauthorized("app_key and app_secret are required", platform=PLATFORM)
        body, stamp = param_json(params), str(int(time.time()))
        query = {"app_key": str(key), "method": method, "v": "2", "timestamp": stamp,
                 "sign_method": self.sign_method,
                 "sign": sign_douyin(str(key), str(secret), method, body, stamp,
                                     sign_method=self.sign_method)}
        if with_token:
            query["access_token"] = str(secrets.get("access_token") or "")
        try:
            response = self.c.client.post(f"{self.c.gateway}/{method.replace('.', '/')}",
                                          params=query, content=body.encode(),
                                          headers={"Content-Type": "application/json"},
                                          timeout=self.c.request_timeout())
        except httpx.HTTPError as exc:
            raise transport(PLATFORM, exc) from None
        failed = http_failure(PLATFORM, method, response)
        if failed is not None:
            raise failed
        answer = json_body(PLATFORM, method, response)
        code = answer.get("code", answer.get("err_no"))
        try:
            number = int(code)
        except (TypeError, ValueError):
            raise Malformed(f"{method}: no code in the answer", platform=PLATFORM) from None
        if number not in OK:
            raise self._error(method, number, answer, response)
        data = answer.get("data")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise Malformed(f"{method}: data is not an object", platform=PLATFORM)
        return data

    def _error(self, method: str, number: int, answer: dict,
               response: httpx.Response) -> ConnectorError:
        sub = str(answer.get("sub_code") or "")
        text = str(answer.get("sub_msg") or answer.get("msg") or answer.get("message") or "error")
        detail = f"{method}: {text}" + (f" ({sub})" if sub else "")
        kw: dict[str, Any] = {"platform": PLATFORM, "code": sub or number,
                              "request_id": answer.get("log_id")}
        if sub in EXPIRED:
            exc: ConnectorError = TokenExpired(detail, **kw)
        elif sub == "isv.signature-invalid":
            exc = BadSignature(detail, **kw)
        elif sub in REVOKED or number == 30001:
            exc = Unauthorized(detail, **kw)
        elif number == 60000:
            exc = RateLimited(detail, retry_after=retry_after(response), **kw)
        elif number in RETRYABLE or sub.startswith("isp."):
            exc = Unavailable(detail, retry_after=retry_after(response), **kw)
        else:
            exc = InvalidParam(detail, **kw)
        exc.platform_text = text  # type: ignore[attr-defined]  # a per-product reason
        return exc

    def _refresh(self, current: dict) -> dict:
        return self._once("token.refresh", {"grant_type": "refresh_token",
                                            "refresh_token": current["refresh_token"]},
                          current, with_token=False)
