"""抖店: 精选联盟 colonel (团长) activities — the shop lists them, applies with its products,
and the colonel audits each product.

- list: ``buyin.ShopActivityList`` (``apply_status`` 2: the activities the shop may join),
  cursor mode; an exclusive one (``activity_kind`` 0, 专属招商) is an invitation (定向邀约);
- eligibility: ``buyin.shopActivityDetail`` — an activity whose enrolment window is over
  refuses every SKU (with the window's end); the SKU must be mapped to a 抖店 product;
- apply: ``buyin.applyActivities`` with each product's activity price (fen), stock, the
  commission ratio and the service ratio (``options`` or the activity's requirements) and
  the shop's phone number; the answer is per product (``is_success``, ``error_msg``), so a
  product the platform refuses comes back with its reason at once;
- audit: the colonel's verdict per product — 0 待审核, 1 推广中 (accepted), 2 申请未通过
  (rejected, with the colonel's ``reason``), 4 合作前取消 — polled by the submission service
  from the call named by ``options.audit_method``;
- no idempotency key: after a lost answer the audit list is asked for the products first.

**Not verified**: the audit call. 抖店's public catalogue documents the shop-side list,
detail and apply calls above; the per-product audit list it documents
(``alliance.colonelActivityProduct``) needs the colonel's authorisation. The shop-side call
``buyin.shopActivityProductList`` and its shape (modelled on that one) are PromoPilot's
assumption: docs/connectors.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import select

from adapters.platforms.connector.base import ConnectorBase, fen
from adapters.platforms.connector.errors import InvalidParam, Malformed
from adapters.platforms.connector.shared import by_item, from_beijing, overall, tag
from adapters.platforms.douyin.client import GATEWAY, DouyinClient
from bot.core.ports import Candidate, Enrolment, ItemResult, PlatformCampaign, SubmissionItem
from storage.models import Campaign

LIST = "buyin.ShopActivityList"
DETAIL = "buyin.shopActivityDetail"
APPLY = "buyin.applyActivities"
AUDIT = "buyin.shopActivityProductList"  # not verified: see the module doc
CAN_APPLY = 2
PENDING, ACCEPTED, REJECTED, CANCELLED = {0}, {1, 3, 6}, {2}, {4}


def _activity(campaign_id: str) -> int:
    """A colonel activity's id (a number); a campaign from another source is not one."""
    if not str(campaign_id).isdigit():
        raise InvalidParam(f"campaign {campaign_id} is not a Douyin colonel activity (its id is "
                           "not the activity_id)", platform="douyin")
    return int(campaign_id)


def _ratio(value: Any) -> str | None:
    try:
        return f"{Decimal(str(value)):.2f}" if value not in (None, "") else None
    except InvalidOperation:
        return None


