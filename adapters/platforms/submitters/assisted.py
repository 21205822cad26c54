"""Assisted submission for platforms without a public enrolment API (e.g. Tmall big-sale
events): a deep link to the back-office page and a checklist of the exact values to enter;
the person presses "submitted" and gives evidence (reference number or screenshot link)."""

from __future__ import annotations

from pydantic import BaseModel

from adapters.platforms.submitters.base import waiting
from bot.core.ports import SubmissionItem, SubmitReceipt


class AssistedConfig(BaseModel):
    deep_link: str = ""  # may use {campaign}
    instructions: str = ""


class AssistedSubmitter:
    capability = "assisted_submit"
    channel = "assisted"

    def __init__(self, config: AssistedConfig, platform: str) -> None:
        self.config = config
        self.platform = platform

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        link = self.config.deep_link.format(campaign=campaign_external_id) \
            if self.config.deep_link else ""
        checklist = [{"sku": i.sku, "promo_price": str(i.promo_price),
                      "promo_stock": i.promo_stock} for i in items]
        return waiting(f"assisted:{idempotency_key}", deep_link=link, checklist=checklist,
                       instructions=self.config.instructions, campaign=campaign_external_id)

    def status(self, reference: str):  # a person reports the outcome
        raise NotImplementedError("assisted submissions have no status API")
