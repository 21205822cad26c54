"""Cost and stock from an ERP/WMS over HTTP-JSON (聚水潭-, 旺店通-style inventory APIs).

A ``CostMapping`` says where things are in the answer (jmespath): the row list, each
field of a row, the business code and message, whether there is a next page. The defaults
read the 聚水潭-style payload in docs/insight.md. Pages are asked for one after another
(``page_param``/``page_size_param`` in the query for GET, in the JSON body for POST).

Every request is retried with exponential backoff and jitter on timeouts, connection errors,
5xx, 429 (its ``Retry-After`` honoured, at most 60 s), a body that is not JSON and the
business codes listed in ``retry_codes``; a 4xx or another business code fails the sync at
once (the sync backs off and tells ops). A row that cannot be read is rejected with its
reason (``rejected``) and the others still count. The token (``token_env``) is sent as a
bearer token and never logged; query strings never reach an error message.

``signing="jushuitan"``: 聚水潭's open platform (``adapters.erp.signing``): the body and the
page fields go as its ``biz``, in a signed form with ``app_key_env``'s key and
``token_env``'s access token, signed with ``app_secret_env``'s secret.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import jmespath

from adapters.erp.rows import parse
from adapters.erp.signing import jushuitan_form
from adapters.platforms.http_util import TIMEOUT, RetryableHTTPError, check, with_retries
from bot.core.ports import RowRejected, StockCost

log = logging.getLogger(__name__)


class ErpError(Exception):
    """The ERP refused or answered something unusable (the whole sync fails)."""


@dataclass
class CostMapping:
    items: str = "data.datas"  # the list of rows
    sku: str = "sku_id"
    cost: str | None = "cost_price"
    stock: str | None = "qty"
    stock_minus: list[str] = field(default_factory=lambda: ["order_lock"])  # locked for orders
    in_transit: str | None = "purchase_qty"
    safety_stock: str | None = "min_qty"
    code: str | None = "code"  # the business code; ok_codes mean success
    ok_codes: list[Any] = field(default_factory=lambda: [0, "0"])
    retry_codes: list[Any] = field(default_factory=list)  # e.g. the ERP's own rate limit
    message: str | None = "msg"
    has_next: str | None = "data.has_next"
    page_param: str | None = "page_index"
    page_size_param: str | None = "page_size"
    page_size: int = 100
    first_page: int = 1
    max_pages: int = 500


def _where(url: str) -> str:
    return url.split("?", 1)[0]


@dataclass
class HttpJsonCostSource:
    name: str
    url: str
    mapping: CostMapping = field(default_factory=CostMapping)
    method: str = "GET"
    body: dict = field(default_factory=dict)  # POST: sent with the page fields added
    params: dict = field(default_factory=dict)  # GET: the query, with the page fields added
    headers: dict = field(default_factory=dict)
    token_env: str | None = None
    timeout: float = 10.0
    attempts: int = 4
    interval: float = 900.0
    alert_after: int = 1
    client: httpx.Client | None = None
    signing: str = "none"  # or "jushuitan"
    app_key_env: str | None = None
    app_secret_env: str | None = None
    kind: str = "http_json"
    rejected: list[RowRejected] = field(default_factory=list)

    def _client(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(
                5.0, self.timeout)) if self.timeout else TIMEOUT)
        return self.client

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **{k: str(v) for k, v in self.headers.items()}}
        token = os.environ.get(self.token_env or "", "") if self.token_env else ""
        if token and self.signing == "none":  # a signed call carries it in its form
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _secret(self, env: str | None, what: str) -> str:
        value = os.environ.get(env or "", "") if env else ""
        if not value:  # the variable's name, never a value
            raise ErpError(f"{self.name}: {self.signing} signing needs the {what} in the "
                           f"environment variable {env or '(not configured)'}")
        return value

    def _signed(self, biz: dict) -> dict[str, str]:
        return jushuitan_form(biz, app_key=self._secret(self.app_key_env, "app key"),
                              app_secret=self._secret(self.app_secret_env, "app secret"),
                              access_token=self._secret(self.token_env, "access token"))

    def _page(self, number: int) -> Any:
        m = self.mapping
        paging = {}
        if m.page_param:
            paging[m.page_param] = number
        if m.page_size_param:
            paging[m.page_size_param] = m.page_size

        @with_retries(self.attempts)
        def ask() -> Any:
            if self.signing == "jushuitan":
                response = self._client().post(self.url, data=self._signed(
                    {**self.body, **paging}), headers=self._headers())
            elif self.method.upper() == "POST":
                response = self._client().post(self.url, json={**self.body, **paging},
                                               headers=self._headers())
            else:
                response = self._client().get(self.url, params={**self.params, **paging},
                                              headers=self._headers())
            check(response)
            try:  # money stays exact: JSON numbers with a fraction become Decimal
                payload = json.loads(response.content, parse_float=Decimal)
            except ValueError:
                raise RetryableHTTPError(f"{_where(self.url)}: the answer is not JSON "
                                         f"({response.content[:60]!r})") from None
            code = jmespath.search(m.code, payload) if m.code and isinstance(payload, dict) \
                else None
            if m.code and code is not None and code not in m.ok_codes:
                text = str(jmespath.search(m.message, payload) or "")[:200] if m.message else ""
                error = f"{_where(self.url)}: business code {code} {text}".strip()
                if code in m.retry_codes:
                    raise RetryableHTTPError(error)
                raise ErpError(error)
            return payload

        return ask()

    def fetch(self) -> list[StockCost]:
        m = self.mapping
        self.rejected = []
        found: dict[str, StockCost] = {}
        number = m.first_page
        for _ in range(m.max_pages):
            payload = self._page(number)
            items = jmespath.search(m.items, payload)
            if items is None:
                items = []
            if not isinstance(items, list):
                raise ErpError(f"{_where(self.url)}: {m.items} is not a list of rows")
            for i, item in enumerate(items, 1):
                where = f"p{number}#{i}"
                row = self._row(item, where)
                if isinstance(row, RowRejected):
                    self.rejected.append(row)
                elif row.sku in found:
                    self.rejected.append(RowRejected(row.sku, "erp.row.duplicate",
                                                     {"sku": row.sku, "where": where}))
                else:
                    found[row.sku] = row
            more = jmespath.search(m.has_next, payload) if m.has_next else False
            if not items or not m.page_param or more is not True:
                break
            number += 1
        else:
            log.warning("cost source stopped at max_pages", extra={"source": self.name,
                                                                   "pages": m.max_pages})
        log.info("cost source read", extra={"source": self.name, "rows": len(found),
                                            "rejected": len(self.rejected)})
        return list(found.values())

    def _row(self, item: Any, where: str) -> StockCost | RowRejected:
        m = self.mapping
        if not isinstance(item, dict):
            return RowRejected(where, "erp.row.not_object", {"where": where})
        try:
            values = {name: jmespath.search(path, item) if path else None for name, path in (
                ("sku", m.sku), ("cost", m.cost), ("stock", m.stock),
                ("in_transit", m.in_transit), ("safety_stock", m.safety_stock))}
            minus = [jmespath.search(path, item) for path in m.stock_minus]
        except jmespath.exceptions.JMESPathError as exc:  # a mapping that breaks on a row
            return RowRejected(where, "erp.row.unreadable", {"where": where,
                                                             "error": str(exc)[:100]})
        if isinstance(values["sku"], int | float | Decimal) and not isinstance(values["sku"],
                                                                               bool):
            values["sku"] = str(values["sku"])
        elif values["sku"] is not None and not isinstance(values["sku"], str):
            return RowRejected(where, "erp.row.no_sku", {"where": where})
        return parse(values, where, minus)

