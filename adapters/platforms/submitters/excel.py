"""Excel hand-off: the platform's bulk-registration file, delivered to the claimant in chat.

Used where a platform takes a spreadsheet upload in its back office. The file follows the
platform's column names (configurable); the person uploads it and presses "done, uploaded",
giving the platform's reference.
"""

from __future__ import annotations

import re
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import BaseModel, Field

from adapters.platforms.submitters.base import waiting
from bot.core.ports import SubmissionItem, SubmitReceipt

DEFAULT_COLUMNS = {"sku": "商品编码(SKU)", "list_price": "原价", "promo_price": "活动价",
                   "promo_stock": "活动库存"}
ROOT = Path(__file__).resolve().parents[3]
SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ExcelConfig(BaseModel):
    directory: str = "var/handoff"
    sheet: str = "报名商品"
    columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    upload_url: str = ""  # the back-office page where the file is uploaded


def _cell(value: object) -> object:
    """Never let a cell start a formula (CSV/Excel injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


class ExcelHandoff:
    capability = "assisted_submit"
    channel = "excel"

    def __init__(self, config: ExcelConfig, platform: str) -> None:
        self.config = config
        self.platform = platform

    def path_for(self, idempotency_key: str) -> Path:
        directory = Path(self.config.directory)
        directory = directory if directory.is_absolute() else ROOT / directory
        return directory / f"{SAFE.sub('_', self.platform)}-" \
                                             f"{SAFE.sub('_', idempotency_key)}.xlsx"

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        path = self.path_for(idempotency_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        book = Workbook()
        sheet = book.active
        sheet.title = self.config.sheet[:31]
        sheet.append(["活动ID / campaign", _cell(campaign_external_id)])
        cols = self.config.columns
        sheet.append([cols[k] for k in ("sku", "list_price", "promo_price", "promo_stock")])
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for item in items:
            sheet.append([_cell(item.sku), item.list_price, item.promo_price, item.promo_stock])
        book.save(path)
        return waiting(f"excel:{idempotency_key}", file=str(path), filename=path.name,
                       upload_url=self.config.upload_url, rows=len(items))

    def status(self, reference: str):  # a person reports the outcome
        raise NotImplementedError("an Excel hand-off has no status API")
