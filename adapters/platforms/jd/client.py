"""One signed call to the JD open platform router (JOS, ``routerjson``), its error codes and
the token refresh.

Every request is a form POST to the gateway with the system parameters ``method``,
``app_key``, ``access_token``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, GMT+8), ``v=2.0`` and
the business parameters as one JSON object ``360buy_param_json`` (keys sorted), plus
``sign``: every parameter but ``sign`` sorted by name, name and value concatenated, the app
secret on both ends, MD5, upper-case hex — the algorithm PDD uses too
(``adapters.platforms.connector.signing``); JD's published example is reproduced by
``tests/test_connectors_jd.py``. An answer is ``{"<method with _>_responce": {"code": "0",
…}}`` (JOS spells it ``responce``) or ``{"error_response": {"code", "zh_desc", "en_desc"}}``.

An expired access token (code 19, "token已过期或者不存在") is refreshed once through JD's OAuth
(``oauth2/refresh_token``, ``options.oauth_url``), the new tokens stored encrypted, the call
made again. The other code classes are PromoPilot's reading of JOS's error page and can be
extended per connector (``options.rate_limit_codes`` …).
"""

from __future__ import annotations

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
from adapters.platforms.connector.signing import sign
from adapters.platforms.connector.tokens import TokenKeeper

GATEWAY = "https://api.jd.com/routerjson"
OAUTH = "https://open-oauth.jd.com/oauth2/refresh_token"
PLATFORM = "jd"
TOKEN_EXPIRED = {"19"}  # token已过期或者不存在
UNAUTHORIZED = {"18", "20"}
BAD_SIGNATURE = {"14"}
RATE_LIMITED = {"61", "67"}
RETRYABLE = {"1", "66"}


def _codes(options: dict, name: str, default: set[str]) -> set[str]:
    return default | {str(c) for c in options.get(name) or []}


def param_json(business: dict[str, Any]) -> str:
    """``360buy_param_json``: standard JSON, keys in alphabetical order (JOS's rule)."""
    return json.dumps(business, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class JdClient:
    def __init__(self, connector: Any) -> None:
        self.c = connector
        options = connector.config.options
        self.oauth_url = str(options.get("oauth_url") or OAUTH)
        self.token_expired = _codes(options, "token_expired_codes", TOKEN_EXPIRED)
        self.unauthorized = _codes(options, "unauthorized_codes", UNAUTHORIZED)
        self.bad_signature = _codes(options, "bad_signature_codes", BAD_SIGNATURE)
        self.rate_limited = _codes(options, "rate_limit_codes", RATE_LIMITED)
        self.retryable = _codes(options, "retry_codes", RETRYABLE)
        self.tokens = TokenKeeper(connector, self._refresh)

    def call(self, method: str, business: dict[str, Any] | None = None) -> dict:
        """The answer's ``…_responce`` object; an expired token is refreshed once."""
        return self.tokens.call(lambda secrets: self._once(method, business or {}, secrets))

    def _once(self, method: str, business: dict[str, Any], secrets: dict) -> dict:
        key, secret = secrets.get("app_key"), secrets.get("app_secret")
        if not key or not secret:
            raise Unauthorized("app_key and app_secret are required", platform=PLATFORM)
        params = {"method": method, "app_key": str(key),
                  "access_token": str(secrets.get("access_token") or ""),
                  "timestamp": beijing(), "v": "2.0", "360buy_param_json": param_json(business)}
        params["sign"] = sign(params, str(secret))
        try:
            response = self.c.client.post(self.c.gateway, data=params,
                                          timeout=self.c.request_timeout())
        except httpx.HTTPError as exc:
            raise transport(PLATFORM, exc) from None
        failed = http_failure(PLATFORM, method, response)
        if failed is not None:
            raise failed
        body = json_body(PLATFORM, method, response)
        if "error_response" in body:
            raise self._error(method, body["error_response"], response)
        answer = next((v for k, v in body.items() if k.endswith(("_responce", "_response"))),
                      None)
        if not isinstance(answer, dict):
            raise Malformed(f"{method}: no …_responce object", platform=PLATFORM)
        if str(answer.get("code", "0")) != "0":  # a business error inside the answer
            raise self._error(method, answer, response)
        return answer

    def _error(self, method: str, error: Any, response: httpx.Response) -> ConnectorError:
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "")
        text = str(error.get("zh_desc") or error.get("en_desc") or error.get("msg") or "error")
        kw: dict[str, Any] = {"platform": PLATFORM, "code": code}
        for codes, cls in ((self.token_expired, TokenExpired), (self.unauthorized, Unauthorized),
                           (self.bad_signature, BadSignature)):
            if code in codes:
                exc: ConnectorError = cls(f"{method}: {text}", **kw)
                break
        else:
            if code in self.rate_limited:
                exc = RateLimited(f"{method}: {text}", retry_after=retry_after(response), **kw)
            elif code in self.retryable:
                exc = Unavailable(f"{method}: {text}", retry_after=retry_after(response), **kw)
            else:
                exc = InvalidParam(f"{method}: {text}", **kw)
        exc.platform_text = text  # type: ignore[attr-defined]  # a per-SKU reason
        return exc

    def _refresh(self, current: dict) -> dict:
        """JD's OAuth: the refresh token for a new access token (and refresh token)."""
        try:
            response = self.c.client.get(self.oauth_url, params={
                "app_key": current.get("app_key") or "",
                "app_secret": current.get("app_secret") or "",
                "grant_type": "refresh_token", "refresh_token": current["refresh_token"]},
                timeout=self.c.request_timeout())
        except httpx.HTTPError as exc:
            raise transport(PLATFORM, exc) from None
        failed = http_failure(PLATFORM, "oauth2/refresh_token", response)
        if failed is not None:
            raise failed
        body = json_body(PLATFORM, "oauth2/refresh_token", response)
        if str(body.get("code", "0")) != "0" or not body.get("access_token"):
            raise InvalidParam(f"oauth2/refresh_token: {body.get('msg') or 'refused'}",
                               platform=PLATFORM, code=body.get("code"))
        return body
