"""Tmall big-sale venues (双11, 618 … 会场): assisted submission (capability
``assisted_submit``).

Tmall publishes no enrolment API for its big-sale venues, so a person enrols in the
merchant back office and PromoPilot prepares everything: the deep link to the venue's
enrolment page, and per SKU the exact values to enter — the Tmall item id, the activity
price, the activity stock and the per-person limit (每人限购: the campaign's requirement
``limit_per_buyer``, else ``options.limit_per_buyer``). It is the platform's ``assisted``
submission channel (``policies/submission.yaml``), built on the existing
``AssistedSubmitter``: the hand-off card, the "submitted" button with evidence and the
result a person reports are the submissions feature's own (``bot/submissions/``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from adapters.platforms.connector.base import ConnectorBase
from adapters.platforms.submitters.assisted import AssistedConfig, AssistedSubmitter
from bot.core.i18n import t
from bot.core.ports import SubmissionItem, SubmitReceipt
from storage.models import Campaign

DEEP_LINK = "https://sale.tmall.com/campaign/{campaign}/enroll"  # the venue's page


class TmallBigSaleConnector(ConnectorBase):
    kind = "tmall_bigsale"
    platform = "tmall"
    default_gateway = ""
    capability = "assisted_submit"
    operations: frozenset[str] = frozenset()  # nothing public to call: a person enrols
    credential_fields = ()
    channel = "assisted"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        options = self.config.options
        self.deep_link = str(options.get("deep_link") or DEEP_LINK)
        self.instructions = str(options.get("instructions") or "")
        self.limit_per_buyer = options.get("limit_per_buyer")

    def _limit(self, campaign_id: str) -> int | None:
        with self.reading() as session:
            row = session.exec(select(Campaign).where(Campaign.platform == self.platform,
                                                      Campaign.external_id == campaign_id)).first()
        wanted = (row.requirements or {}).get("limit_per_buyer") if row is not None else None
        value = wanted if wanted not in (None, "") else self.limit_per_buyer
        try:
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        """A waiting receipt: the deep link and, per SKU, the values to enter."""
        assisted = AssistedSubmitter(AssistedConfig(
            deep_link=self.deep_link,
            instructions=self.instructions or t("tmall.bigsale.instructions", None)),
            self.platform)
        receipt = assisted.submit(campaign_external_id, items, idempotency_key)
        ids = self.platform_ids([i.sku for i in items])
        limit = self._limit(campaign_external_id)
        handoff = receipt.raw["handoff"]
        handoff["checklist"] = [{**row, "item_id": ids.get(row["sku"], ("", ""))[0],
                                 "limit_per_buyer": limit} for row in handoff["checklist"]]
        handoff["connector"] = self.name  # (no health write: a take-over calls this inside
        return receipt                    # the action's transaction)

    def status(self, reference: str):  # the person reports what Tmall decided
        raise NotImplementedError("assisted submissions have no status API")
