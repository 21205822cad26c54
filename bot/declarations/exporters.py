"""Files out: the product pool (xlsx/csv, the import's own format) and per-platform
bulk-registration workbooks generated from a declaration, bundled with its documents.

A platform's workbook layout is data: ``columns/<platform>.yaml`` names each column's
header and a sandboxed expression for its value, so when a marketplace changes its file a
team edits the map, not the code.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlmodel import Session, select

from bot.core import templating, timefmt
from bot.core.errors import Invalid, NotFound
from bot.core.i18n import normalise, t
from bot.declarations import compliance
from bot.declarations.numbers import NumberRefused, to_int
from bot.declarations.sheets import PLATFORM_CODES, PLATFORM_ZH, PRODUCT_COLUMNS
from storage.models import Campaign, Declaration, Product, QualificationDocument, Task
from storage.models_data import PlatformItem, ProductCategory
from storage.queries import declaration_lines, latest_declaration

log = logging.getLogger(__name__)
COLUMNS_DIR = Path(__file__).resolve().parents[2] / "columns"
EXPORT_COLUMNS = ["sku", "barcode", "title", "brand", "category", "list_price", "cost", "stock",
                  "safety_stock", "image", *[f"category_{p}" for p in PLATFORM_CODES],
                  *[f"{kind}_{p}" for p in PLATFORM_CODES for kind in ("item_id", "sku_id")]]
ITEM_HEADERS = {"tmall": ("天猫商品ID", "天猫SKU ID"), "jd": ("京东SKU", "京东规格ID"),
                "douyin": ("抖音商品ID", "抖音SKU ID"), "pdd": ("拼多多商品ID", "拼多多SKU ID")}
ZH_HEADERS = {"sku": "商品编码", "barcode": "条码", "title": "商品名称", "brand": "品牌",
              "category": "类目", "list_price": "标价", "cost": "成本价", "stock": "库存",
              "safety_stock": "安全库存", "image": "主图",
              **{f"category_{p}": f"{PLATFORM_ZH[p]}类目" for p in PLATFORM_CODES},
              **{f"item_id_{p}": ITEM_HEADERS[p][0] for p in PLATFORM_CODES},
              **{f"sku_id_{p}": ITEM_HEADERS[p][1] for p in PLATFORM_CODES}}
EN_HEADERS = {**{c: c for c in EXPORT_COLUMNS},
              **{f"category_{p}": f"{p}_category" for p in PLATFORM_CODES},
              **{f"{kind}_{p}": f"{p}_{kind}" for p in PLATFORM_CODES for kind in ("item_id", "sku_id")}}
LIMIT_KEYS = ("per_person_limit", "limit_per_person", "每人限购", "限购")
DATE_FORMAT = "yyyy-mm-dd"
MONEY_HEADERS = {"list_price", "cost", "标价", "成本价"}



def headers(lang: str | None, columns: list[str] = EXPORT_COLUMNS) -> list[str]:
    return [ZH_HEADERS[c] if normalise(lang) == "zh-CN" else EN_HEADERS[c] for c in columns]


def _cell(value: Any) -> Any:
    return "" if value is None else value


def product_rows(session: Session) -> list[list[Any]]:
    cats: dict[tuple[str, str], str] = {
        (c.sku, c.platform): c.category for c in session.exec(select(ProductCategory))}
    items = {(i.sku, i.platform): i for i in session.exec(select(PlatformItem))}
    rows = []
    for p in session.exec(select(Product).order_by(Product.sku)):
        ids = [getattr(items.get((p.sku, code)), kind, "") or ""
               for code in PLATFORM_CODES for kind in ("item_id", "sku_id")]
        rows.append([p.sku, p.barcode, p.title, p.brand, p.category, p.list_price, p.cost, p.stock,
                     p.safety_stock, p.image_path,
                     *[cats.get((p.sku, code), "") for code in PLATFORM_CODES], *ids])
    return rows


def write_table(path: Path, header: list[str], rows: list[list[Any]], encoding: str = "utf-8") -> None:
    """xlsx or csv by the file's suffix; csv in UTF-8 (with BOM, for Excel) or GBK."""
    if path.suffix.lower() == ".csv":
        enc = "gb18030" if encoding.lower() in ("gbk", "gb2312", "gb18030") else "utf-8-sig"
        with path.open("w", encoding=enc, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[_cell(v) for v in row] for row in rows])
        return
    book = Workbook()
    sheet = book.active
    sheet.title = "products"
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell(v) for v in row])
    for index, name in enumerate(header, 1):
        if name in MONEY_HEADERS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "0.00"
        elif name not in ("stock", "safety_stock", "库存", "安全库存"):  # codes stay text in Excel
            for (cell,) in sheet.iter_rows(min_row=1, min_col=index, max_col=index):
                cell.number_format = "@"
    book.save(path)


