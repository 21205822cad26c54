"""A declared campaign's forecast per SKU, the replenishment it needs, and the supply plan for
suppliers (``promopilot export supply-plan <task> --output FILE``, an xlsx).

Per line of the task's latest declaration: the units forecast over the event (low, expected,
high: ``bot.insight.forecast``, capped at the promo stock), and **replenish** = safety stock
+ the high end − stock − in transit, when that is above zero — enough that even the upper end
of the forecast leaves the safety stock in the warehouse. It should arrive before the event
starts (``needed_by``, the day before, team zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlmodel import Session

from bot.core.i18n import t
from bot.core.timefmt import local_date
from bot.insight import forecast
from bot.insight.margin import Deal, deal
from storage.models import Task


@dataclass(frozen=True)
class PlanLine:
    sku: str
    title: str
    promo_stock: int
    low: int
    mid: int
    high: int
    method: str
    history_days: int
    stock: int
    in_transit: int
    safety_stock: int

    @property
    def replenish(self) -> int:
        return max(self.safety_stock + self.high - self.stock - self.in_transit, 0)


def plan(session: Session, task: Task) -> tuple[Deal | None, list[PlanLine]]:
    found = deal(session, task)
    if found is None:
        return None, []
    out = []
    for line in found.lines:
        product = found.products.get(line.sku)
        if product is None or line.result == "rejected":
            continue
        sku = forecast.sku_forecast(session, found.campaign, line.sku)
        price = line.promo_price or product.list_price
        est = forecast.expected_units(session, found, line.sku, price, price,
                                      line.promo_stock) if price else None
        low, mid, high = (est.low, est.mid, est.high) if est else (0, 0, 0)
        method, days = (sku.method, sku.history_days) if sku else ("simple", 0)
        out.append(PlanLine(line.sku, product.title, line.promo_stock, low, mid, high, method,
                            days, product.stock, product.in_transit, product.safety_stock))
    return found, out


def needed_by(found: Deal):
    start = found.campaign.event_start
    return local_date(start - timedelta(days=1)) if start else None


def as_dict(found: Deal, lines: list[PlanLine], lang: str | None = "en") -> dict:
    return {"task_id": found.task.id, "declaration_version": found.declaration.version,
            "platform": found.campaign.platform, "needed_by": (
                needed_by(found).isoformat() if needed_by(found) else None),
            "units": {"low": sum(x.low for x in lines), "mid": sum(x.mid for x in lines),
                      "high": sum(x.high for x in lines)},
            "lines": [{"sku": x.sku, "units": {"low": x.low, "mid": x.mid, "high": x.high},
                       "method": x.method, "method_text": t(f"forecast.method.{x.method}", lang),
                       "history_days": x.history_days, "promo_stock": x.promo_stock,
                       "stock": x.stock, "in_transit": x.in_transit,
                       "safety_stock": x.safety_stock, "replenish": x.replenish}
                      for x in lines]}


COLUMNS = ("sku", "title", "low", "mid", "high", "method", "stock", "in_transit", "safety",
           "replenish", "needed_by")


def write_xlsx(path: Path, found: Deal, lines: list[PlanLine], lang: str) -> Path:
    """The supply plan a supplier reads: one row per SKU, in the reader's language."""
    wb = Workbook()
    ws = wb.active
    ws.title = t("supply.sheet", lang)[:31]
    ws.append([t("supply.title", lang, task_id=found.task.id, title=found.campaign.title[:80])])
    ws["A1"].font = Font(bold=True)
    ws.append([t(f"supply.col.{c}", lang) for c in COLUMNS])
    day = needed_by(found)
    for x in lines:
        ws.append([x.sku, x.title, x.low, x.mid, x.high, t(f"forecast.method.{x.method}", lang),
                   x.stock, x.in_transit, x.safety_stock, x.replenish, day])
        ws.cell(ws.max_row, 1).number_format = "@"
        if day:
            ws.cell(ws.max_row, len(COLUMNS)).number_format = "yyyy-mm-dd"
    for column, width in zip("ABCDEFGHIJK", (14, 28, 8, 8, 8, 18, 8, 8, 8, 10, 12),
                             strict=True):
        ws.column_dimensions[column].width = width
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
