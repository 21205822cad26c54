"""Pinduoduo: the shop's limited-time discounts (限时限量购) through the open platform.

- campaigns: the platform's invitations to the shop (定向邀约), from the call named by
  ``options.campaigns_type`` — *not* in PDD's public API catalogue as far as PromoPilot
  knows (docs/connectors.md); ``campaigns_type: ""`` turns listing off and the campaigns
  then come from another notice source;
- eligibility: ``pdd.promotion.limited.qualified.goods.get`` for the goods of the declared
  SKUs (per goods and SKU: valid or the reason, and a price ceiling where PDD gives one);
- enrol: ``pdd.promotion.limited.activity.create``, one request per goods with each SKU's
  activity price (fen) and the stock; the answer is per goods (``success``,
  ``activity_id``, ``fail_reason``) — synchronous, so the status is known at once;
- no idempotency key in the create call: the activity name carries a tag of PromoPilot's
  key, and after a lost answer ``pdd.promotion.limited.discount.list.get`` is asked for an
  activity with that tag before anything is created again;
- cancel: ``pdd.promotion.limited.activity.cancel`` per activity.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from adapters.platforms.connector.base import ConnectorBase, fen, yuan
from adapters.platforms.connector.errors import InvalidParam, Malformed
from adapters.platforms.pdd.client import GATEWAY, PddClient
from bot.core.ports import Candidate, Enrolment, ItemResult, PlatformCampaign, SubmissionItem
from storage.models import Campaign

QUALIFIED = "pdd.promotion.limited.qualified.goods.get"
CREATE = "pdd.promotion.limited.activity.create"
LISTED = "pdd.promotion.limited.discount.list.get"
CANCEL = "pdd.promotion.limited.activity.cancel"
INVITATIONS = "pdd.promotion.invitation.list.get"  # not public API: see the module doc
LIMITED_TIME = 12  # activity_type: 12 限时折扣, 3 限量折扣


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value not in (None, "", 0) else None
    except (TypeError, ValueError, OverflowError):
        raise Malformed(f"not a unix time: {value!r}", platform="pdd") from None


def tag(key: str) -> str:
    """The mark an activity name carries so PromoPilot can find its own activity again."""
    return "PP" + hashlib.sha1(key.encode()).hexdigest()[:8].upper()


def overall(items: list[ItemResult]) -> str:
    verdicts = {i.result for i in items}
    if verdicts == {"accepted"}:
        return "accepted"
    return "rejected" if verdicts <= {"rejected"} else "partial"


class PddConnector(ConnectorBase):
    kind = "pdd"
    platform = "pdd"
    default_gateway = GATEWAY
    capability = "api_submit"
    credential_fields = (("client_id", False), ("client_secret", True),
                         ("access_token", True), ("refresh_token", True))

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.api = PddClient(self)
        options = self.config.options
        self.campaigns_type = options.get("campaigns_type", INVITATIONS)
        self.activity_type = int(options.get("activity_type", LIMITED_TIME))
        if not self.campaigns_type:
            self.operations = self.operations - {"list_campaigns"}

    # -- campaigns --------------------------------------------------------------------------

    def _list_campaigns(self) -> list[PlatformCampaign]:
        answer = self.api.call(self.campaigns_type, {"page": 1, "page_size": 100})
        out = []
        for raw in answer.get("invitation_list") or []:
            if not isinstance(raw, dict) or not raw.get("invitation_id") or not raw.get("title"):
                continue  # one unreadable invitation never hides the others
            requirements = {k: raw[k] for k in ("min_discount", "min_stock") if raw.get(k)}
            out.append(PlatformCampaign(
                external_id=str(raw["invitation_id"]), title=str(raw["title"])[:500],
                type=str(raw.get("activity_name_type") or "限时限量购"),
                registration_start=_when(raw.get("apply_start_time")),
                registration_end=_when(raw.get("apply_end_time")),
                event_start=_when(raw.get("start_time")), event_end=_when(raw.get("end_time")),
                requirements=requirements, url=str(raw.get("url") or ""),
                text=str(raw.get("description") or ""),
                invitation=bool(raw.get("is_directed", True))))
        return out

    # -- eligibility ------------------------------------------------------------------------

    def _eligible(self, campaign_id: str, skus: list[str]) -> list[Candidate]:
        ids = self.platform_ids(skus)
        out = [Candidate(s, False, "NOT_MAPPED", self.reason("conn.reason.not_mapped", sku=s))
               for s in skus if s not in ids]
        if not ids:
            return out
        goods = sorted({int(g) for g, _ in ids.values()})
        size = int(self.config.options.get("page_size", 50))
        by_goods: dict[str, dict] = {}
        for start in range(0, len(goods), size):  # a long declaration: several calls
            chunk = goods[start:start + size]
            answer = self.api.call(QUALIFIED, {"goods_id_list": chunk, "page": 1,
                                               "page_size": len(chunk)})
            by_goods |= {str(g.get("goods_id")): g for g in answer.get("goods_list") or []
                         if isinstance(g, dict)}
        for sku, (goods_id, sku_id) in ids.items():
            g = by_goods.get(str(goods_id))
            if g is None:
                continue  # not listed → the base says so
            sku_row = next((s for s in g.get("sku_list") or []
                            if str(s.get("sku_id")) == str(sku_id)), None)
            valid = bool(g.get("is_valid")) and (sku_row is None or bool(sku_row.get("is_valid",
                                                                                     True)))
            reason = (sku_row or {}).get("invalid_reason") or g.get("invalid_reason")
            out.append(Candidate(
                sku, valid, None if valid else "PDD_NOT_QUALIFIED",
                None if valid else str(reason or self.reason("conn.reason.not_listed")),
                max_price=yuan((sku_row or {}).get("max_activity_price")),
                min_stock=(sku_row or {}).get("min_quantity")))
        return out

    # -- enrolment --------------------------------------------------------------------------

    def _window(self, campaign_id: str) -> tuple[str, int, int]:
        with self.db.session() as session:
            campaign = session.exec(select(Campaign).where(
                Campaign.platform == self.platform,
                Campaign.external_id == campaign_id)).first()
        if campaign is None or campaign.event_start is None or campaign.event_end is None:
            raise InvalidParam(f"campaign {campaign_id} has no event start and end",
                               platform="pdd")
        return (campaign.title, int(campaign.event_start.timestamp()),
                int(campaign.event_end.timestamp()))

    def _grouped(self, items: list[SubmissionItem]) -> dict[str, list[tuple[SubmissionItem,
                                                                              str]]]:
        ids = self.platform_ids([i.sku for i in items])
        groups: dict[str, list[tuple[SubmissionItem, str]]] = defaultdict(list)
        for item in items:
            if item.sku not in ids:
                raise InvalidParam(f"no PDD goods id for SKU {item.sku}", platform="pdd")
            goods_id, sku_id = ids[item.sku]
            groups[goods_id].append((item, sku_id))
        return groups

    def _enrol(self, campaign_id: str, items: list[SubmissionItem], key: str) -> Enrolment:
        title, start, end = self._window(campaign_id)
        groups = self._grouped(items)
        name = f"{title[:20]} {tag(key)}"
        request = [{
            "activity_name": name, "activity_type": self.activity_type, "goods_id": int(goods),
            "start_time": start, "end_time": end,
            "quantity": sum(item.promo_stock for item, _ in rows),
            "sku_price_list": [{"sku_id": int(sku_id), "activity_price": fen(item.promo_price),
                                "quantity": item.promo_stock} for item, sku_id in rows],
        } for goods, rows in groups.items()]
        answer = self.api.call(CREATE, {"request": request})
        results = answer.get("result_list")
        if not isinstance(results, list):
            raise Malformed(f"{CREATE}: no result_list", platform="pdd")
        by_goods = {str(r.get("goods_id")): r for r in results if isinstance(r, dict)}
        return self._outcome(groups, by_goods, key)

    def _outcome(self, groups: dict, by_goods: dict[str, dict], key: str) -> Enrolment:
        items, activities = [], {}
        for goods, rows in groups.items():
            r = by_goods.get(str(goods))
            ok = bool(r and r.get("success") and r.get("activity_id"))
            if ok:
                activities[goods] = str(r["activity_id"])  # type: ignore[index]
            reason = None if ok else str((r or {}).get("fail_reason")
                                         or self.reason("conn.reason.no_result"))
            for item, _ in rows:
                items.append(ItemResult(item.sku, "accepted" if ok else "rejected",
                                        None if ok else "PDD_CREATE_FAILED", reason))
        ids = list(activities.values())
        reference = (f"pdd-{ids[0]}" + (f"+{len(ids) - 1}" if len(ids) > 1 else "")
                     if ids else f"pdd-none-{tag(key)}")
        return Enrolment(reference, overall(items), items,
                         {"activities": activities, "tag": tag(key)})

    def _recover(self, campaign_id: str, items: list[SubmissionItem],
                 key: str) -> Enrolment | None:
        groups = self._grouped(items)
        answer = self.api.call(LISTED, {"goods_id_list": [int(g) for g in groups],
                                        "page_no": 1, "page_size": 100})
        mine = {str(a.get("goods_id")): a for a in answer.get("activity_list") or []
                if isinstance(a, dict) and tag(key) in str(a.get("activity_name") or "")}
        if not mine:
            return None
        found = {g: {"success": True, "activity_id": a.get("activity_id")}
                 for g, a in mine.items()}
        return self._outcome(groups, found, key)

    def _status(self, reference: str, row: Any) -> Enrolment:
        raise Malformed(f"no enrolment {reference} in the ledger", platform="pdd")

    def _cancel(self, reference: str, row: Any) -> None:
        activities = ((row.raw or {}).get("activities") or {}) if row is not None else {}
        if not activities:
            raise InvalidParam(f"no PDD activity to cancel for {reference}", platform="pdd")
        for goods, activity in activities.items():
            self.api.call(CANCEL, {"goods_id": int(goods), "detail_id": int(activity)})