def export_products(session: Session, path: Path, lang: str = "en", encoding: str = "utf-8") -> int:
    rows = product_rows(session)
    write_table(path, headers(lang), rows, encoding)
    return len(rows)


def write_template(path: Path, lang: str = "zh-CN", encoding: str = "utf-8") -> None:
    """An empty import file: the header row only, in English or Chinese."""
    wanted = [c.name for c in PRODUCT_COLUMNS if c.name in ZH_HEADERS and
              not c.name.startswith("category_")]
    write_table(path, headers(lang, wanted), [], encoding)


# -- platform bulk-registration workbook -------------------------------------------------------

@dataclass
class ColumnMap:
    platform: str
    sheet: str
    columns: list[dict]
    documents_sheet: str | None = None


def column_map(platform: str, directory: Path | None = None) -> ColumnMap:
    path = (directory or COLUMNS_DIR) / f"{platform}.yaml"
    if not path.exists():
        raise Invalid("exp.bad_map", platform=platform, why=f"{path.name} missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise Invalid("exp.bad_map", platform=platform, why=str(exc)[:200]) from exc
    columns = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(columns, list) or not all(
            isinstance(c, dict) and c.get("header") and "value" in c for c in columns):
        raise Invalid("exp.bad_map", platform=platform, why="columns: [{header, value}, …]")
    for column in columns:
        column["_expr"] = templating.expression(str(column["value"]))
    return ColumnMap(platform, str(data.get("sheet") or platform)[:31], columns,
                     data.get("documents_sheet"))


def _cell_value(value: Any) -> Any:
    """What a spreadsheet cell can hold (numbers stay numbers, Decimal kept exact, a day is a
    date cell; a time is the team's wall clock, as the platform's back office reads it,
    never UTC)."""
    if value is None or isinstance(value, str | int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return timefmt.local(value)
    if isinstance(value, date):
        return value
    return str(value)


def per_person_limit(campaign: Campaign | None) -> int | None:
    """每人限购 from the campaign's requirements (``per_person_limit``); None = not limited."""
    requirements = (campaign.requirements if campaign else None) or {}
    raw = next((requirements[k] for k in LIMIT_KEYS if requirements.get(k) not in (None, "")), None)
    if raw is None:
        return None
    try:
        return to_int(raw, positive=True)
    except NumberRefused:
        log.warning("per-person limit not a number", extra={"campaign_id": campaign.id if campaign
                                                             else None, "value": str(raw)[:40]})
        return None


def context_for(session: Session, task_id: int, version: int | None = None) -> dict:
    """What a file or text about a task's declaration (its current one, or ``version``) needs."""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound("err.not_found", task_id=task_id)
    declaration = latest_declaration(session, task_id) if version is None else session.exec(
        select(Declaration).where(Declaration.task_id == task_id,
                                  Declaration.version == version)).first()
    if declaration is None:
        raise Invalid("exp.no_declaration", task_id=task_id)
    campaign = session.get(Campaign, task.campaign_id)
    lines = declaration_lines(session, declaration.id or 0)
    skus = [line.sku for line in lines]
    products = {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(skus)))}
    items = {i.sku: i for i in session.exec(select(PlatformItem).where(
        PlatformItem.sku.in_(skus), PlatformItem.platform == (campaign.platform if campaign else "")))}
    documents = [d for d in (session.get(QualificationDocument, int(i))
                             for i in declaration.documents or []) if d]
    return {"task": task, "campaign": campaign, "declaration": declaration, "lines": lines,
            "products": products, "items": items, "documents": documents,
            "per_person_limit": per_person_limit(campaign)}


def _uses_items(mapping: ColumnMap) -> bool:
    return any("item." in str(c["value"]) for c in mapping.columns)


def missing_item_ids(ctx: dict) -> list[str]:
    """SKUs of the declaration without the platform's item id in the data pool."""
    return [line.sku for line in ctx["lines"]
            if not getattr(ctx["items"].get(line.sku), "item_id", "")]


