"""Importing the data pool from the spreadsheets teams already keep.

Every file is read whole and checked row by row first; a file with any bad row imports
nothing (unless ``skip_bad_rows``), and the good rows go in one transaction, so a file is
never half imported. xlsx (merged header cells are filled from their top-left cell) and
CSV in UTF-8 or GBK; headers in English or Chinese. Image sizes and formats are read from
the image files themselves with Pillow.
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
    DOCUMENT_COLUMNS,
    MANIFEST_NAMES,
    PLATFORM_CODES,
    PLATFORM_ZH,
    PRICE_COLUMNS,
    PRODUCT_COLUMNS,
    TEMPLATE_COLUMNS,
    ImportReport,
    Progress,
    RowError,
    count_rows,
    parse_rows,
)
from storage.db import Database
from storage.models import Product, QualificationDocument
from storage.models_data import ProductCategory
from storage.types import utcnow

log = logging.getLogger(__name__)
__all__ = ["count_rows", "PLATFORM_CODES", "PLATFORM_ZH", "PRODUCT_COLUMNS", "TEMPLATE_COLUMNS"]


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
    for number, record in records:
        key = record["sku"].lower()
        if key in seen:
            report.errors.append(RowError(number, "sku", record["sku"], "imp.duplicate",
                                          {"row": seen[key]}))
            continue
        seen[key] = number
        if record.get("image"):
            path = (base / record["image"]).resolve()
            try:
                record["image_info"] = image_info(path)
                record["image"] = str(path)
            except FileNotFoundError:
                report.errors.append(RowError(number, "image", record["image"], "imp.no_file",
                                              {"path": record["image"]}))
                continue
            except (UnidentifiedImageError, OSError, SyntaxError):
                report.errors.append(RowError(number, "image", record["image"], "imp.not_image"))
                continue
        good.append((number, record))
    return good


def _upsert_product(session: Session, record: dict) -> bool:
    product = session.exec(select(Product).where(Product.sku == record["sku"])).first()
    created = product is None
    product = product or Product(sku=record["sku"], title=record["title"])
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
    session.add(product)
    for platform in PLATFORM_CODES:
        category = record.get(f"category_{platform}")
        if not category:
            continue
        row = session.exec(select(ProductCategory).where(
            ProductCategory.sku == record["sku"], ProductCategory.platform == platform)).first()
        row = row or ProductCategory(sku=record["sku"], platform=platform, category=category)
        row.category = category
        session.add(row)
    return created


def _commit(db: Database, good: list[tuple[int, dict]], report: ImportReport, skip_bad_rows: bool,
            write: Callable[[Session, dict], bool]) -> ImportReport:
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
    records, report = parse_rows(path, PRODUCT_COLUMNS, ZoneInfo(timezone), progress)
    good = _check_products(records, path.parent, report)
    report.errors.sort(key=lambda e: (e.row, e.column))
    result = _commit(db, good, report, skip_bad_rows, _upsert_product)
    log.info("products import", extra={"file": path.name, "rows": report.rows,
                                       "imported": report.imported, "errors": len(report.errors)})
    return result


# -- documents ---------------------------------------------------------------------------------

def find_manifest(directory: Path) -> Path | None:
    for name in MANIFEST_NAMES:
        if (directory / name).exists():
            return directory / name
    return None


def import_documents(db: Database, directory: Path, *, skip_bad_rows: bool = False,
                     timezone: str = "Asia/Shanghai", progress: Progress | None = None) -> ImportReport:
    """A folder of document files plus a manifest (documents.xlsx/csv or 资质清单)."""
    from bot.declarations.rules import doc_kind

    manifest = find_manifest(directory)
    if manifest is None:
        report = ImportReport()
        report.errors.append(RowError(0, "-", directory.name, "imp.no_file",
                                      {"path": " / ".join(MANIFEST_NAMES)}))
        return report
    records, report = parse_rows(manifest, DOCUMENT_COLUMNS, ZoneInfo(timezone), progress)
    good = []
    for number, record in records:
        path = (directory / record["file"]).resolve()
        if not path.is_file() or directory.resolve() not in path.parents:
            report.errors.append(RowError(number, "file", record["file"], "imp.no_file",
                                          {"path": record["file"]}))
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
    records, report = parse_rows(path, PRICE_COLUMNS, ZoneInfo(timezone), progress)
    reverse = {v: k for k, v in PLATFORM_ZH.items()}
    good = []
    for number, record in records:
        code = reverse.get(record["platform"], record["platform"].lower())
        if code not in PLATFORM_CODES:
            report.errors.append(RowError(number, "platform", record["platform"],
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
