"""JD: the shop's own single-product promotions (单品促销) through JOS, with JD's own
maker/checker step.

- create: ``jingdong.seller.promotion.add`` (type 1, the campaign's event window, a name
  carrying a tag of PromoPilot's key) → ``promo_id``, noted in the ledger at once;
- add SKUs: ``jingdong.seller.promotion.sku.add``, one request per SKU (the JD price and the
  promo price in yuan, the quantity), so a SKU JD refuses comes back with JD's own reason
  while the others go on;
- commit: ``jingdong.seller.promotion.commit``. The promotion then waits for the **shop's
  own checker** (促销审核 in JD's back office: the main account or a sub-account with the
  checking right) — JD's maker/checker step. PromoPilot shows it on the approval card
  (coming) and on the task card (waiting, passed, refused) and never approves in the
  checker's place;
- check: ``jingdong.seller.promotion.v2.get`` (``promo_status``) polled by the submission
  service; once checked, ``jingdong.seller.promotion.v2.sku.list`` says which SKUs are in;
- no idempotency key in the create call: after a lost answer the ledger's ``promo_id`` (or
  ``jingdong.seller.promotion.v2.list`` searched for the tag) is used, the SKUs already in
  the promotion are not added again and the commit is not repeated;
- cancel: ``jingdong.seller.promotion.v2.remove`` with the key as ``request_id``.

The ``promo_status`` values are PromoPilot's reading of JOS's documentation (1 驳回, 2 未审核,
3 人工审, 4 已审核, 5 已生效, 6 已暂停, 7 已结束): docs/connectors.md.
"""

from __future__ import annotations

from typing import Any

from adapters.platforms.connector.base import ConnectorBase
from adapters.platforms.connector.errors import ConnectorError, InvalidParam, Malformed, NotEligible
from adapters.platforms.connector.shared import beijing, campaign, overall, platform_text, tag
from adapters.platforms.jd.client import GATEWAY, JdClient
from bot.core.ports import Enrolment, ItemResult, SubmissionItem

ADD = "jingdong.seller.promotion.add"
SKU_ADD = "jingdong.seller.promotion.sku.add"
COMMIT = "jingdong.seller.promotion.commit"
GET = "jingdong.seller.promotion.v2.get"
LIST = "jingdong.seller.promotion.v2.list"
SKU_LIST = "jingdong.seller.promotion.v2.sku.list"
REMOVE = "jingdong.seller.promotion.v2.remove"
SINGLE = 1  # promo type: 单品促销
REJECTED, PENDING, PASSED = {1}, {2, 3}, {4, 5, 6, 7}


