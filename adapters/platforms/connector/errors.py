"""What a connector call can end in, and whether trying again can help.

Each class names its message in the catalogs (``conn.err.<kind>``, zh-CN and en) and its
retry class: rate limits, 5xx, timeouts and malformed answers are retried with backoff
(the platform's own wait honoured); a bad signature, an invalid parameter, an ineligible
product, missing or revoked credentials are not — retrying cannot help.
"""

from __future__ import annotations

from bot.core.i18n import Term, has, t


class ConnectorError(Exception):
    kind = "failed"
    retry = False

    def __init__(self, detail: str = "", *, platform: str = "", code: object = None,
                 retry_after: float | None = None, request_id: str | None = None) -> None:
        self.detail = str(detail)[:300]
        self.platform = platform
        self.code = code
        self.retry_after = retry_after
        self.request_id = request_id
        super().__init__(self.message("en"))

    @property
    def key(self) -> str:
        return f"conn.err.{self.kind}"

    @property
    def params(self) -> dict:
        return {"platform": self.platform or "?", "code": "" if self.code is None else self.code,
                "detail": self.detail or "—"}

    def __repr__(self) -> str:
        """What a submission card shows as the channel's error (``repr``): the team's words."""
        return f"{type(self).__name__}: {self.message(None)}"

    def message(self, lang: str | None) -> str:
        return t(self.key, lang, **{**self.params, "platform": platform_term(self.platform)})


def platform_term(code: str) -> Term | str:
    """A platform as its people call it (拼多多), else its code."""
    return Term(f"cv.platform.{code}") if code and has(f"cv.platform.{code}") else code or "?"


class RateLimited(ConnectorError):
    kind, retry = "rate_limited", True


class Unavailable(ConnectorError):  # 5xx, timeout, connection refused
    kind, retry = "unavailable", True


class Malformed(ConnectorError):  # an answer that is not what the platform documents
    kind, retry = "malformed", True


class TokenExpired(ConnectorError):  # refreshed once by the connector, then the call again
    kind = "token_expired"


class Unauthorized(ConnectorError):  # revoked, refresh refused: someone must authorise again
    kind = "unauthorized"


class BadSignature(ConnectorError):
    kind = "bad_signature"


class InvalidParam(ConnectorError):
    kind = "invalid_param"


class NotEligible(ConnectorError):
    kind = "not_eligible"


class NoCredentials(ConnectorError):
    kind = "no_credentials"


class Unsupported(ConnectorError):  # the connector does not offer this operation
    kind = "unsupported"


class QuotaExhausted(ConnectorError):  # the shop's activity quota is used up (refused first)
    kind = "quota_exhausted"


class AssistedOnly(ConnectorError):  # no public enrolment API (big-sale venues): a person
    kind = "assisted_only"           # enrols; the chain moves on to the assisted channel


KINDS = {c.kind: c for c in (ConnectorError, RateLimited, Unavailable, Malformed, TokenExpired,
                             Unauthorized, BadSignature, InvalidParam, NotEligible,
                             NoCredentials, Unsupported, QuotaExhausted, AssistedOnly)}
