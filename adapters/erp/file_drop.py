"""Cost and stock from CSV/XLSX files an ERP or a person drops in a folder.

Headers may be Chinese or English (``商品编码``/``sku``, ``成本价``/``cost``, ``可用库存``/
``stock``, ``采购在途``/``in_transit``, ``安全库存``/``safety_stock`` …, or ``columns`` in the
config naming a header per field); the header row is found among the first ten rows. CSV in
UTF-8 (with or without BOM) or GBK/GB18030. Files are read oldest first, so when two files
name a SKU the newer one wins; a file already read (same size and modification time) is not
read again. A file that cannot be read, or has no SKU column, is rejected whole; a bad row is
rejected with its reason and the rest of the file still counts.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.erp.rows import parse
from adapters.platforms.textenc import decode
from bot.core.ports import RowRejected, StockCost

log = logging.getLogger(__name__)
MAX_BYTES = 50 * 1024 * 1024
HEADER_ROWS = 10
SUFFIXES = (".csv", ".xlsx", ".xlsm")
ALIASES: dict[str, tuple[str, ...]] = {  # first match wins: the more specific names first
    "sku": ("sku", "sku编码", "商品编码", "商家编码", "规格编码", "sku_id", "skuid", "spec_no",
            "商品sku", "货品编码"),
    "cost": ("cost", "cost_price", "成本价", "成本单价", "成本", "单位成本"),
    "stock": ("stock", "available", "可用库存", "可用数", "可售库存", "库存", "实际库存",
              "qty", "库存数量"),
    "in_transit": ("in_transit", "purchase_qty", "采购在途", "在途库存", "在途数", "在途"),
    "safety_stock": ("safety_stock", "min_qty", "安全库存", "安全库存下限"),
}
_SPACE = re.compile(r"[\s_()（）\-:：]+")


def norm(header: Any) -> str:
    return _SPACE.sub("", str(header or "")).lower()


class UnreadableFile(ValueError):
    pass


def _csv_rows(raw: bytes) -> list[list[Any]]:
    return [list(r) for r in csv.reader(io.StringIO(decode(raw)))]


def _xlsx_rows(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile(f"{type(exc).__name__}: {str(exc)[:100]}") from exc
    try:
        return [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


def read(path: Path) -> list[list[Any]]:
    if path.stat().st_size > MAX_BYTES:
        raise UnreadableFile(f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    if path.suffix.lower() == ".csv":
        return _csv_rows(path.read_bytes())
    return _xlsx_rows(path)


def header_map(rows: list[list[Any]], columns: dict[str, str]) -> tuple[int, dict[str, int]]:
    """(index of the header row, field → column) — the first row among the first ten that
    names a SKU column; (-1, {}) when none does."""
    wanted = {name: ((norm(columns[name]),) if name in columns else tuple(map(norm, names)))
              for name, names in ALIASES.items()}
    for index, cells in enumerate(rows[:HEADER_ROWS]):
        normed = [norm(c) for c in cells]
        found: dict[str, int] = {}
        for name, names in wanted.items():
            for alias in names:
                if alias in normed:
                    found[name] = normed.index(alias)
                    break
        if "sku" in found:
            return index, found
    return -1, {}


@dataclass
class FileCostSource:
    name: str
    folder: str
    columns: dict[str, str] = field(default_factory=dict)  # field → header, overrides
    interval: float = 300.0
    alert_after: int = 1
    validators: dict = field(default_factory=dict)  # file name → "size:mtime" last read
    kind: str = "file_drop"
    rejected: list[RowRejected] = field(default_factory=list)

    def fetch(self) -> list[StockCost]:
        folder = Path(self.folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{self.name}: drop folder {self.folder} does not exist")
        self.rejected = []
        found: dict[str, StockCost] = {}
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
                 and not p.name.startswith((".", "~$"))]
        for path in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name)):
            stat = path.stat()
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
            if self.validators.get(path.name) == signature:
                continue
            try:
                rows = read(path)
            except (UnreadableFile, OSError, UnicodeError, csv.Error) as exc:
                log.warning("cost file unreadable", extra={"source": self.name,
                                                           "file": path.name, "error": str(exc)})
                self.rejected.append(RowRejected(path.name, "erp.file.unreadable", {
                    "file": path.name, "error": str(exc)[:120]}))
                continue
            self.validators[path.name] = signature
            found.update(self._rows(path.name, rows))
        for gone in set(self.validators) - {p.name for p in files}:
            self.validators.pop(gone, None)
        return list(found.values())

    def _rows(self, name: str, rows: list[list[Any]]) -> dict[str, StockCost]:
        start, columns = header_map(rows, self.columns)
        if start < 0:
            self.rejected.append(RowRejected(name, "erp.file.no_sku_column", {"file": name}))
            return {}
        out: dict[str, StockCost] = {}
        for number, cells in enumerate(rows[start + 1:], start + 2):
            if not any(c not in (None, "") for c in cells):
                continue  # an empty row
            where = f"{name}#{number}"
            values = {f: cells[i] if i < len(cells) else None for f, i in columns.items()}
            row = parse(values, where)
            if isinstance(row, RowRejected):
                self.rejected.append(row)
            elif row.sku in out:
                self.rejected.append(RowRejected(f"{row.sku}@{name}", "erp.row.duplicate",
                                                 {"sku": row.sku, "where": where}))
            else:
                out[row.sku] = row
        return out
