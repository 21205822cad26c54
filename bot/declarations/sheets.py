"""Reading a team's spreadsheet: CSV (UTF-8, UTF-8 with BOM, GBK, UTF-16) or xlsx, streamed
row by row (progress from the first row), the header row found among the first rows
(``bot.declarations.headers``), every cell parsed by its column's kind, every problem kept
with its row and the file's own column name, every column no field uses reported.

Cell kinds: ``text``; ``code`` (SKU, barcode, platform ids: a code Excel turned into a number
— ``6.90123E+12``, or more than 15 digits — is refused, its digits are gone); ``money`` and
``int`` (``bot.declarations.numbers``); ``date`` and ``expiry``. A date means the end of that
day in the team's zone whether it was typed as text or is an Excel date cell; a date cell
with a time of day keeps it; an expiry of 长期 / 永久 means none.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries

from bot.core.i18n import LANGS, normalise, t
from bot.core.platforms import PLATFORM_CODES
from bot.core.platforms import PLATFORM_NAMES as PLATFORM_ZH
from bot.declarations import headers as hdr
from bot.declarations.headers import HEADER_SCAN_ROWS, Column, HeaderFileError, HeaderMatch
from bot.declarations.numbers import NumberRefused, to_decimal, to_int

MAX_MONEY = Decimal("999999999999.99")  # Money is NUMERIC(14, 2)
MAX_INT = 2**31 - 1
MAX_EXACT = 10**15  # Excel keeps 15 significant digits of a number
# progress(done, total or None, phase): rows read ("read"), then rows written ("write")
Progress = Callable[..., None]
PRODUCT_COLUMNS = hdr.FIELDS["products"]
DOCUMENT_COLUMNS = hdr.FIELDS["documents"]
PRICE_COLUMNS = hdr.FIELDS["prices"]
TEMPLATE_COLUMNS = ["sku", "barcode", "title", "brand", "category", "list_price", "cost", "stock"]
MANIFEST_NAMES = ("documents.xlsx", "documents.csv", "资质清单.xlsx", "资质清单.csv")
NO_EXPIRY = {"长期", "长期有效", "永久", "永久有效", "无限期", "无期限", "无固定期限", "不限期",
             "permanent", "noexpiry", "never", "none"}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")
MOMENT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S")
_SCIENTIFIC = re.compile(r"\d+(?:\.\d+)?e\+\d+", re.IGNORECASE)
_ROW = re.compile(rb'<(?:\w+:)?row\b[^>]*?\sr="([0-9]+)"')
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
__all__ = ["PLATFORM_CODES", "PLATFORM_ZH", "Column"]


@dataclass
class RowError:
    row: int
    column: str  # the file's own header (标价), not the internal field
    value: str
    key: str
    params: dict = field(default_factory=dict)

    def message(self, lang: str | None) -> str:
        params = {k: v[normalise(lang)] if isinstance(v, dict) else v  # {lang: text}
                  for k, v in self.params.items()}
        if not self.row:  # the file as a whole
            return t(self.key, lang, **params)
        return t("imp.row_error", lang, row=self.row, column=self.column,
                 value=self.value or "∅", message=t(self.key, lang, **params))


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # field → the file's header
    unused: list[tuple[str, str | None]] = field(default_factory=list)  # header, used instead
    unnamed: list[str] = field(default_factory=list)  # column letters with data, no header

    @property
    def bad_rows(self) -> int:
        return len({e.row for e in self.errors})

    def header(self, name: str) -> str:
        return self.headers.get(name, name)

    def summary(self, lang: str | None, skipped: bool = False) -> str:
        if self.errors and not skipped:
            return t("imp.summary_bad", lang, n=len(self.errors))
        extra = t("imp.skipped", lang, n=self.bad_rows) if self.errors else ""
        return t("imp.summary_ok", lang, n=self.imported, created=self.created,
                 updated=self.updated, skipped=extra)

    def notes(self, lang: str | None) -> list[str]:
        """Columns of the file that nothing was read from, so none goes unnoticed."""
        names = [t("imp.unused_same", lang, column=h, used=u) if u else
                 t("imp.unused_name", lang, column=h) for h, u in self.unused]
        names += [t("imp.unnamed", lang, letter=letter) for letter in self.unnamed]
        joined = ("、" if normalise(lang) == "zh-CN" else ", ").join(names)
        return [t("imp.unused", lang, columns=joined)] if names else []


class FileError(Exception):
    """The file as a whole cannot be used (no header, unreadable)."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.key)
        self.error = error


