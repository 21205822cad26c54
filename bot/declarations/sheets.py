"""Reading a team's spreadsheet: CSV (UTF-8 or GBK) or xlsx, the header row found among the
first rows, every cell parsed by its column's kind, every problem kept with its row."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from bot.core.i18n import t
from bot.core.platforms import PLATFORM_CODES
from bot.core.platforms import PLATFORM_NAMES as PLATFORM_ZH

HEADER_SCAN_ROWS = 10
MAX_MONEY = Decimal("1000000000000")  # Money is NUMERIC(14, 2)
MAX_INT = 2**31
Progress = Callable[[int], None]



@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    kind: str = "text"  # text, money, int, date
    required: bool = False
    max_len: int = 0


PRODUCT_COLUMNS = [
    Column("sku", ("sku", "商品编码", "货号"), required=True, max_len=64),
    Column("barcode", ("barcode", "条码", "条形码"), max_len=64),
    Column("title", ("title", "商品名称", "标题"), required=True),
    Column("brand", ("brand", "品牌"), max_len=128),
    Column("category", ("category", "类目"), max_len=128),
    Column("list_price", ("list_price", "标价", "原价"), "money", required=True),
    Column("cost", ("cost", "成本"), "money"),
    Column("stock", ("stock", "库存"), "int", required=True),
    Column("safety_stock", ("safety_stock", "安全库存"), "int"),
    Column("image", ("image", "主图"), max_len=512),
    *[Column(f"category_{p}", (f"{p}_category", f"category_{p}", f"{PLATFORM_ZH[p]}类目"), max_len=128)
      for p in PLATFORM_CODES],
]
# The header a template shows (English first column name and Chinese first alias).
TEMPLATE_COLUMNS = ["sku", "barcode", "title", "brand", "category", "list_price", "cost", "stock"]
DOCUMENT_COLUMNS = [
    Column("file", ("file", "文件"), required=True, max_len=512),
    Column("kind", ("kind", "类型"), required=True, max_len=64),
    Column("title", ("title", "名称"), required=True, max_len=256),
    Column("issuer", ("issuer", "发证机关", "签发方"), max_len=256),
    Column("brand", ("brand", "品牌"), max_len=128),
    Column("valid_until", ("valid_until", "有效期至", "有效期"), "date", required=True),
]
PRICE_COLUMNS = [
    Column("sku", ("sku", "商品编码"), required=True, max_len=64),
    Column("platform", ("platform", "平台"), required=True, max_len=32),
    Column("price", ("price", "价格", "成交价"), "money", required=True),
    Column("date", ("date", "日期"), "date", required=True),
]
MANIFEST_NAMES = ("documents.xlsx", "documents.csv", "资质清单.xlsx", "资质清单.csv")


@dataclass
class RowError:
    row: int
    column: str
    value: str
    key: str
    params: dict = field(default_factory=dict)

    def message(self, lang: str | None) -> str:
        if not self.row:  # the file as a whole
            return t(self.key, lang, **self.params)
        return t("imp.row_error", lang, row=self.row, column=self.column,
                 value=self.value or "∅", message=t(self.key, lang, **self.params))


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return len({e.row for e in self.errors})

    def summary(self, lang: str | None, skipped: bool = False) -> str:
        if self.errors and not skipped:
            return t("imp.summary_bad", lang, n=len(self.errors))
        extra = t("imp.skipped", lang, n=self.bad_rows) if self.errors else ""
        return t("imp.summary_ok", lang, n=self.imported, created=self.created,
                 updated=self.updated, skipped=extra)


class FileError(Exception):
    """The file as a whole cannot be used (no header, unreadable)."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.key)
        self.error = error


# -- reading ---------------------------------------------------------------------------------

