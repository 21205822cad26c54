"""Submits declarations to the sandbox marketplace over HTTP, as a real API connector would."""

from __future__ import annotations

import httpx

from adapters.platforms.http_util import TIMEOUT, check, with_retries
from bot.core.ports import ItemResult, ReviewStatus, SubmissionItem, SubmitReceipt


class SandboxSubmitter:
    capability = "api_submit"

    def __init__(self, base_url: str, platform: str, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.platform = platform
        self.client = client or httpx.Client(timeout=TIMEOUT)

    @with_retries()
    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        payload = {
            "campaign_id": campaign_external_id,
            "idempotency_key": idempotency_key,
            "items": [{"sku": i.sku, "list_price": str(i.list_price),
                       "promo_price": str(i.promo_price), "promo_stock": i.promo_stock}
                      for i in items],
        }
        body = check(self.client.post(
            f"{self.base_url}/{self.platform}/registrations", json=payload)).json()
        return SubmitReceipt(reference=str(body["registration_id"]), status=body["status"],
                             raw=body)

    @with_retries()
    def status(self, reference: str) -> ReviewStatus:
        body = check(self.client.get(
            f"{self.base_url}/{self.platform}/registrations/{reference}")).json()
        return ReviewStatus(
            status=body["status"],
            items=[ItemResult(sku=i["sku"], result=i["result"], reason_code=i.get("reason_code"),
                              reason_text=i.get("reason_text")) for i in body.get("items", [])],
            raw=body,
        )