def _put(sheet, row: list[Any], formats: list[str | None]) -> None:
    """Append a row; a text that looks like a formula stays text, a day is a date cell."""
    sheet.append(row)
    for value, fmt, cell in zip(row, formats, sheet[sheet.max_row], strict=True):
        if isinstance(value, str) and value.startswith("="):
            cell.data_type = "s"  # openpyxl would store "=…" as a formula
        if fmt:
            cell.number_format = fmt
        elif isinstance(value, date):
            cell.number_format = DATE_FORMAT


def write_workbook(ctx: dict, lang: str = "zh-CN") -> bytes:
    """The platform's bulk-registration xlsx from a declaration context (``context_for``): the
    one writer behind the ``excel`` download, the bundle and the Excel hand-off."""
    campaign = ctx["campaign"]
    mapping = column_map(campaign.platform)
    book = Workbook()
    sheet = book.active
    sheet.title = mapping.sheet
    sheet.append([str(c["header"]) for c in mapping.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    formats = [str(c["number_format"]) if c.get("number_format") else None for c in mapping.columns]
    for line in ctx["lines"]:
        product = ctx["products"].get(line.sku) or Product(sku=line.sku, title="")
        item = ctx["items"].get(line.sku) or PlatformItem(sku=line.sku, platform=campaign.platform)
        _put(sheet, [_cell_value(c["_expr"](
            line=line, product=product, item=item, campaign=campaign,
            declaration=ctx["declaration"], task=ctx["task"],
            per_person_limit=ctx["per_person_limit"])) for c in mapping.columns], formats)
    if mapping.documents_sheet:
        docs = book.create_sheet(str(mapping.documents_sheet)[:31])
        docs.append([t(f"exp.doc_sheet.{key}", lang)
                     for key in ("title", "kind", "issuer", "valid_until", "file")])
        for d in ctx["documents"]:
            kind = t(f"doc.{d.kind}", lang)
            _put(docs, [d.title, d.kind if kind == f"doc.{d.kind}" else kind, d.issuer,
                        timefmt.local_date(d.valid_until) if d.valid_until
                        else t("exp.no_expiry", lang),
                        Path(d.file_path).name if d.file_path else ""], [None] * 5)
    if _uses_items(mapping) and (missing := missing_item_ids(ctx)):
        log.warning("bulk file without platform item ids",
                    extra={"task_id": ctx["task"].id, "platform": campaign.platform,
                           "skus": missing[:20], "missing": len(missing)})
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def workbook_bytes(session: Session, task_id: int, lang: str = "zh-CN",
                   version: int | None = None) -> tuple[str, bytes]:
    """The platform's bulk-registration xlsx for the task's current declaration (or
    ``version``) and its file name."""
    ctx = context_for(session, task_id, version)
    name = f"{ctx['campaign'].platform}-task{task_id}-v{ctx['declaration'].version}.xlsx"
    return name, write_workbook(ctx, lang)


def declaration_text(session: Session, task_id: int, lang: str = "zh-CN",
                     violations: list[compliance.Violation] | None = None) -> str:
    """The declaration summary from ``templates/declaration.<lang>.j2``."""
    ctx = context_for(session, task_id)
    if violations is None:
        violations = compliance.errors(compliance.check(session, ctx["task"], ctx["declaration"]))
    totals = {"price": sum((line.promo_price or Decimal(0) for line in ctx["lines"]), Decimal(0)),
              "stock": sum(line.promo_stock for line in ctx["lines"])}
    return templating.render("declaration", lang, totals=totals, violations=violations, **ctx)


def bundle_bytes(session: Session, task_id: int, lang: str = "zh-CN") -> tuple[str, bytes]:
    """A zip: the bulk-registration xlsx, every attached document file, and a note."""
    name, workbook = workbook_bytes(session, task_id, lang)
    ctx = context_for(session, task_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, workbook)
        readme = declaration_text(session, task_id, lang)
        if _uses_items(column_map(ctx["campaign"].platform)) and (missing := missing_item_ids(ctx)):
            readme += "\n" + t("exp.missing_ids", lang, n=len(missing), skus="、".join(missing[:20]),
                               platform=ctx["campaign"].platform)
        archive.writestr("README.txt", readme + "\n")
        for doc in ctx["documents"]:
            path = Path(doc.file_path) if doc.file_path else None
            if path and path.is_file():
                archive.write(path, f"documents/{doc.id}-{path.name}")
            else:
                log.warning("document file missing from bundle",
                            extra={"document_id": doc.id, "task_id": task_id})
    return name.replace(".xlsx", ".zip"), buffer.getvalue()
