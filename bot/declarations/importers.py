"""Importing the data pool from the spreadsheets teams already keep.

Every file is read whole and checked row by row first; a file with any bad row imports
nothing (unless ``skip_bad_rows``), and the good rows go in one transaction, so a file is
never half imported. xlsx (merged header cells are filled from their top-left cell) and
CSV in UTF-8 or GBK; the header names ERPs and marketplaces use (``columns/headers.yaml``
plus a team's own file); every column no field uses is reported. Image sizes and formats
are read from the image files themselves with Pillow. A product's platform item and SKU
ids (天猫商品ID, 京东SKU …) go to ``platform_items``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, select

from bot.declarations import price_history
from bot.declarations.sheets import (
    MANIFEST_NAMES,
    PLATFORM_CODES,
    PLATFORM_ZH,
    PRODUCT_COLUMNS,
    TEMPLATE_COLUMNS,
    ImportReport,
    Progress,
    RowError,
    parse_rows,
)
from storage.db import Database
from storage.models import Product, QualificationDocument
from storage.models_data import PlatformItem, ProductCategory
from storage.types import utcnow

log = logging.getLogger(__name__)
CHUNK = 500  # SKUs looked up per query when writing
__all__ = ["PLATFORM_CODES", "PLATFORM_ZH", "PRODUCT_COLUMNS", "TEMPLATE_COLUMNS"]


# -- products --------------------------------------------------------------------------------

def image_info(path: Path) -> tuple[int, int, str]:
    """Pixel size and format read from the file itself (never from its name)."""
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.width, image.height, (image.format or "").upper()


def _check_products(records: list[tuple[int, dict]], base: Path,
                    report: ImportReport) -> list[tuple[int, dict]]:
    seen: dict[str, int] = {}
    good = []
    sku_header, image_header = report.header("sku"), report.header("image")
    for number, record in records:
        key = record["sku"].lower()
        if key in seen:
            report.errors.append(RowError(number, sku_header, record["sku"], "imp.duplicate",
                                          {"row": seen[key]}))
            continue
        seen[key] = number
        if record.get("image"):
            path = (base / record["image"]).resolve()
            try:
                record["image_info"] = image_info(path)
                record["image"] = str(path)
            except FileNotFoundError:
                report.errors.append(RowError(number, image_header, record["image"], "imp.no_file",
                                              {"path": record["image"]}))
                continue
            except (UnidentifiedImageError, OSError, SyntaxError):
                report.errors.append(RowError(number, image_header, record["image"],
                                              "imp.not_image"))
                continue
        good.append((number, record))
    return good


def _existing(session: Session, model, skus: list[str], per_platform: bool = False) -> dict:
    """Rows of ``model`` for these SKUs, by sku (or (sku, platform)), in a few queries."""
    out: dict = {}
    for start in range(0, len(skus), CHUNK):
        for row in session.exec(select(model).where(model.sku.in_(skus[start:start + CHUNK]))):
            out[(row.sku, row.platform) if per_platform else row.sku] = row
    return out


def _write_products(session: Session, records: list[dict], progress: Progress | None) -> int:
    """Upsert every product (and its platform categories and ids); returns how many were new."""
    skus = [r["sku"] for r in records]
    products = _existing(session, Product, skus)
    categories = _existing(session, ProductCategory, skus, per_platform=True)
    items = _existing(session, PlatformItem, skus, per_platform=True)
    created = 0
    for done, record in enumerate(records, 1):
        product = products.get(record["sku"])
        if product is None:
            created += 1
            product = Product(sku=record["sku"], title=record["title"])
        _fill_product(product, record, product.id is None)
        session.add(product)
        for platform in PLATFORM_CODES:
            _platform_rows(session, record, platform, categories, items)
        if progress and (done % 200 == 0 or done == len(records)):
            progress(done, len(records), "write")
    return created


def _fill_product(product: Product, record: dict, created: bool) -> None:
    product.title = record["title"]
    for name in ("barcode", "brand", "category"):
        if record.get(name) is not None or created:
            setattr(product, name, record.get(name) or "")
    product.list_price = record["list_price"]
    if record.get("cost") is not None:
        product.cost = record["cost"]
    product.stock = record["stock"]
    if record.get("safety_stock") is not None:
        product.safety_stock = record["safety_stock"]
    if record.get("image_info"):
        product.image_path = record["image"]
        product.image_width, product.image_height, product.image_format = record["image_info"]
    product.updated_at = utcnow()


def _platform_rows(session: Session, record: dict, platform: str, categories: dict,
                   items: dict) -> None:
    sku = record["sku"]
    category = record.get(f"category_{platform}")
    if category:
        row = categories.get((sku, platform)) or ProductCategory(sku=sku, platform=platform,
                                                                 category=category)
        row.category = category
        session.add(row)
    item_id, sku_id = record.get(f"item_id_{platform}"), record.get(f"sku_id_{platform}")
    if item_id or sku_id:
        item = items.get((sku, platform)) or PlatformItem(sku=sku, platform=platform)
        item.item_id = item_id or item.item_id
        item.sku_id = sku_id or item.sku_id
        item.updated_at = utcnow()
        session.add(item)


def _commit(db: Database, good: list[tuple[int, dict]], report: ImportReport, skip_bad_rows: bool,
            write: Callable[[Session, dict], bool]) -> ImportReport:
    report.errors.sort(key=lambda e: (e.row, e.column))
    if report.errors and not skip_bad_rows:
        return report  # all or nothing: a file with errors changes nothing
    with db.session() as session:  # one transaction for the whole file
        for _, record in good:
            if write(session, record):
                report.created += 1
            else:
                report.updated += 1
            report.imported += 1
    return report


def import_products(db: Database, path: Path, *, skip_bad_rows: bool = False,
                    timezone: str = "Asia/Shanghai", progress: Progress | None = None) -> ImportReport:
    records, report = parse_rows(path, "products", ZoneInfo(timezone), progress)
    good = _check_products(records, path.parent, report)
    report.errors.sort(key=lambda e: (e.row, e.column))
    if not report.errors or skip_bad_rows:
        with db.session() as session:  # one transaction for the whole file
            report.created = _write_products(session, [r for _, r in good], progress)
        report.imported = len(good)
        report.updated = report.imported - report.created
    log.info("products import", extra={"file": path.name, "rows": report.rows,
                                       "imported": report.imported, "errors": len(report.errors),
                                       "unused_columns": [h for h, _ in report.unused]})
    return report


# -- documents ---------------------------------------------------------------------------------

def find_manifest(directory: Path) -> Path | None:
    for name in MANIFEST_NAMES:
        if (directory / name).exists():
            return directory / name
    return None


def import_documents(db: Database, directory: Path, *, skip_bad_rows: bool = False,
                     timezone: str = "Asia/Shanghai", progress: Progress | None = None) -> ImportReport:
    """A folder of document files plus a manifest (documents.xlsx/csv or 资质清单); an
    expiry of 长期/永久 means the document does not expire."""
    from bot.declarations.rules import doc_kind

    manifest = find_manifest(directory)
    if manifest is None:
        report = ImportReport()
        report.errors.append(RowError(0, "-", directory.name, "imp.no_file",
                                      {"path": " / ".join(MANIFEST_NAMES)}))
        return report
    records, report = parse_rows(manifest, "documents", ZoneInfo(timezone), progress)
    good = []
    for number, record in records:
        path = (directory / record["file"]).resolve()
        if not path.is_file() or directory.resolve() not in path.parents:
            report.errors.append(RowError(number, report.header("file"), record["file"],
                                          "imp.no_file", {"path": record["file"]}))
            continue
        record["file"], record["kind"] = str(path), doc_kind(record["kind"])
        good.append((number, record))

    def write(session: Session, record: dict) -> bool:
        doc = session.exec(select(QualificationDocument).where(
            QualificationDocument.kind == record["kind"],
            QualificationDocument.title == record["title"])).first()
        created = doc is None
        doc = doc or QualificationDocument(kind=record["kind"], title=record["title"])
        doc.issuer, doc.brand = record.get("issuer") or "", record.get("brand") or ""
        doc.file_path, doc.valid_until = record["file"], record["valid_until"]
        session.add(doc)
        return created

    return _commit(db, good, report, skip_bad_rows, write)


# -- prices ------------------------------------------------------------------------------------

def import_prices(db: Database, path: Path, *, skip_bad_rows: bool = False,
                  timezone: str = "Asia/Shanghai", progress: Progress | None = None) -> ImportReport:
    """Past selling prices (sku, platform, price, date) for the "lowest in N days" rule."""
    records, report = parse_rows(path, "prices", ZoneInfo(timezone), progress)
    reverse = {v: k for k, v in PLATFORM_ZH.items()}
    good = []
    for number, record in records:
        code = reverse.get(record["platform"], record["platform"].lower())
        if code not in PLATFORM_CODES:
            report.errors.append(RowError(number, report.header("platform"), record["platform"],
                                          "imp.unknown_platform"))
            continue
        record["platform"] = code
        good.append((number, record))

    def write(session: Session, record: dict) -> bool:
        return price_history.record(session, record["sku"], record["platform"], record["price"],
                                    record["date"], source="import")

    return _commit(db, good, report, skip_bad_rows, write)


def error_lines(report: ImportReport, lang: str | None) -> Iterable[str]:
    for error in report.errors:
        yield error.message(lang)
