"""One ERP/WMS row → ``StockCost``, or the reason it cannot be used.

Shared by the HTTP-JSON source and the file drops, so a row means the same wherever it came
from: a SKU (text, at most 64 characters), a cost (money: ``38.5``, ``"38.50"``, ``"￥1,299"``,
four decimals as ERPs keep them, rounded to the cent half up), whole non-negative counts for
stock, in-transit and safety stock (``"800.0000"`` is 800, ``800.5`` is refused). Stock
minus what the ERP has locked for orders below zero (oversold) counts as 0.
"""

from __future__ import annotations

import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from bot.core.ports import RowRejected, StockCost

MAX_MONEY = Decimal("1000000000")
MAX_COUNT = 2_000_000_000
COUNTS = ("stock", "in_transit", "safety_stock")
CENT = Decimal("0.01")


class Bad(ValueError):
    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def _text(value: Any) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip()


def _decimal(field: str, value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise Bad("erp.row.not_number", field=field, value=str(value))
    raw = _text(value).replace(",", "").replace("¥", "").replace("￥", "").replace("元", "")
    try:
        number = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise Bad("erp.row.not_number", field=field, value=str(value)[:40]) from None
    if not number.is_finite():
        raise Bad("erp.row.not_number", field=field, value=str(value)[:40])
    if number < 0:
        raise Bad("erp.row.negative", field=field, value=str(value)[:40])
    return number


def money(field: str, value: Any) -> Decimal | None:
    number = _decimal(field, value)
    if number is None:
        return None
    if number > MAX_MONEY:
        raise Bad("erp.row.too_large", field=field, value=str(value)[:40])
    return number.quantize(CENT, rounding=ROUND_HALF_UP)


def count(field: str, value: Any) -> int | None:
    number = _decimal(field, value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise Bad("erp.row.not_whole", field=field, value=str(value)[:40])
    if number > MAX_COUNT:
        raise Bad("erp.row.too_large", field=field, value=str(value)[:40])
    return int(number)


def parse(values: dict[str, Any], where: str, minus: list[Any] | None = None,
          ) -> StockCost | RowRejected:
    """``values`` maps sku, cost, stock, in_transit, safety_stock to raw cells; ``minus``
    are raw counts taken off the stock (locked for orders). ``where`` names the row when it
    has no SKU (``p2#5``: page 2, item 5; ``stock.csv#7``: row 7 of that file)."""
    sku = _text(values.get("sku") or "")
    if not sku:
        return RowRejected(where, "erp.row.no_sku", {"where": where})
    if len(sku) > 64:
        return RowRejected(where, "erp.row.sku_too_long", {"where": where})
    try:
        cost = money("cost", values.get("cost"))
        counts = {name: count(name, values.get(name)) for name in COUNTS}
        taken = sum(count("stock", v) or 0 for v in (minus or []))
    except Bad as bad:
        return RowRejected(sku, bad.key, {"sku": sku, **bad.params})
    if cost is None and all(v is None for v in counts.values()):
        return RowRejected(sku, "erp.row.empty", {"sku": sku})
    if counts["stock"] is not None and taken:
        counts["stock"] = max(0, counts["stock"] - taken)
    return StockCost(sku=sku, cost=cost, **counts)

