"""Taobao/Tmall: the shop's own item activities (通用单品优惠) through TOP.

- quota: a seller may hold at most 30 such activities (TOP's documented limit, configurable
  as ``options.activity_quota``); ``taobao.promotionmisc.common.item.activity.list.get``
  counts them, the eligibility answer says so before approval, and an enrolment is refused
  with a clear message **before** anything is created when the quota is used up;
- create: ``taobao.promotionmisc.common.item.activity.add`` (the campaign's window, a name
  carrying a tag of PromoPilot's key) → ``activity_id``, noted in the ledger at once;
- items: ``taobao.promotionmisc.common.item.detail.add`` per item (商品): a price cut
  (``promotion_type`` 0, in fen) = list price − promo price. The cut is per item, so the
  SKUs of one item need the same cut; at most 150 items per activity. An item TOP refuses
  (e.g. below the shop's lowest discount) comes back with TOP's own reason;
- no idempotency key: after a lost answer the ledger's ``activity_id`` (or the activity list
  searched for the tag) is used and the items already in it are not added again;
- cancel: ``taobao.promotionmisc.common.item.activity.delete``.

Big-sale venues (双11, 618 … 会场) have no public enrolment API: their campaigns are refused
with ``AssistedOnly`` so the submission chain hands them to the assisted channel
(``adapters.platforms.taobao.bigsale``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlmodel import select

from adapters.platforms.connector.base import ConnectorBase, fen
from adapters.platforms.connector.errors import (
    AssistedOnly,
    ConnectorError,
    InvalidParam,
    Malformed,
    NotEligible,
    QuotaExhausted,
)
from adapters.platforms.connector.shared import (
    beijing,
    by_item,
    campaign,
    overall,
    platform_text,
    tag,
)
from adapters.platforms.taobao.client import GATEWAY, TopClient
from bot.core.ports import Candidate, Enrolment, ItemResult, SubmissionItem, SubmitReceipt
from storage.models import Campaign

ACTIVITY_ADD = "taobao.promotionmisc.common.item.activity.add"
ACTIVITY_LIST = "taobao.promotionmisc.common.item.activity.list.get"
ACTIVITY_DELETE = "taobao.promotionmisc.common.item.activity.delete"
DETAIL_ADD = "taobao.promotionmisc.common.item.detail.add"
DETAIL_LIST = "taobao.promotionmisc.common.item.detail.list.get"
QUOTA = 30  # 同一卖家下的活动数量限制为30个
PER_ACTIVITY = 150  # 同一卖家同一活动下的优惠详情数量限制为150个
CUT = 0  # promotion_type: 0 减钱 (fen), 1 打折
BIG_SALE = r"双11|双十一|双12|双十二|618|99划算|年货节|会场|大促"


def listed(value: Any) -> list[dict]:
    """TOP's JSON list: a list, or ``{"<struct name>": [...]}`` (the XML shape)."""
    if isinstance(value, dict):
        value = next((v for v in value.values() if isinstance(v, list)), [])
    return [v for v in value or [] if isinstance(v, dict)]