class DouyinConnector(ConnectorBase):
    kind = "douyin"
    platform = "douyin"
    default_gateway = GATEWAY
    capability = "api_submit"
    operations = frozenset({"list_campaigns", "eligible_products", "enrol", "enrolment_status"})
    credential_fields = (("app_key", False), ("app_secret", True), ("access_token", True),
                         ("refresh_token", True), ("phone_number", False))

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.api = DouyinClient(self)
        options = self.config.options
        self.audit_method = str(options.get("audit_method") or AUDIT)
        self.max_pages = int(options.get("max_pages", 5))

    # -- activities -------------------------------------------------------------------------

    def _list_campaigns(self) -> list[PlatformCampaign]:
        out: list[PlatformCampaign] = []
        cursor = ""
        for _ in range(self.max_pages):
            params: dict[str, Any] = {"apply_status": CAN_APPLY, "retrieve_mode": 1,
                                      "page_size": 20}
            if cursor:
                params["cursor"] = cursor
            data = self.api.call(LIST, params)
            for raw in data.get("data") or []:
                if not isinstance(raw, dict) or not raw.get("activity_id") \
                        or not raw.get("activity_name"):
                    continue  # one unreadable activity never hides the others
                try:
                    start = from_beijing(raw.get("apply_start_time"), self.platform)
                    end = from_beijing(raw.get("apply_end_time"), self.platform)
                except Malformed:
                    start = end = None
                requirements = {k: raw[k] for k in ("commission_rate", "service_rate")
                                if raw.get(k) not in (None, "")}
                colonel = str(raw.get("institution_name") or "")
                out.append(PlatformCampaign(
                    external_id=str(raw["activity_id"]), title=str(raw["activity_name"])[:500],
                    type="团长活动", registration_start=start, registration_end=end,
                    requirements=requirements,
                    text=" · ".join(x for x in (colonel, str(raw.get("activity_desc") or ""))
                                    if x),
                    invitation=raw.get("activity_kind") == 0))
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                break
        return out

    def _eligible(self, campaign_id: str, skus: list[str]) -> list[Candidate]:
        ids = self.platform_ids(skus)
        out = [Candidate(s, False, "NOT_MAPPED", self.reason("conn.reason.not_mapped", sku=s))
               for s in skus if s not in ids]
        if not ids:
            return out
        detail = self.api.call(DETAIL, {"activity_id": _activity(campaign_id)})
        end = from_beijing(detail.get("apply_end_time"), self.platform)
        if end is not None and end < datetime.now(UTC):
            why = self.reason("conn.reason.dy_closed", end=str(detail.get("apply_end_time")))
            return out + [Candidate(s, False, "DY_APPLY_CLOSED", why) for s in ids]
        return out + [Candidate(s, True) for s in ids]

    # -- applying ---------------------------------------------------------------------------

    def _terms(self, campaign_id: str) -> tuple[str | None, str | None, str]:
        with self.reading() as session:
            row = session.exec(select(Campaign).where(Campaign.platform == self.platform,
                                                      Campaign.external_id == campaign_id)).first()
        wanted = (row.requirements or {}) if row is not None else {}
        options = self.config.options
        commission = _ratio(options.get("commission_ratio") or wanted.get("commission_rate"))
        service = _ratio(options.get("service_ratio") or wanted.get("service_rate"))
        phone = str(options.get("phone_number") or self.secrets().get("phone_number") or "")
        if not phone:
            raise InvalidParam("the shop's phone number is required to apply (credential "
                               "field phone_number)", platform=self.platform)
        return commission, service, phone

    def _enrol(self, campaign_id: str, items: list[SubmissionItem], key: str) -> Enrolment:
        _activity(campaign_id)
        commission, service, phone = self._terms(campaign_id)
        ids = self.platform_ids([i.sku for i in items])
        refused = {i.sku: ["NOT_MAPPED", self.reason("conn.reason.not_mapped", sku=i.sku)]
                   for i in items if i.sku not in ids}
        products, skus_of = [], {}
        for product_id, rows in by_item(items, ids).items():
            first = rows[0][0]
            same = [it for it, _ in rows if it.promo_price == first.promo_price]
            for other, _ in rows:
                if other not in same:
                    refused[other.sku] = ["DY_PRODUCT_LEVEL", self.reason(
                        "conn.reason.item_level", sku=first.sku)]
            product: dict[str, Any] = {
                "product_id": int(product_id) if product_id.isdigit() else product_id,
                "activity_price": fen(first.promo_price),
                "promotion_stock": sum(it.promo_stock for it in same)}
            if commission:
                product["product_activity_ratio"] = commission
            products.append(product)
            skus_of[str(product_id)] = [it.sku for it in same]
        raw: dict[str, Any] = {"activity_id": campaign_id, "tag": tag(key), "skus_of": skus_of}
        if not products:
            return self._outcome(f"dy-{campaign_id}-{tag(key)}", {}, refused, raw)
        params: dict[str, Any] = {"activity_id": _activity(campaign_id), "phone_number": phone,
                                  "products": products}
        if service:
            params["service_ratio"] = service
        data = self.api.call(APPLY, params)
        results = data.get("result")
        if not isinstance(results, list):
            raise Malformed(f"{APPLY}: no result list", platform=self.platform)
        by_product = {str(r.get("product_id")): r for r in results if isinstance(r, dict)}
        applied = {}
        for product_id, skus in skus_of.items():
            r = by_product.get(product_id)
            if r is not None and r.get("is_success"):
                applied[product_id] = skus
                continue
            why = str((r or {}).get("error_msg") or self.reason("conn.reason.no_result"))
            for sku in skus:
                refused[sku] = [f"DY_{(r or {}).get('error_code') or 'REFUSED'}", why]
        return self._outcome(f"dy-{campaign_id}-{tag(key)}", applied, refused,
                             {**raw, "applied": applied, "refused": refused})

    def _outcome(self, reference: str, applied: dict, refused: dict, raw: dict,
                 verdicts: dict[str, tuple[str, str | None, str | None]] | None = None
                 ) -> Enrolment:
        items = [ItemResult(sku, "rejected", code, text) for sku, (code, text) in refused.items()]
        if not applied:
            return Enrolment(reference, "rejected", items, {**raw, "refused": refused})
        if verdicts is None or any(p not in verdicts for p in applied):
            return Enrolment(reference, "reviewing", items, raw)  # the colonel audits
        for product_id, skus in applied.items():
            result, code, text = verdicts[product_id]
            items += [ItemResult(sku, result, code, text) for sku in skus]
        return Enrolment(reference, overall(items), items, raw)

    def _audit(self, activity_id: str, products: set[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for page in range(1, self.max_pages + 1):
            data = self.api.call(self.audit_method, {"activity_id": _activity(activity_id),
                                                     "page": page, "page_size": 20})
            rows = [r for r in data.get("data") or [] if isinstance(r, dict)]
            found |= {str(r.get("product_id")): r for r in rows
                      if str(r.get("product_id")) in products}
            if len(rows) < 20 or products <= set(found):
                break
        return found

    def _verdicts(self, audited: dict[str, dict]) -> dict[str, tuple[str, str | None, str | None]]:
        out = {}
        for product_id, r in audited.items():
            try:
                status = int(r.get("status"))
            except (TypeError, ValueError):
                raise Malformed(f"{self.audit_method}: status {r.get('status')!r}",
                                platform=self.platform) from None
            if status in ACCEPTED:
                out[product_id] = ("accepted", None, None)
            elif status in REJECTED:
                out[product_id] = ("rejected", "DY_AUDIT_REJECTED",
                                   str(r.get("reason") or self.reason("conn.reason.no_result")))
            elif status in CANCELLED:
                out[product_id] = ("rejected", "DY_CANCELLED",
                                   self.reason("conn.reason.dy_cancelled"))
        return out  # 0 (待审核) and unknown states: still waiting

    def _recover(self, campaign_id: str, items: list[SubmissionItem],
                 key: str) -> Enrolment | None:
        ids = self.platform_ids([i.sku for i in items])
        groups = {str(p): [it.sku for it, _ in rows] for p, rows in by_item(items, ids).items()}
        audited = self._audit(campaign_id, set(groups))
        if not audited:
            return None  # nothing was applied: apply afresh
        applied = {p: skus for p, skus in groups.items() if p in audited}
        refused = {sku: ["DY_REFUSED", self.reason("conn.reason.no_result")]
                   for p, skus in groups.items() if p not in audited for sku in skus}
        refused |= {i.sku: ["NOT_MAPPED", self.reason("conn.reason.not_mapped", sku=i.sku)]
                    for i in items if i.sku not in ids}
        raw = {"activity_id": campaign_id, "tag": tag(key), "applied": applied,
               "refused": refused}
        return self._outcome(f"dy-{campaign_id}-{tag(key)}", applied, refused, raw,
                             self._verdicts(audited))

    def _status(self, reference: str, row: Any) -> Enrolment:
        raw = dict(row.raw or {}) if row is not None else {}
        applied: dict[str, list[str]] = raw.get("applied") or {}
        if not applied or not raw.get("activity_id"):
            raise Malformed(f"no application {reference} in the ledger", platform=self.platform)
        audited = self._audit(str(raw["activity_id"]), set(applied))
        return self._outcome(reference, applied, raw.get("refused") or {},
                             {"audited": {p: r.get("status") for p, r in audited.items()}},
                             self._verdicts(audited))
