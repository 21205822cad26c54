"""A Temu-style partner API: the model of an *asynchronous* connector.

One JSON POST per call to the router: ``type``, ``app_key``, ``access_token``,
``timestamp``, ``data_type=JSON`` and the business fields, signed like PDD (MD5 of the
sorted name+value pairs wrapped in the app secret, upper-case hex). Answers are
``{"success": bool, "errorCode": int, "errorMsg": str, "result": {…}}``.

- campaigns: ``bg.marketing.activity.list.get`` (an invited activity is a 定向邀约);
- candidates: ``bg.marketing.activity.candidate.list.get`` per activity and SKU ids, with
  the platform's highest activity price and least stock where it sets them;
- enrol: ``bg.marketing.activity.enroll.submit`` with ``requestId`` = PromoPilot's
  idempotency key; the platform answers with a ``traceCode`` at once (the same one for the
  same request id, so a retry never enrols twice) and decides later;
- status: ``bg.marketing.activity.enroll.result.get`` by trace code: ``PROCESSING`` until
  every SKU has ``success`` or a ``failReason``;
- cancel: ``bg.marketing.activity.enroll.cancel`` by trace code.

The type names and fields follow the shapes of Temu's partner documentation (behind the
seller login) and are PromoPilot's model of them: docs/connectors.md.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.platforms.connector.base import ConnectorBase, fen, transport, yuan
from adapters.platforms.connector.errors import (
    BadSignature,
    ConnectorError,
    InvalidParam,
    Malformed,
    NotEligible,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from adapters.platforms.connector.signing import sign
from bot.core.ports import Candidate, Enrolment, ItemResult, PlatformCampaign, SubmissionItem

GATEWAY = "https://openapi.kuajingmaihuo.com/openapi/router"
OK = 1000000
TOKEN_EXPIRED = {7000002}  # access token expired: Temu has no refresh call, authorise again
UNAUTHORIZED = {7000003, 7000004}
BAD_SIGNATURE = {7000006}
RATE_LIMITED = {4000004, 7000015}
RETRYABLE = {5000000, 5000001}
NOT_ELIGIBLE = {3000010}
STATUS = {"SUCCESS": "accepted", "FAIL": "rejected", "PART_SUCCESS": "partial"}


def _ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None
    except (TypeError, ValueError, OverflowError):
        raise Malformed(f"not a time in ms: {value!r}", platform="temu") from None


class TemuConnector(ConnectorBase):
    kind = "temu"
    platform = "temu"
    default_gateway = GATEWAY
    capability = "api_submit"
    credential_fields = (("app_key", False), ("app_secret", True), ("access_token", True))

    def call(self, api: str, fields: dict[str, Any] | None = None) -> dict:
        secrets = self.secrets()
        key, secret = secrets.get("app_key"), secrets.get("app_secret")
        if not key or not secret:
            raise Unauthorized("app_key and app_secret are required", platform="temu")
        body: dict[str, Any] = {"type": api, "app_key": key, "data_type": "JSON",
                                "access_token": secrets.get("access_token") or "",
                                "timestamp": int(time.time()), **(fields or {})}
        body["sign"] = sign(body, secret)
        try:
            response = self.client.post(self.gateway, json=body, timeout=self.request_timeout())
        except httpx.HTTPError as exc:
            raise transport("temu", exc) from None
        wait = response.headers.get("Retry-After")
        retry_after = float(wait) if wait and wait.replace(".", "", 1).isdigit() else None
        if response.status_code == 429:
            raise RateLimited(f"HTTP 429 on {api}", platform="temu", code=429,
                              retry_after=retry_after)
        if response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code} on {api}", platform="temu",
                              code=response.status_code, retry_after=retry_after)
        try:
            answer = response.json()
        except (json.JSONDecodeError, ValueError):
            raise Malformed(f"{api}: not JSON", platform="temu") from None
        if not isinstance(answer, dict):
            raise Malformed(f"{api}: not an object", platform="temu")
        if answer.get("success") is True:
            result = answer.get("result")
            return result if isinstance(result, dict) else {}
        raise self._error(api, answer, retry_after)

    def _error(self, api: str, answer: dict, retry_after: float | None) -> ConnectorError:
        code = answer.get("errorCode")
        number = code if isinstance(code, int) else -1
        kw = {"platform": "temu", "code": code, "request_id": answer.get("requestId")}
        detail = f"{api}: {answer.get('errorMsg') or 'error'}"
        if number in TOKEN_EXPIRED:  # no refresh call: someone authorises the shop again
            return Unauthorized(f"{detail} (expired: authorise the shop again)", **kw)
        for codes, cls in ((UNAUTHORIZED, Unauthorized),
                           (BAD_SIGNATURE, BadSignature), (NOT_ELIGIBLE, NotEligible)):
            if number in codes:
                return cls(detail, **kw)
        if number in RATE_LIMITED:
            return RateLimited(detail, retry_after=retry_after, **kw)
        if number in RETRYABLE:
            return Unavailable(detail, retry_after=retry_after, **kw)
        return InvalidParam(detail, **kw)

    def _list_campaigns(self) -> list[PlatformCampaign]:
        result = self.call("bg.marketing.activity.list.get", {"pageNo": 1, "pageSize": 100})
        out = []
        for raw in result.get("activityList") or []:
            if not isinstance(raw, dict) or not raw.get("activityId") or not raw.get(
                    "activityName"):
                continue
            out.append(PlatformCampaign(
                external_id=str(raw["activityId"]), title=str(raw["activityName"])[:500],
                type=str(raw.get("activityTypeName") or ""),
                registration_start=_ms(raw.get("enrollStartTime")),
                registration_end=_ms(raw.get("enrollEndTime")),
                event_start=_ms(raw.get("startTime")), event_end=_ms(raw.get("endTime")),
                requirements={k: raw[k] for k in ("minDiscount", "minStock") if raw.get(k)},
                text=str(raw.get("description") or ""), invitation=bool(raw.get("invited"))))
        return out

    def _eligible(self, campaign_id: str, skus: list[str]) -> list[Candidate]:
        ids = self.platform_ids(skus)
        out = [Candidate(s, False, "NOT_MAPPED", self.reason("conn.reason.not_mapped", sku=s))
               for s in skus if s not in ids]
        if not ids:
            return out
        result = self.call("bg.marketing.activity.candidate.list.get", {
            "activityId": campaign_id, "skuIdList": sorted(s for _, s in ids.values())})
        by_sku = {str(c.get("skuId")): c for c in result.get("candidateList") or []
                  if isinstance(c, dict)}
        for sku, (_, sku_id) in ids.items():
            c = by_sku.get(str(sku_id))
            if c is None:
                continue
            ok = bool(c.get("canEnroll"))
            out.append(Candidate(sku, ok, None if ok else str(c.get("reasonCode") or "TEMU"),
                                 None if ok else str(c.get("reason") or ""),
                                 max_price=yuan(c.get("maxActivityPrice")),
                                 min_stock=c.get("minActivityStock")))
        return out

    def _enrol(self, campaign_id: str, items: list[SubmissionItem], key: str) -> Enrolment:
        ids = self.platform_ids([i.sku for i in items])
        missing = [i.sku for i in items if i.sku not in ids]
        if missing:
            raise InvalidParam(f"no Temu SKU id for {', '.join(missing)}", platform="temu")
        result = self.call("bg.marketing.activity.enroll.submit", {
            "activityId": campaign_id, "requestId": key,
            "skuList": [{"productId": ids[i.sku][0], "skuId": ids[i.sku][1],
                         "activityPrice": fen(i.promo_price), "activityStock": i.promo_stock}
                        for i in items]})
        trace = result.get("traceCode")
        if not trace:
            raise Malformed("enrol answered without a traceCode", platform="temu")
        return Enrolment(str(trace), "reviewing", [], {"trace_code": str(trace),
                                                       "sku_ids": {i.sku: ids[i.sku][1]
                                                                   for i in items}})

    def _status(self, reference: str, row: Any) -> Enrolment:
        result = self.call("bg.marketing.activity.enroll.result.get", {"traceCode": reference})
        state = str(result.get("status") or "")
        if state == "PROCESSING":
            return Enrolment(reference, "reviewing", [], {"operation": state})
        if state not in STATUS:
            raise Malformed(f"unknown operation status {state!r}", platform="temu")
        sku_of = {v: k for k, v in ((row.raw or {}).get("sku_ids") or {}).items()} \
            if row is not None else {}
        items = []
        for r in result.get("skuResultList") or []:
            if not isinstance(r, dict):
                continue
            ok = bool(r.get("success"))
            items.append(ItemResult(sku_of.get(str(r.get("skuId")), str(r.get("skuId"))),
                                    "accepted" if ok else "rejected",
                                    None if ok else str(r.get("failCode") or "TEMU_REJECTED"),
                                    None if ok else str(r.get("failReason") or "")))
        return Enrolment(reference, STATUS[state], items, {"operation": state})

    def _cancel(self, reference: str, row: Any) -> None:
        self.call("bg.marketing.activity.enroll.cancel", {"traceCode": reference})
