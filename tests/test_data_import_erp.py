"""Importing a real team's ERP exports: the header names ERPs and marketplaces use, a team's
own header file, every unused column reported, codes Excel turned into numbers refused with
how to fix the sheet, one meaning for a date (text or Excel date cell) and 长期 for no expiry,
errors naming the file's own header, platform item ids, and progress from the first row."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.declarations import checks, importers, sheets
from bot.declarations.cli import ProgressLine, duration
from storage.models import Product, QualificationDocument
from storage.models_data import PlatformItem

SHANGHAI = ZoneInfo("Asia/Shanghai")
END_OF_JUNE_30 = datetime(2027, 6, 30, 23, 59, 59, tzinfo=SHANGHAI).astimezone(UTC)


def products(db) -> dict[str, tuple]:
    with db.session() as s:
        return {p.sku: (p.barcode, p.title, p.brand, p.category, p.list_price, p.cost, p.stock)
                for p in s.exec(select(Product))}


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    """As Excel saves CSV: CRLF, a field with a comma quoted."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def erp_workbook(path: Path, barcode_cells: list) -> Path:
    """An ERP export as a team really has it: a title row merged across, a two-row header
    (价格 over 吊牌价/成本价, the other headers merged down), ERP column names, a notes column
    nobody maps, platform ids, and barcodes as the cells Excel made of them."""
    book = Workbook()
    sheet = book.active
    sheet.append(["2026年11月 商品资料(ERP 导出)"])
    sheet.merge_cells("A1:J1")
    sheet.append(["商品编码", "条码", "商品名称", "品牌", "类目", "价格", None, "库存", "备注",
                  "天猫商品ID"])
    sheet.append([None, None, None, None, None, "吊牌价", "成本价", None, None, None])
    for col in "ABCDEHIJ":
        sheet.merge_cells(f"{col}2:{col}3")
    sheet.merge_cells("F2:G2")
    data = [["MZ-001", "补水面膜 10片", "水润坊", "美妆个护", 129, 38.5, 800, "主推", "680012345678"],
            ["MZ-002", "洁面乳 120ml", "水润坊", "美妆个护", "89.00", "21.5", 450, "", ""]]
    for barcode, row in zip(barcode_cells, data, strict=True):
        sheet.append([row[0], barcode, *row[1:]])
    book.save(path)
    return path


def test_an_erp_export_with_title_row_merged_header_and_erp_names_reads_back_exactly(db, tmp_path):
    path = erp_workbook(tmp_path / "erp.xlsx", [6901234567892, "6901234567908"])
    report = importers.import_products(db, path)
    assert report.errors == [], [e.message("en") for e in report.errors]
    assert products(db) == {
        "MZ-001": ("6901234567892", "补水面膜 10片", "水润坊", "美妆个护", Decimal("129.00"),
                   Decimal("38.50"), 800),
        "MZ-002": ("6901234567908", "洁面乳 120ml", "水润坊", "美妆个护", Decimal("89.00"),
                   Decimal("21.50"), 450)}
    assert report.unused == [("备注", None)]
    assert report.notes("zh-CN") == [
        "以下列没有被读取:「备注」。如需导入,请在 columns/headers.yaml 或团队的列名文件里加上列名。"]
    with db.session() as s:
        items = [(i.sku, i.platform, i.item_id) for i in s.exec(select(PlatformItem))]
    assert items == [("MZ-001", "tmall", "680012345678")]


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-16"])
def test_gbk_bom_and_utf16_csv_with_two_columns_for_one_field(db, tmp_path, encoding):
    rows = [["商家编码", "条形码", "商品名称", "品牌", "类目", "标价", "成本价", "可用库存", "库存", "备注"],
            ["A-1", "6901234567892", "坚果礼盒 750g", "果然好", "食品", "￥168.00", "79", "1,200", "1500",
             "x"],
            ["A-2", "6901234567908", "洁面乳", "水润坊", "美妆个护", "89元", "21.5", "４５", "50", ""]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, encoding))
    assert report.errors == []
    assert products(db) == {
        "A-1": ("6901234567892", "坚果礼盒 750g", "果然好", "食品", Decimal("168.00"), Decimal("79.00"),
                1200),
        "A-2": ("6901234567908", "洁面乳", "水润坊", "美妆个护", Decimal("89.00"), Decimal("21.50"), 45)}
    assert report.unused == [("库存", "可用库存"), ("备注", None)]  # nothing dropped silently
    assert report.notes("en") == ["Not read from this file: '库存' (the same field as '可用库存', which "
                                  "was used), '备注'. To use a column, add its name to "
                                  "columns/headers.yaml or your team's header file."]