class JdConnector(ConnectorBase):
    kind = "jd"
    platform = "jd"
    default_gateway = GATEWAY
    capability = "api_submit"
    # JOS has no public call listing the platform's campaigns or checking a SKU ahead of a
    # single-product promotion: campaigns come from another notice source.
    operations = frozenset({"enrol", "enrolment_status", "cancel"})
    credential_fields = (("app_key", False), ("app_secret", True),
                         ("access_token", True), ("refresh_token", True))
    checker_step = True  # the shop's own checker approves in JD's back office (促销审核)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.api = JdClient(self)

    # -- enrolment --------------------------------------------------------------------------

    def _enrol(self, campaign_id: str, items: list[SubmissionItem], key: str) -> Enrolment:
        row = campaign(self, campaign_id)
        answer = self.api.call(ADD, {"name": f"{row.title[:20]} {tag(key)}", "type": SINGLE,
                                     "begin_time": beijing(row.event_start),
                                     "end_time": beijing(row.event_end), "comment": key})
        if not answer.get("promo_id"):
            raise Malformed(f"{ADD}: no promo_id", platform=self.platform)
        promo_id = str(answer["promo_id"])
        self.ledger.note(key, promo_id=promo_id, tag=tag(key))  # from now on, resume it
        return self._finish(promo_id, items, key, fresh=True)

    def _recover(self, campaign_id: str, items: list[SubmissionItem],
                 key: str) -> Enrolment | None:
        row = self.ledger.by_key(key)
        promo_id = str((row.raw or {}).get("promo_id") or "") if row is not None else ""
        if not promo_id:
            found = self.api.call(LIST, {"name": tag(key), "type": SINGLE, "page": "1",
                                         "pageS_size": "20"}).get("promotion_list") or []
            mine = [p for p in found if isinstance(p, dict) and p.get("promo_id")
                    and tag(key) in str(p.get("promo_name") or p.get("name") or "")]
            if not mine:
                return None  # nothing was created: send afresh
            promo_id = str(mine[0]["promo_id"])
            self.ledger.note(key, promo_id=promo_id, tag=tag(key))
        return self._finish(promo_id, items, key, fresh=False)

    def _skus_in(self, promo_id: str) -> set[str]:
        answer = self.api.call(SKU_LIST, {"promo_id": promo_id, "promo_type": SINGLE,
                                          "page": "1", "pageS_size": "100"})
        return {str(s.get("sku_id")) for s in answer.get("promotion_sku_list") or []
                if isinstance(s, dict)}

    def _finish(self, promo_id: str, items: list[SubmissionItem], key: str,
                fresh: bool) -> Enrolment:
        """Add the SKUs not yet in the promotion, then commit it once."""
        row = self.ledger.by_key(key)
        state = dict(row.raw or {}) if row is not None else {}
        added: dict[str, str] = dict(state.get("added") or {})  # our SKU → JD SKU id
        refused: dict[str, list] = dict(state.get("refused") or {})  # SKU → [code, reason]
        ids = self.platform_ids([i.sku for i in items])
        present = set() if fresh else self._skus_in(promo_id)
        for seq, item in enumerate(items, 1):
            if item.sku in added or item.sku in refused:
                continue
            if item.sku not in ids:
                refused[item.sku] = ["NOT_MAPPED", self.reason("conn.reason.not_mapped",
                                                               sku=item.sku)]
                continue
            sku_id = ids[item.sku][1]
            if sku_id in present:
                added[item.sku] = sku_id
                continue
            if item.list_price is None or item.promo_price is None:
                refused[item.sku] = ["NO_PRICE", self.reason("conn.reason.no_list_price")]
                continue
            try:
                self.api.call(SKU_ADD, {"promo_id": promo_id, "sku_ids": sku_id,
                                        "jd_prices": f"{item.list_price:.2f}",
                                        "promo_prices": f"{item.promo_price:.2f}",
                                        "seq": str(seq), "num": str(item.promo_stock),
                                        "bind_type": "1"})
            except ConnectorError as exc:
                if type(exc) not in (InvalidParam, NotEligible):
                    self.ledger.note(key, added=added, refused=refused)
                    raise  # the whole call failed: retried or reported, resumed later
                refused[item.sku] = [f"JD_{exc.code or 'REFUSED'}", platform_text(exc)]
            else:
                added[item.sku] = sku_id
            self.ledger.note(key, added=added, refused=refused)
        if added and not state.get("committed"):
            self.api.call(COMMIT, {"promo_id": promo_id})
            self.ledger.note(key, committed=True)
        results = [ItemResult(sku, "rejected", code, text) for sku, (code, text) in refused.items()]
        raw = {"promo_id": promo_id, "tag": tag(key), "added": added, "refused": refused}
        if not added:
            return Enrolment(f"jd-{promo_id}", "rejected", results, raw)
        return Enrolment(f"jd-{promo_id}", "reviewing", results,
                         {**raw, "committed": True, "checker": self._checker("pending", promo_id)})

    def _checker(self, state: str, promo_id: str, status: int | None = None) -> dict:
        return {"state": state, "platform": self.platform, "reference": promo_id,
                "promo_status": status}

    # -- the checker's verdict --------------------------------------------------------------

    def _status(self, reference: str, row: Any) -> Enrolment:
        raw = dict(row.raw or {}) if row is not None else {}
        promo_id = str(raw.get("promo_id") or reference.removeprefix("jd-"))
        promo = self.api.call(GET, {"promo_id": promo_id, "promo_type": SINGLE}).get(
            "jos_promotion")
        if not isinstance(promo, dict):
            raise Malformed(f"{GET}: no jos_promotion", platform=self.platform)
        try:
            status = int(promo.get("promo_status"))
        except (TypeError, ValueError):
            raise Malformed(f"{GET}: promo_status {promo.get('promo_status')!r}",
                            platform=self.platform) from None
        added: dict[str, str] = raw.get("added") or {}
        items = [ItemResult(sku, "rejected", code, text)
                 for sku, (code, text) in (raw.get("refused") or {}).items()]
        if status in PENDING:
            return Enrolment(reference, "reviewing", items,
                             {"checker": self._checker("pending", promo_id, status)})
        if status in REJECTED:
            why = self.reason("conn.reason.jd_check_rejected")
            items += [ItemResult(sku, "rejected", "JD_CHECK_REJECTED", why) for sku in added]
            return Enrolment(reference, "rejected", items,
                             {"checker": self._checker("rejected", promo_id, status)})
        if status not in PASSED:
            raise Malformed(f"{GET}: unknown promo_status {status}", platform=self.platform)
        listed = self._skus_in(promo_id)
        for sku, sku_id in added.items():
            items.append(ItemResult(sku, "accepted") if sku_id in listed else ItemResult(
                sku, "rejected", "JD_SKU_MISSING", self.reason("conn.reason.jd_sku_missing")))
        return Enrolment(reference, overall(items), items,
                         {"checker": self._checker("passed", promo_id, status)})

    def _cancel(self, reference: str, row: Any) -> None:
        raw = dict(row.raw or {}) if row is not None else {}
        promo_id = str(raw.get("promo_id") or "")
        if not promo_id:
            raise InvalidParam(f"no JD promotion to cancel for {reference}", platform="jd")
        self.api.call(REMOVE, {"promo_id": promo_id, "promo_type": SINGLE,
                               "request_id": row.idempotency_key if row is not None else reference})
