"""Importing and exporting the data pool with real xlsx/csv files: UTF-8 and GBK, English
and Chinese headers, merged header cells, empty rows, duplicate SKUs, negative prices,
text in number cells — clear row-level errors and never half a file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.declarations import exporters, importers
from storage.models import Product, QualificationDocument
from storage.models_data import PriceRecord, ProductCategory
from tests.fakes.data_pool import image_file

EN = ["sku", "barcode", "title", "brand", "category", "list_price", "cost", "stock"]
ZH = ["商品编码", "条码", "商品名称", "品牌", "类目", "标价", "成本", "库存"]
GOOD_ROWS = [
    ["A-001", "6901000000011", "补水面膜 10片", "水润坊", "美妆个护", "129.00", "38.5", "800"],
    ["A-002", "6901000000028", "洁面乳 120ml", "水润坊", "美妆个护", "89", "21.50", "450"],
    ["B-101", "6902000000101", "坚果礼盒 750g", "果然好", "食品", "168.00", "79", "1200"],
]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def products(db) -> dict[str, Product]:
    with db.session() as s:
        return {p.sku: p for p in s.exec(select(Product))}


def test_xlsx_with_merged_headers_empty_rows_and_chinese_names(db, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["商品资料导入表"])  # a title row merged across the table
    sheet.merge_cells("A1:H1")
    sheet.append(["SKU", "条码", "商品名称", "品牌", "类目", "价格", None, "库存"])
    sheet.append([None, None, None, None, None, "标价", "成本", None])  # two-row header
    for col in "ABCDEH":
        sheet.merge_cells(f"{col}2:{col}3")
    sheet.merge_cells("F2:G2")
    sheet.append(["A-001", 6901000000011, "补水面膜 10片", "水润坊", "美妆个护", 129, 38.5, 800])
    sheet.append([None] * 8)  # an empty row in the middle
    sheet.append(["A-002", "6901000000028", "洁面乳 120ml", "水润坊", "美妆个护", "89.00", "21.5", 450])
    book.save(tmp_path / "pool.xlsx")

    report = importers.import_products(db, tmp_path / "pool.xlsx")
    assert report.errors == [] and (report.created, report.updated) == (2, 0)
    got = products(db)
    assert got["A-001"].barcode == "6901000000011"  # a number cell, kept as the code it is
    assert got["A-001"].list_price == Decimal("129.00") and got["A-001"].cost == Decimal("38.50")
    assert got["A-002"].stock == 450 and got["A-002"].title == "洁面乳 120ml"


@pytest.mark.parametrize("encoding, header", [("utf-8-sig", EN), ("utf-8", ZH), ("gbk", ZH),
                                              ("gbk", EN)])
def test_csv_in_utf8_and_gbk_with_english_or_chinese_headers(db, tmp_path, encoding, header):
    path = write_csv(tmp_path / "pool.csv", header, GOOD_ROWS, encoding)
    report = importers.import_products(db, path)
    assert report.errors == [] and report.imported == 3
    got = products(db)
    assert got["B-101"].title == "坚果礼盒 750g" and got["B-101"].brand == "果然好"
    assert got["A-001"].cost == Decimal("38.50")
    assert importers.import_products(db, path).updated == 3  # same file again updates


def test_a_file_with_errors_imports_nothing_and_names_every_bad_cell(db, tmp_path):
    rows = [
        GOOD_ROWS[0],
        ["A-002", "", "洁面乳", "", "美妆个护", "-5", "1", "10"],  # negative price
        ["A-003", "", "精华液", "", "美妆个护", "二十九", "1", "10"],  # text in a number cell
        ["A-001", "", "重复的面膜", "", "美妆个护", "99", "1", "10"],  # duplicate SKU
        ["A-004", "", "", "", "美妆个护", "10", "1", "1.5"],  # no title, fractional stock
        GOOD_ROWS[2],
    ]
    path = write_csv(tmp_path / "bad.csv", EN, rows, "gbk")
    report = importers.import_products(db, path)
    assert products(db) == {}  # nothing, not even the good rows
    found = {(e.row, e.column, e.key) for e in report.errors}
    assert found == {(3, "list_price", "num.negative"), (4, "list_price", "num.not_number"),
                     (5, "sku", "imp.duplicate"), (6, "title", "imp.required"),
                     (6, "stock", "num.not_integer")}
    zh = [e.message("zh-CN") for e in report.errors]
    assert "第 3 行「list_price」=-5:不能为负数" in zh  # the file's own header, here English
    assert "row 5, sku = A-001: duplicate of row 2" in [e.message("en") for e in report.errors]
    assert "nothing was imported" in report.summary("en")

    skipped = importers.import_products(db, path, skip_bad_rows=True)
    assert sorted(products(db)) == ["A-001", "B-101"] and skipped.imported == 2
    assert "skipped 4 bad rows" in skipped.summary("en", skipped=True)


def test_image_size_and_format_are_read_from_the_file(db, tmp_path):
    image_file(tmp_path / "a.png", (800, 800), "JPEG")  # a JPEG whatever its name says
    image_file(tmp_path / "b.jpg", (750, 1000), "PNG")
    (tmp_path / "c.jpg").write_bytes(b"not an image")
    header = [*EN, "image", "tmall_category"]
    rows = [[*GOOD_ROWS[0], "a.png", "美妆/面膜"], [*GOOD_ROWS[1], "b.jpg", ""]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", header, rows, "utf-8"))
    assert report.errors == []
    got = products(db)
    assert (got["A-001"].image_width, got["A-001"].image_height, got["A-001"].image_format) == \
        (800, 800, "JPEG")
    assert (got["A-002"].image_width, got["A-002"].image_height, got["A-002"].image_format) == \
        (750, 1000, "PNG")
    with db.session() as s:
        assert s.exec(select(ProductCategory.category).where(ProductCategory.sku == "A-001")).one() \
            == "美妆/面膜"
    bad = [[*GOOD_ROWS[2], "c.jpg", ""], [*GOOD_ROWS[2][:1], *GOOD_ROWS[2][1:], "missing.jpg", ""]]
    bad[1][0] = "B-102"
    report = importers.import_products(db, write_csv(tmp_path / "q.csv", header, bad, "utf-8"))
    assert {(e.row, e.key) for e in report.errors} == {(2, "imp.not_image"), (3, "imp.no_file")}


def test_no_header_and_unreadable_files_are_refused_clearly(db, tmp_path):
    path = write_csv(tmp_path / "x.csv", ["foo", "bar"], [["1", "2"]], "utf-8")
    report = importers.import_products(db, path)
    assert report.errors[0].key == "imp.no_header" and "sku" in report.errors[0].message("en")
    (tmp_path / "y.xlsx").write_bytes(b"PK\x03\x04 broken")
    assert importers.import_products(db, tmp_path / "y.xlsx").errors[0].key == "imp.unreadable"


@pytest.mark.parametrize("suffix, lang, encoding", [(".xlsx", "en", "utf-8"), (".xlsx", "zh-CN", "utf-8"),
                                                    (".csv", "zh-CN", "gbk"), (".csv", "en", "utf-8")])
def test_export_writes_the_import_format(db, tmp_path, suffix, lang, encoding):
    importers.import_products(db, write_csv(tmp_path / "in.csv", EN, GOOD_ROWS, "utf-8"))
    before = {sku: (p.title, p.list_price, p.cost, p.stock, p.brand) for sku, p in products(db).items()}
    out = tmp_path / f"out{suffix}"
    with db.session() as s:
        assert exporters.export_products(s, out, lang, encoding) == 3
    with db.session() as s:
        for p in s.exec(select(Product)):
            s.delete(p)
    report = importers.import_products(db, out)
    assert report.errors == [] and report.created == 3
    after = {sku: (p.title, p.list_price, p.cost, p.stock, p.brand) for sku, p in products(db).items()}
    assert after == before


def test_template_has_the_header_only(tmp_path):
    exporters.write_template(tmp_path / "t.xlsx", "zh-CN")
    sheet = load_workbook(tmp_path / "t.xlsx").active
    assert [c.value for c in sheet[1]][:8] == [*ZH[:6], "成本价", "库存"] and sheet.max_row == 1
    assert "天猫商品ID" in [c.value for c in sheet[1]]  # where a team puts the platform ids
    exporters.write_template(tmp_path / "t.csv", "en")
    assert (tmp_path / "t.csv").read_text(encoding="utf-8-sig").splitlines()[0].startswith(",".join(EN))


def test_documents_folder_with_manifest(db, tmp_path):
    (tmp_path / "licence.pdf").write_bytes(b"%PDF-1.4 licence")
    (tmp_path / "auth.pdf").write_bytes(b"%PDF-1.4 auth")
    rows = [["licence.pdf", "营业执照", "营业执照(新)", "市场监管局", "", "2028-06-30"],
            ["auth.pdf", "brand_authorisation", "光研授权书", "光研", "光研", "2027/12/31"]]
    write_csv(tmp_path / "documents.csv", ["file", "kind", "title", "issuer", "brand", "valid_until"],
              rows, "gbk")
    report = importers.import_documents(db, tmp_path)
    assert report.errors == [] and report.created == 2
    with db.session() as s:
        docs = {d.title: d for d in s.exec(select(QualificationDocument))}
    assert docs["营业执照(新)"].kind == "business_licence"
    assert docs["光研授权书"].valid_until.date().isoformat() in ("2027-12-31", "2027-12-30")
    assert Path(docs["光研授权书"].file_path).read_bytes() == b"%PDF-1.4 auth"

    rows.append(["../etc/passwd", "营业执照", "越界", "", "", "2028-01-01"])
    rows.append(["auth.pdf", "营业执照", "日期错", "", "", "明年"])
    zh_header = ["文件", "类型", "名称", "签发方", "品牌", "有效期至"]
    write_csv(tmp_path / "documents.csv", zh_header, rows, "utf-8")
    report = importers.import_documents(db, tmp_path)
    assert {(e.row, e.key) for e in report.errors} == {(4, "imp.no_file"), (5, "imp.not_expiry")}
    assert "第 5 行「有效期至」=明年" in report.errors[-1].message("zh-CN")
    assert report.imported == 0


def test_price_history_import(db, tmp_path):
    path = write_csv(tmp_path / "prices.csv", ["sku", "平台", "价格", "日期"],
                     [["A-001", "天猫", "99.00", "2026-11-01"], ["A-001", "jd", "95", "2026-11-02"],
                      ["A-001", "ebay", "1", "2026-11-02"]], "utf-8")
    report = importers.import_prices(db, path)
    assert [(e.row, e.key) for e in report.errors] == [(4, "imp.unknown_platform")]
    assert importers.import_prices(db, path, skip_bad_rows=True).imported == 2
    with db.session() as s:
        assert {(r.platform, r.price) for r in s.exec(select(PriceRecord))} == {
            ("tmall", Decimal("99.00")), ("jd", Decimal("95.00"))}


def test_cli_import_progress_errors_and_exit_codes(db, tmp_path, monkeypatch):
    from bot.cli.main import app
    from bot.core.settings import get_settings

    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    monkeypatch.setenv("PROMOPILOT_LANGUAGE", "en")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        bad = write_csv(tmp_path / "bad.csv", EN, [GOOD_ROWS[0], ["A-9", "", "x", "", "", "-1", "", "1"]],
                        "gbk")
        result = runner.invoke(app, ["import", "products", str(bad)])
        assert result.exit_code == 1, result.output
        assert "row 3, list_price = -1: cannot be negative" in result.output
        assert products(db) == {}
        result = runner.invoke(app, ["import", "products", str(bad), "--skip-bad-rows"])
        assert result.exit_code == 0 and "Imported 1 rows" in result.output
        template = tmp_path / "template.xlsx"
        assert runner.invoke(app, ["import", "products", "--template", str(template)]).exit_code == 0
        assert load_workbook(template).active.max_row == 1
        out = tmp_path / "export.csv"
        assert runner.invoke(app, ["export", "products", str(out), "--encoding", "gbk"]).exit_code == 0
        assert "A-001" in out.read_bytes().decode("gbk")
    finally:
        get_settings.cache_clear()