def test_a_two_row_header_without_merged_cells(db, tmp_path):
    rows = [["商品编码", "商品名称", "价格", "", "可用库存"], ["", "", "吊牌价", "成本价", ""],
            ["A-1", "面膜", "129", "38.5", "8"]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "gbk"))
    assert report.errors == [] and report.unused == []
    assert products(db)["A-1"][4:] == (Decimal("129.00"), Decimal("38.50"), 8)


def test_the_default_header_file_names_every_field_once():
    from bot.declarations import headers

    for kind in headers.FIELDS:
        columns = headers.columns_for(kind, team=None)
        assert all(c.aliases for c in columns), kind
        seen: dict[str, str] = {}
        for column in columns:
            for alias in column.aliases:
                assert seen.setdefault(headers.norm(alias), column.name) == column.name, (kind, alias)
    assert headers.norm("ＳＫＵ ID*") == headers.norm("sku_id") == "skuid"


def test_data_under_a_column_without_a_header_is_reported(db, tmp_path):
    rows = [["sku", "title", "list_price", "stock", ""], ["A-1", "x", "10", "1", "secret"]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "utf-8"))
    assert report.errors == [] and report.unnamed == ["E"]
    assert "第 E 列(有数据但没有列名)" in report.notes("zh-CN")[0]


def test_a_file_without_the_required_columns_says_which_names_are_accepted(db, tmp_path):
    rows = [["货品编号", "品名", "售卖价", "数量"], ["A-1", "x", "10", "1"]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "utf-8"))
    message = report.errors[0].message("zh-CN")
    assert report.errors[0].key == "imp.no_header" and "前 10 行" in message
    assert "标价/吊牌价/零售价/划线价" in message and "库存" in message and "品名" not in message
    assert "商品编码" in message  # 货品编号 is not a known name for the SKU
    assert "list_price/标价" in report.errors[0].message("en")


def test_errors_name_the_files_own_header(db, tmp_path):
    rows = [["商家编码", "商品名称", "吊牌价", "可用库存"], ["A-1", "面膜", "abc", "10"],
            ["A-2", "洁面乳", "99", "²"], ["A-3", "精华", "1,29", "1.5"]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "utf-8"))
    zh = [e.message("zh-CN") for e in report.errors]
    assert zh == ["第 2 行「吊牌价」=abc:不是数字(请用 0-9,可以带小数点)",
                  "第 3 行「可用库存」=²:含有「²」这样的特殊数字(上标、圈码等),请改用普通数字 0-9",
                  "第 4 行「可用库存」=1.5:必须是整数",
                  "第 4 行「吊牌价」=1,29:逗号或空格只能用作千位分隔(如 1,299.00),小数请用小数点"]
    assert report.errors[0].message("en") == \
        "row 2, 吊牌价 = abc: not a number (use the digits 0-9 and a decimal point)"
    assert products(db) == {}


def test_codes_excel_turned_into_numbers_are_refused_with_how_to_fix_the_sheet(db, tmp_path):
    rows = [["sku", "barcode", "title", "list_price", "stock"],
            ["A-1", "6.90123E+12", "面膜", "10", "1"], ["A-2", "6901234567908", "洁面乳", "10", "1"]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "utf-8"))
    assert [(e.row, e.column, e.key) for e in report.errors] == [(2, "barcode", "imp.code_mangled")]
    assert "设置为「文本」格式" in report.errors[0].message("zh-CN")
    assert "Format the column as Text" in report.errors[0].message("en")
    assert products(db) == {}  # and not stored as is
    assert importers.import_products(db, tmp_path / "p.csv", skip_bad_rows=True).imported == 1
    assert set(products(db)) == {"A-2"}

    long_id = erp_workbook(tmp_path / "ids.xlsx", [6901234567892, 3578912345678901234])  # 19 digits
    report = importers.import_products(db, long_id)
    assert [(e.row, e.column, e.key) for e in report.errors] == [(5, "条码", "imp.code_mangled")]