class TaobaoConnector(ConnectorBase):
    kind = "taobao"
    platform = "tmall"
    default_gateway = GATEWAY
    capability = "api_submit"
    operations = frozenset({"eligible_products", "enrol", "enrolment_status", "cancel"})
    credential_fields = (("app_key", False), ("app_secret", True),
                         ("access_token", True), ("refresh_token", True))

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.api = TopClient(self)
        options = self.config.options
        self.quota = int(options.get("activity_quota", QUOTA))
        self.per_activity = int(options.get("items_per_activity", PER_ACTIVITY))
        self.big_sale = re.compile(str(options.get("assisted_pattern", BIG_SALE)))
        self._count: tuple[float, int, list[dict]] | None = None

    # -- what is not ours to enrol, and the quota --------------------------------------------

    def big_sale_campaign(self, campaign_id: str) -> bool:
        with self.reading() as session:
            row = session.exec(select(Campaign).where(Campaign.platform == self.platform,
                                                      Campaign.external_id == campaign_id)).first()
        return row is not None and bool(self.big_sale.search(f"{row.type} {row.title}"))

    def _assisted_only(self, campaign_id: str) -> AssistedOnly:
        return AssistedOnly(f"campaign {campaign_id}: big-sale venue, no public enrolment API",
                            platform=self.platform)

    def activities(self, fresh: bool = False) -> tuple[int, list[dict]]:
        """How many item activities the shop holds (cached for a few seconds) and the list."""
        now = time.monotonic()
        if not fresh and self._count is not None and now - self._count[0] < 5:
            return self._count[1], self._count[2]
        answer = self.api.call(ACTIVITY_LIST, {"page_no": 1, "page_size": 50})
        found = listed(answer.get("activity_list"))
        try:
            total = int(answer.get("total_count") if answer.get("total_count") is not None
                        else len(found))
        except (TypeError, ValueError):
            raise Malformed(f"{ACTIVITY_LIST}: total_count", platform=self.platform) from None
        self._count = (now, total, found)
        return total, found

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        if self.big_sale_campaign(campaign_external_id):
            raise self._assisted_only(campaign_external_id)  # the chain moves on to assisted
        if self.ledger.by_key(idempotency_key) is None:  # refused before anything is sent
            self.run("enrol", self._room_left)
        return super().submit(campaign_external_id, items, idempotency_key)

    def _room_left(self, fresh: bool = True) -> None:
        used, _ = self.activities(fresh=fresh)
        if used >= self.quota:
            raise QuotaExhausted(f"{used}/{self.quota}", platform=self.platform)

    def _eligible(self, campaign_id: str, skus: list[str]) -> list[Candidate]:
        if self.big_sale_campaign(campaign_id):
            raise self._assisted_only(campaign_id)  # the pre-check says "not checked"
        ids = self.platform_ids(skus)
        out = [Candidate(s, False, "NOT_MAPPED", self.reason("conn.reason.not_mapped", sku=s))
               for s in skus if s not in ids]
        if not ids:
            return out
        used, _ = self.activities()
        full = used >= self.quota
        why = self.reason("conn.reason.tb_quota", used=used, quota=self.quota) if full else None
        return out + [Candidate(s, not full, "TB_QUOTA" if full else None, why) for s in ids]

    # -- enrolment --------------------------------------------------------------------------

    def _enrol(self, campaign_id: str, items: list[SubmissionItem], key: str) -> Enrolment:
        row = campaign(self, campaign_id)
        self._room_left(fresh=False)
        answer = self.api.call(ACTIVITY_ADD, {"name": f"{row.title[:20]} {tag(key)}",
                                              "description": key[:100], "is_user_tag": False,
                                              "start_time": beijing(row.event_start),
                                              "end_time": beijing(row.event_end)})
        if not answer.get("activity_id"):
            raise Malformed(f"{ACTIVITY_ADD}: no activity_id", platform=self.platform)
        activity_id = str(answer["activity_id"])
        self._count = None
        self.ledger.note(key, activity_id=activity_id, tag=tag(key))
        return self._finish(activity_id, items, key, fresh=True)

    def _recover(self, campaign_id: str, items: list[SubmissionItem],
                 key: str) -> Enrolment | None:
        row = self.ledger.by_key(key)
        activity_id = str((row.raw or {}).get("activity_id") or "") if row is not None else ""
        if not activity_id:
            mine = [a for a in self.activities(fresh=True)[1]
                    if a.get("activity_id") and tag(key) in str(a.get("name") or "")]
            if not mine:
                return None
            activity_id = str(mine[0]["activity_id"])
            self.ledger.note(key, activity_id=activity_id, tag=tag(key))
        return self._finish(activity_id, items, key, fresh=False)

    def _details_in(self, activity_id: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for page in range(1, 2 + self.per_activity // 50):
            answer = self.api.call(DETAIL_LIST, {"activity_id": activity_id, "page_no": page,
                                                 "page_size": 50})
            rows = listed(answer.get("detail_list"))
            found |= {str(d.get("item_id")): str(d.get("detail_id") or "") for d in rows}
            if len(rows) < 50:
                break
        return found

    def _finish(self, activity_id: str, items: list[SubmissionItem], key: str,
                fresh: bool) -> Enrolment:
        """Add the items not yet in the activity (one price cut per item)."""
        row = self.ledger.by_key(key)
        state = dict(row.raw or {}) if row is not None else {}
        details: dict[str, str] = dict(state.get("details") or {})  # item id → detail id
        refused: dict[str, list] = dict(state.get("refused") or {})  # SKU → [code, reason]
        done: list[str] = list(state.get("done_items") or [])  # items decided either way
        ids = self.platform_ids([i.sku for i in items])
        for item in items:
            if item.sku not in ids:
                refused[item.sku] = ["NOT_MAPPED", self.reason("conn.reason.not_mapped",
                                                               sku=item.sku)]
        present = {} if fresh else self._details_in(activity_id)
        for item_id, rows in by_item(items, ids).items():
            if item_id in done:
                continue
            if item_id in present:
                details[item_id] = present[item_id]
                done.append(item_id)
                continue
            first = rows[0][0]
            cut = (first.list_price - first.promo_price) if None not in (
                first.list_price, first.promo_price) else None
            for other, _ in rows[1:]:
                if other.list_price is None or other.promo_price is None or \
                        other.list_price - other.promo_price != cut:
                    refused[other.sku] = ["TB_ITEM_LEVEL", self.reason("conn.reason.item_level",
                                                                       sku=first.sku)]
            if cut is None or cut <= 0:
                refused[first.sku] = ["NO_PRICE", self.reason("conn.reason.no_list_price")]
            elif len(details) >= self.per_activity:
                refused[first.sku] = ["TB_ITEM_LIMIT", self.reason("conn.reason.item_limit",
                                                                   n=self.per_activity)]
            else:
                try:
                    answer = self.api.call(DETAIL_ADD, {"activity_id": activity_id,
                                                        "item_id": item_id,
                                                        "promotion_type": CUT,
                                                        "promotion_value": fen(cut)})
                except ConnectorError as exc:
                    if type(exc) not in (InvalidParam, NotEligible):
                        self.ledger.note(key, details=details, refused=refused, done_items=done)
                        raise  # the whole call failed: retried or reported, resumed later
                    for it, _ in rows:
                        refused.setdefault(it.sku, [f"TB_{exc.code or 'REFUSED'}",
                                                    platform_text(exc)])
                else:
                    details[item_id] = str(answer.get("detail_id") or "")
            done.append(item_id)
            self.ledger.note(key, details=details, refused=refused, done_items=done)
        if not details:  # nothing joined: free the quota the empty activity takes
            self.api.call(ACTIVITY_DELETE, {"activity_id": activity_id})
            self._count = None
        results = [ItemResult(i.sku, "rejected", *refused[i.sku]) if i.sku in refused
                   else ItemResult(i.sku, "accepted") for i in items]
        return Enrolment(f"tb-{activity_id}", overall(results), results,
                         {"activity_id": activity_id, "tag": tag(key), "details": details})

    def _status(self, reference: str, row: Any) -> Enrolment:
        raise Malformed(f"no enrolment {reference} in the ledger", platform=self.platform)

    def _cancel(self, reference: str, row: Any) -> None:
        activity_id = str(((row.raw or {}) if row is not None else {}).get("activity_id") or "")
        if not activity_id:
            raise InvalidParam(f"no Taobao activity to cancel for {reference}",
                               platform=self.platform)
        self.api.call(ACTIVITY_DELETE, {"activity_id": activity_id})
        self._count = None
