"""Generic HTTP-JSON enrolment connector, modelled on marketplace enrolment APIs.

The wire shape most marketplaces share: list the SKUs eligible for an activity, enrol
them with an idempotency key, then poll the enrolment for a per-SKU audit status with a
failure reason. Field names and status words differ per platform, so they are a mapping
(jmespath for responses). Timeouts, 5xx and 429 are retried with backoff (tenacity,
honouring Retry-After) and the same key, so a retry never enrols twice.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import jmespath
from pydantic import BaseModel, Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from adapters.platforms.http_util import RetryableHTTPError, check
from adapters.platforms.submitters.base import PermanentSubmitError
from bot.core.ports import ItemResult, ReviewStatus, SubmissionItem, SubmitReceipt

log = logging.getLogger(__name__)


class HttpJsonMapping(BaseModel):
    eligible_path: str = "/activities/{campaign}/eligible-skus"
    eligible_items: str = "data.skus"
    eligible_sku: str = "sku_id"
    eligible_flag: str = "eligible"
    eligible_reason: str = "reason"
    enrol_path: str = "/activities/{campaign}/enrolments"
    idempotency_header: str = "Idempotency-Key"
    request_fields: dict[str, str] = Field(default_factory=lambda: {
        "sku": "sku_id", "list_price": "origin_price", "promo_price": "activity_price",
        "promo_stock": "activity_stock"})
    reference: str = "data.enrolment_id"
    status_path: str = "/enrolments/{reference}"
    status: str = "data.status"
    items: str = "data.items"
    item_sku: str = "sku_id"
    item_result: str = "audit_status"
    item_reason_code: str = "reject_code"
    item_reason_text: str = "reject_reason"
    business_code: str = "code"  # 0 = ok; others are the platform's errors
    retryable_codes: list[int] = Field(default_factory=lambda: [42900, 50000])
    status_map: dict[str, str] = Field(default_factory=lambda: {
        "AUDITING": "reviewing", "PASSED": "accepted", "REJECTED": "rejected",
        "PART_PASSED": "partial"})
    result_map: dict[str, str] = Field(default_factory=lambda: {
        "PASSED": "accepted", "REJECTED": "rejected"})


class HttpJsonConfig(BaseModel):
    base_url: str
    token_env: str | None = None  # bearer token read from this environment variable
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    mapping: HttpJsonMapping = Field(default_factory=HttpJsonMapping)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableHTTPError | httpx.TransportError)


class HttpJsonSubmitter:
    capability = "api_submit"
    channel = "http_json"

    def __init__(self, config: HttpJsonConfig, token: str | None = None,
                 client: httpx.Client | None = None) -> None:
        self.config = config
        self.m = config.mapping
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.Client(base_url=config.base_url.rstrip("/"),
                                             timeout=config.timeout_seconds, headers=headers)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        def wait(state) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetryableHTTPError) and exc.retry_after is not None:
                return min(exc.retry_after, 60.0)
            return wait_exponential_jitter(initial=self.config.backoff_initial,
                                           max=self.config.backoff_max)(state)

        def once() -> Any:
            response = self.client.request(method, path, **kw)
            if 400 <= response.status_code < 500 and response.status_code != 429:
                raise PermanentSubmitError(f"{method} {path} → {response.status_code}: "
                                           f"{response.text[:300]}")
            body = check(response).json()
            code = jmespath.search(self.m.business_code, body) if isinstance(body, dict) else 0
            if code not in (0, None, "0"):
                message = f"{method} {path} → code {code}: {str(body)[:300]}"
                if int(code) in self.m.retryable_codes:
                    raise RetryableHTTPError(message)
                raise PermanentSubmitError(message)
            return body

        for attempt in Retrying(retry=retry_if_exception(_retryable), reraise=True,
                                stop=stop_after_attempt(self.config.attempts), wait=wait,
                                before_sleep=lambda s: log.warning("enrolment retry", extra={
                                    "path": path, "attempt": s.attempt_number,
                                    "error": repr(s.outcome.exception())[:300]})):
            with attempt:
                return once()
        raise AssertionError("unreachable")

    def eligible(self, campaign: str) -> dict[str, str | None]:
        """SKU → None when eligible, else the platform's reason."""
        body = self._call("GET", self.m.eligible_path.format(campaign=campaign))
        out: dict[str, str | None] = {}
        for raw in jmespath.search(self.m.eligible_items, body) or []:
            ok = jmespath.search(self.m.eligible_flag, raw)
            out[str(jmespath.search(self.m.eligible_sku, raw))] = None if ok else str(
                jmespath.search(self.m.eligible_reason, raw) or "not eligible")
        return out

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        eligible = self.eligible(campaign_external_id)
        ineligible = {i.sku: eligible.get(i.sku, "not listed as eligible") for i in items
                      if i.sku not in eligible or eligible[i.sku] is not None}
        chosen = [i for i in items if i.sku not in ineligible]
        if not chosen:
            raise PermanentSubmitError(f"no eligible SKUs: {ineligible}")
        f = self.m.request_fields
        payload = {"items": [{f["sku"]: i.sku, f["list_price"]: str(i.list_price),
                              f["promo_price"]: str(i.promo_price),
                              f["promo_stock"]: i.promo_stock} for i in chosen]}
        body = self._call("POST", self.m.enrol_path.format(campaign=campaign_external_id),
                          json=payload, headers={self.m.idempotency_header: idempotency_key})
        reference = jmespath.search(self.m.reference, body)
        if not reference:
            raise PermanentSubmitError(f"enrolment answer without a reference: {str(body)[:300]}")
        raw = {"enrolment": body, "ineligible": ineligible}
        status = self.m.status_map.get(str(jmespath.search(self.m.status, body)), "reviewing")
        return SubmitReceipt(reference=str(reference), status=status, raw=raw)

    def status(self, reference: str) -> ReviewStatus:
        body = self._call("GET", self.m.status_path.format(reference=reference))
        raw_status = str(jmespath.search(self.m.status, body))
        if raw_status not in self.m.status_map:
            raise ValueError(f"unknown enrolment status {raw_status!r}")
        items = [ItemResult(
            sku=str(jmespath.search(self.m.item_sku, i)),
            result=self._result(str(jmespath.search(self.m.item_result, i))),
            reason_code=jmespath.search(self.m.item_reason_code, i),
            reason_text=jmespath.search(self.m.item_reason_text, i),
        ) for i in jmespath.search(self.m.items, body) or []]
        return ReviewStatus(status=self.m.status_map[raw_status], items=items, raw=body)

    def _result(self, raw: str) -> str:
        return self.m.result_map.get(raw, raw.lower())