def decode_csv(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileError(RowError(0, "-", "", "imp.bad_encoding"))


def read_rows(path: Path) -> list[tuple[int, list[Any]]]:
    """(row number as the user sees it, cell values) for every row of the first sheet."""
    if not path.exists():
        raise FileError(RowError(0, "-", str(path.name), "imp.no_file", {"path": path.name}))
    if path.suffix.lower() == ".csv":
        text = decode_csv(path.read_bytes())
        return [(i, row) for i, row in enumerate(csv.reader(io.StringIO(text)), 1)]
    try:
        book = load_workbook(path, data_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or not an xlsx
        raise FileError(RowError(0, "-", path.name, "imp.unreadable",
                                 {"why": type(exc).__name__})) from exc
    sheet = book.worksheets[0]
    for merged in list(sheet.merged_cells.ranges):  # fill merged cells from the top-left
        value = sheet.cell(merged.min_row, merged.min_col).value
        sheet.unmerge_cells(str(merged))
        for r in range(merged.min_row, merged.max_row + 1):
            for c in range(merged.min_col, merged.max_col + 1):
                sheet.cell(r, c).value = value
    rows = [(i, list(row)) for i, row in enumerate(sheet.iter_rows(values_only=True), 1)]
    book.close()
    return rows


def _norm(header: Any) -> str:
    return str(header or "").strip().lower().replace(" ", "_").replace("*", "")


def find_header(rows: list[tuple[int, list[Any]]],
                columns: list[Column]) -> tuple[int, dict[str, int]]:
    """The first row (of the first few) naming the required columns; name → index."""
    required = [c for c in columns if c.required]
    for position, (_, cells) in enumerate(rows[:HEADER_SCAN_ROWS]):
        names = [_norm(c) for c in cells]
        mapping: dict[str, int] = {}
        for column in columns:
            for alias in column.aliases:
                if _norm(alias) in names:
                    mapping.setdefault(column.name, names.index(_norm(alias)))
                    break
        if all(c.name in mapping for c in required):
            return position, mapping
    need = ", ".join(c.name for c in required)
    raise FileError(RowError(0, "-", "", "imp.no_header", {"need": need}))


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip() if value is not None else ""


def parse_cell(column: Column, value: Any, tz: ZoneInfo) -> tuple[Any, str | None]:
    """(parsed value, error key or None)."""
    raw = _text(value)
    if raw == "":
        return None, ("imp.required" if column.required else None)
    if column.kind == "text":
        if column.max_len and len(raw) > column.max_len:
            return None, "imp.too_long"
        return raw, None
    if column.kind in ("money", "int"):
        try:
            number = Decimal(str(value) if isinstance(value, int | float) else
                             raw.replace(",", "").replace("¥", "").replace("￥", ""))
        except InvalidOperation:
            return None, "imp.not_number"
        if not number.is_finite():
            return None, "imp.not_number"
        if number < 0:
            return None, "imp.negative"
        if number >= (MAX_INT if column.kind == "int" else MAX_MONEY):
            return None, "imp.too_large"
        if column.kind == "int":
            if number != number.to_integral_value():
                return None, "imp.not_integer"
            return int(number), None
        return number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), None
    if column.kind == "date":
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=tz)
            return moment.astimezone(UTC), None
        if isinstance(value, date):
            return datetime.combine(value, time(23, 59, 59), tz).astimezone(UTC), None
        for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d"):
            try:
                day = datetime.strptime(raw, fmt).date()
            except ValueError:
                continue
            return datetime.combine(day, time(23, 59, 59), tz).astimezone(UTC), None
        return None, "imp.not_date"
    return raw, None


def parse_rows(path: Path, columns: list[Column], tz: ZoneInfo,
               progress: Progress | None = None) -> tuple[list[tuple[int, dict]], ImportReport]:
    """Every data row parsed, plus the report with each bad cell."""
    report = ImportReport()
    try:
        rows = read_rows(path)
        header_at, mapping = find_header(rows, columns)
    except FileError as exc:
        report.errors.append(exc.error)
        return [], report
    good: list[tuple[int, dict]] = []
    for number, cells in rows[header_at + 1:]:
        if progress:
            progress(1)
        if all(_text(c) == "" for c in cells):
            continue  # empty rows are layout, not data
        report.rows += 1
        record: dict[str, Any] = {}
        bad = False
        for column in columns:
            index = mapping.get(column.name)
            value = cells[index] if index is not None and index < len(cells) else None
            parsed, error = parse_cell(column, value, tz)
            if error:
                bad = True
                report.errors.append(RowError(number, column.aliases[0], _text(value)[:40], error,
                                              {"n": column.max_len}))
            record[column.name] = parsed
        if not bad:
            good.append((number, record))
    return good, report


def count_rows(path: Path) -> int:
    try:
        return len(read_rows(path))
    except FileError:
        return 0