# -- reading ---------------------------------------------------------------------------------

def decode_csv(raw: bytes) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode text"
        return raw.decode("utf-16")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileError(RowError(0, "-", "", "imp.bad_encoding"))


@dataclass
class Rows:
    """A file's rows as ``(row number as the user sees it, cell values)``, read lazily."""

    total: int | None
    rows: Iterator[tuple[int, list[Any]]]


def _csv_rows(path: Path) -> Rows:
    text = decode_csv(path.read_bytes())
    first = text.split("\n", 1)[0]
    delimiter = next((d for d in ("\t", ";") if d in first and "," not in first), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    return Rows(text.count("\n") + (0 if text.endswith("\n") else 1),
                ((i, list(row)) for i, row in enumerate(reader, 1)))


def _xlsx_rows(path: Path) -> Rows:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        xml = book._archive.read(sheet._worksheet_path)  # merged cells: not in read-only mode
    except Exception as exc:  # noqa: BLE001 - corrupt, not an xlsx, an old .xls
        raise FileError(RowError(0, "-", path.name, "imp.unreadable",
                                 {"why": type(exc).__name__})) from exc
    tail = max(xml.rfind(b"sheetData>"), 0)  # <mergeCells> follows the rows
    merged = [range_boundaries(m.decode()) for m in _MERGE.findall(xml, tail)]
    total = sheet.max_row or _last_row(xml)  # the <dimension> tag, or the last <row r="…">

    def rows() -> Iterator[tuple[int, list[Any]]]:
        tops: dict[tuple[int, int], Any] = {}
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
                cells = list(values)
                for min_col, min_row, max_col, max_row in merged:  # fill from the top-left
                    if not min_row <= number <= max_row:
                        continue
                    if number == min_row:
                        tops[(min_col, min_row)] = cells[min_col - 1] if min_col <= len(cells) else None
                    cells += [None] * (max_col - len(cells))
                    for c in range(min_col, max_col + 1):
                        cells[c - 1] = tops.get((min_col, min_row))
                yield number, cells
        finally:
            book.close()

    return Rows(total, rows())


def _last_row(xml: bytes) -> int | None:
    found = _ROW.search(xml, max(xml.rfind(b"<row "), xml.rfind(b":row "), 0))
    return int(found.group(1)) if found else None


def open_rows(path: Path) -> Rows:
    if not path.exists():
        raise FileError(RowError(0, "-", str(path.name), "imp.no_file", {"path": path.name}))
    return _csv_rows(path) if path.suffix.lower() in (".csv", ".txt", ".tsv") else _xlsx_rows(path)


def read_rows(path: Path) -> list[tuple[int, list[Any]]]:
    """Every row at once (for small files and tests)."""
    return list(open_rows(path).rows)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip() if value is not None else ""


# -- cells -----------------------------------------------------------------------------------

def _end_of_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tz).astimezone(UTC)


def _date(value: Any, raw: str, tz: ZoneInfo) -> datetime | None:
    if isinstance(value, datetime):  # an Excel date cell: midnight means "that day"
        if value.time() == time(0, 0):
            return _end_of_day(value.date(), tz)
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, date):
        return _end_of_day(value, tz)
    for fmt in MOMENT_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            continue
    for fmt in DATE_FORMATS:
        try:
            return _end_of_day(datetime.strptime(raw, fmt).date(), tz)
        except ValueError:
            continue
    return None


def _code(value: Any, raw: str) -> tuple[Any, str | None]:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= MAX_EXACT:
        return None, "imp.code_mangled"  # stored as a number: digits past the 15th are gone
    if _SCIENTIFIC.fullmatch(raw):
        return None, "imp.code_mangled"
    return raw, None