def test_a_teams_own_header_file_adds_names_and_takes_them_from_other_fields(db, tmp_path, monkeypatch):
    (tmp_path / "team.yaml").write_text(
        "products:\n  cost: [进货单价]\n  barcode: [货号]\n", encoding="utf-8")
    monkeypatch.setenv("PROMOPILOT_HEADERS_FILE", str(tmp_path / "team.yaml"))
    rows = [["商品编码", "货号", "商品名称", "零售价", "进货单价", "库存"],
            ["A-1", "6901234567892", "面膜", "129", "38.5", "8"]]
    report = importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "utf-8"))
    assert report.errors == [] and report.unused == []
    assert products(db)["A-1"][0] == "6901234567892" and products(db)["A-1"][5] == Decimal("38.50")

    (tmp_path / "team.yaml").write_text("products:\n  colour: [颜色]\n", encoding="utf-8")
    report = importers.import_products(db, tmp_path / "p.csv")
    assert report.errors[0].key == "imp.bad_headers"
    assert "team.yaml" in report.errors[0].message("zh-CN") and "colour" in report.errors[0].message("en")


def test_a_date_means_the_end_of_that_day_as_text_or_excel_cell_and_long_term_means_none(db, tmp_path):
    for name in ("a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf"):
        (tmp_path / name).write_bytes(b"%PDF-1.4")
    book = Workbook()
    sheet = book.active
    sheet.append(["文件", "类型", "名称", "签发方", "品牌", "有效期至"])
    sheet.append(["a.pdf", "营业执照", "执照(文本日期)", "市场监管局", "", "2027-06-30"])
    sheet.append(["b.pdf", "质检报告", "质检(日期单元格)", "检测所", "", datetime(2027, 6, 30)])
    sheet.append(["c.pdf", "品牌授权书", "授权(长期)", "光研", "光研", "长期"])
    sheet.append(["d.pdf", "商标注册证", "商标(永久)", "商标局", "", "永久有效"])
    sheet.append(["e.pdf", "质检报告", "质检(带时间)", "检测所", "", datetime(2027, 6, 30, 18, 0)])
    sheet["F3"].number_format = "yyyy-mm-dd"
    book.save(tmp_path / "资质清单.xlsx")
    report = importers.import_documents(db, tmp_path)
    assert report.errors == [] and report.created == 5
    with db.session() as s:
        docs = {d.title: d.valid_until for d in s.exec(select(QualificationDocument))}
        usable = [d.title for d in checks.usable_documents(
            s, "brand_authorisation", "光研", datetime.now(UTC) + timedelta(days=3650))]
    assert docs["执照(文本日期)"] == docs["质检(日期单元格)"] == END_OF_JUNE_30
    assert docs["授权(长期)"] is None and docs["商标(永久)"] is None
    assert docs["质检(带时间)"] == datetime(2027, 6, 30, 18, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert usable == ["授权(长期)"]  # no expiry: valid for any campaign


def test_excel_date_cells_and_text_dates_in_the_price_history_agree(db, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["商家编码", "渠道", "成交价", "成交日期"])
    sheet.append(["A-1", "天猫", "￥99.00", datetime(2026, 11, 1)])
    sheet.append(["A-1", "京东", 95, "2026/11/01"])
    book.save(tmp_path / "prices.xlsx")
    report = importers.import_prices(db, tmp_path / "prices.xlsx")
    assert report.errors == [] and report.imported == 2
    from storage.models_data import PriceRecord

    with db.session() as s:
        seen = {(r.platform, r.price, r.observed_at) for r in s.exec(select(PriceRecord))}
    day = datetime(2026, 11, 1, 23, 59, 59, tzinfo=SHANGHAI).astimezone(UTC)
    assert seen == {("tmall", Decimal("99.00"), day), ("jd", Decimal("95.00"), day)}


def test_platform_ids_survive_export_and_reimport(db, tmp_path):
    from bot.declarations import exporters

    rows = [["商品编码", "商品名称", "标价", "库存", "天猫商品ID", "京东SKU", "抖音商品ID", "抖音SKU ID",
             "拼多多商品ID"],
            ["A-1", "面膜", "129", "8", "680012345678", "100012345678", "3578912345678901234",
             "1780000000000001", "512345678901"]]
    assert importers.import_products(db, write_csv(tmp_path / "p.csv", rows, "utf-8")).errors == []
    with db.session() as s:
        exporters.export_products(s, tmp_path / "out.xlsx", "zh-CN")
        for item in s.exec(select(PlatformItem)):
            s.delete(item)
    assert importers.import_products(db, tmp_path / "out.xlsx").errors == []
    with db.session() as s:
        got = {(i.platform, i.item_id, i.sku_id) for i in s.exec(select(PlatformItem))}
    assert got == {("tmall", "680012345678", ""), ("jd", "100012345678", ""),
                   ("douyin", "3578912345678901234", "1780000000000001"), ("pdd", "512345678901", "")}


# -- progress ----------------------------------------------------------------------------------

def test_a_20000_row_file_shows_progress_from_the_first_row(tmp_path):
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["sku", "title", "list_price", "stock"])
    for i in range(20_000):
        sheet.append([f"S-{i:05d}", "商品", 10 + i % 50, i % 300])
    book.save(tmp_path / "big.xlsx")
    calls: list[tuple[int, int | None, str, float]] = []
    started = time.monotonic()
    good, report = sheets.parse_rows(tmp_path / "big.xlsx", "products", SHANGHAI,
                                     lambda done, total, phase: calls.append(
                                         (done, total, phase, time.monotonic())))
    ended = time.monotonic()
    assert report.errors == [] and len(good) == 20_000
    assert calls[0][:3] == (1, 20_001, "read")  # the size is known from the first row
    # progress moves while the rows are read, not all at once at the end of a silent load
    # (measured from the first row: opening the zip before it takes what the box allows)
    after_first = ended - calls[0][3]
    assert calls[-1][3] - calls[0][3] > 0.5 * after_first, (calls[0][3] - started, after_first)
    assert [c[0] for c in calls] == list(range(1, 20_002))