def parse_cell(column: Column, value: Any, tz: ZoneInfo) -> tuple[Any, str | None, dict]:
    """(parsed value, error key or None, the error's parameters)."""
    raw = _text(value)
    if raw == "":
        return None, ("imp.required" if column.required else None), {}
    if column.kind in ("text", "code"):
        if column.max_len and len(raw) > column.max_len:
            return None, "imp.too_long", {"n": column.max_len}
        return (raw, None, {}) if column.kind == "text" else (*_code(value, raw), {})
    if column.kind in ("money", "int"):
        try:
            if column.kind == "int":
                return to_int(value, maximum=MAX_INT), None, {}
            return to_decimal(value, round_excess=True, maximum=MAX_MONEY), None, {}
        except NumberRefused as exc:
            return None, exc.key, dict(exc.params)
    if column.kind == "expiry" and hdr.norm(raw) in NO_EXPIRY:
        return None, None, {}  # 长期: no expiry
    moment = _date(value, raw, tz)
    if moment is None:
        return None, ("imp.not_expiry" if column.kind == "expiry" else "imp.not_date"), {}
    return moment, None, {}


# -- a whole file ----------------------------------------------------------------------------

def _no_header(buffered: list[tuple[int, list[Any]]], columns: list[Column]) -> RowError:
    best = max((hdr.match(cells, columns) for _, cells in buffered),
               key=lambda m: len(m.index), default=None)
    lacking = hdr.missing(best, columns) if best else [c for c in columns if c.required]
    names = {lang: "; ".join(hdr.display_names(c, lang) for c in lacking) for lang in LANGS}
    return RowError(0, "-", "", "imp.no_header", {"rows": HEADER_SCAN_ROWS, "need": names})


def _header_at(buffered: list[tuple[int, list[Any]]], columns: list[Column]) -> HeaderMatch | None:
    """The last row read as the header, alone or under the row above it (a two-row header
    whose group labels are not merged: 价格 above 吊牌价 / 成本价, 商品编码 above nothing)."""
    cells = buffered[-1][1]
    tries = [cells]
    if len(buffered) > 1:
        above = buffered[-2][1]
        width = max(len(above), len(cells))
        tries.append([b if _text(b) else a for a, b in zip(above + [None] * (width - len(above)),
                                                            cells + [None] * (width - len(cells)),
                                                            strict=True)])
    for candidate in (hdr.match(row, columns) for row in tries):
        if not hdr.missing(candidate, columns):
            return candidate
    return None


def parse_rows(path: Path, kind: str, tz: ZoneInfo, progress: Progress | None = None,
               ) -> tuple[list[tuple[int, dict]], ImportReport]:
    """Every data row of ``path`` parsed as a ``kind`` file, plus the report (bad cells by row
    and the file's header, unused columns)."""
    report = ImportReport()
    try:
        columns = hdr.columns_for(kind)
        source = open_rows(path)
    except FileError as exc:
        report.errors.append(exc.error)
        return [], report
    except HeaderFileError as exc:
        report.errors.append(RowError(0, "-", "", "imp.bad_headers", {"file": exc.file, "why": exc.why}))
        return [], report
    good: list[tuple[int, dict]] = []
    buffered: list[tuple[int, list[Any]]] = []
    found: HeaderMatch | None = None
    unnamed: set[int] = set()
    done = 0
    try:
        for number, cells in source.rows:
            done += 1
            if progress:
                progress(done, source.total, "read")
            if found is None:
                buffered.append((number, cells))
                candidate = _header_at(buffered, columns)
                if candidate is not None:
                    found, candidate.row = candidate, number
                elif len(buffered) >= HEADER_SCAN_ROWS:
                    break
                continue
            if all(_text(c) == "" for c in cells):
                continue  # empty rows are layout, not data
            unnamed.update(i for i, c in enumerate(cells)
                           if i not in found.named and _text(c) != "")
            report.rows += 1
            record, bad = _record(number, cells, columns, found, tz, report)
            if not bad:
                good.append((number, record))
    except FileError as exc:
        report.errors.append(exc.error)
        return [], report
    if found is None:
        report.errors.append(_no_header(buffered, columns))
        return [], report
    report.headers, report.unused = found.headers, found.unused
    report.unnamed = [get_column_letter(i + 1) for i in sorted(unnamed)]
    return good, report


def _record(number: int, cells: list[Any], columns: list[Column], found: HeaderMatch,
            tz: ZoneInfo, report: ImportReport) -> tuple[dict, bool]:
    record: dict[str, Any] = {}
    bad = False
    for column in columns:
        index = found.index.get(column.name)
        value = cells[index] if index is not None and index < len(cells) else None
        parsed, error, params = parse_cell(column, value, tz)
        if error:
            bad = True
            report.errors.append(RowError(number, found.headers.get(column.name, column.name),
                                          _text(value)[:40], error, params))
        record[column.name] = parsed
    return record, bad