def test_progress_line_shows_a_duration_left_never_a_clock_time():
    now = [0.0]
    bar = ProgressLine("商品 big.xlsx", "zh-CN", clock=lambda: now[0])
    now[0] = 10.0
    assert bar.text(5_000, 20_000) == \
        "商品 big.xlsx 读取 5,000/20,000 行(25%),已用 10 秒,预计还需 30 秒"
    now[0] = 100.0
    en = ProgressLine("products big.xlsx", "en", clock=lambda: now[0])
    en.started = 0.0
    assert en.text(6_000, 20_000, "write") == \
        "products big.xlsx writing 6,000/20,000 rows (30%), 1 min 40 s so far, about 3 min 53 s left"
    assert en.text(7, None) == "products big.xlsx reading 7 rows, 1 min 40 s so far"
    assert duration(3 * 3600 + 5 * 60, "zh-CN") == "3 小时 05 分"
    assert not re.search(r"\d+:\d\d", bar.text(5_000, 20_000) + en.text(6_000, 20_000))


def test_cli_import_reports_unused_columns_and_the_headers_it_did_not_like(db, tmp_path, monkeypatch):
    from bot.cli.main import app
    from bot.core.settings import get_settings

    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        rows = [["商家编码", "商品名称", "吊牌价", "成本价", "库存", "备注"],
                ["A-1", "面膜", "129", "38", "8", "x"]]
        path = write_csv(tmp_path / "p.csv", rows, "gbk")
        result = CliRunner().invoke(app, ["import", "products", str(path), "--lang", "zh-CN"])
        assert result.exit_code == 0, result.output
        assert "以下列没有被读取:「备注」" in result.output and "已导入 1 行" in result.output
        assert "商品 p.csv 读取 2/2 行(100%)" in result.output
        assert products(db)["A-1"][5] == Decimal("38.00")  # 成本价 is the cost, not dropped
        bad = write_csv(tmp_path / "bad.csv", [rows[0], ["A-2", "x", "¥ 12,5", "1", "1", ""]], "utf-8")
        result = CliRunner().invoke(app, ["import", "products", str(bad), "--lang", "en"])
        assert result.exit_code == 1
        assert "row 2, 吊牌价 = ¥ 12,5: commas or spaces may only separate thousands" in result.output
    finally:
        get_settings.cache_clear()
