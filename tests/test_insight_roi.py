"""Campaign results (CSV/XLSX with Chinese headers, an HTTP-JSON source) and ROI per
platform, campaign type and slot, against values worked out by hand (Decimal, cents).

Fees are the rules files' defaults for products without a category override: Tmall
commission 5 %, payment 0.6 %, shipping ¥6 a parcel; JD 5 %, 0.6 %, ¥5.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.insight import fees, results, roi
from storage.models import Campaign, Platform, Product, Task, Team
from storage.models_results import CampaignResult

SH = ZoneInfo("Asia/Shanghai")
D = Decimal


def pool(db) -> dict[str, int]:
    """Two Tmall campaigns (日常促销, 百亿补贴) and one JD one; SKUs without a category."""
    with db.session() as s:
        for code, name in (("tmall", "天猫"), ("jd", "京东")):
            s.add(Platform(code=code, name=name))
        team = Team(code="t1", name="一组")
        s.add(team)
        s.add(Product(sku="A1", title="保温杯", list_price=D("199.00"), cost=D("60.00"),
                      stock=500))
        s.add(Product(sku="A2", title="水杯", list_price=D("59.00"), cost=D("20.00"),
                      stock=300))
        s.flush()
        ids = {}
        for ext, platform, kind in (("TM-1", "tmall", "日常促销"), ("TM-2", "tmall", "百亿补贴"),
                                    ("JD-1", "jd", "日常促销")):
            c = Campaign(platform=platform, external_id=ext, title=f"活动 {ext}", type=kind,
                         content_hash=ext, event_start=datetime(2026, 10, 1, tzinfo=SH),
                         event_end=datetime(2026, 10, 3, 23, 59, tzinfo=SH))
            s.add(c)
            s.flush()
            task = Task(campaign_id=c.id, team_id=team.id, state="finished")
            s.add(task)
            s.flush()
            ids[ext] = task.id
    for platform in ("tmall", "jd"):  # the fee tables these hand computations assume
        with db.session() as s:
            table = fees.table(s, platform).for_categories("")
        assert (table.commission, table.payment) == (D("0.05"), D("0.006"))
        assert table.shipping == (D("6.00") if platform == "tmall" else D("5.00"))
    return ids


HEADER = ["平台", "活动ID", "商品编码", "资源位", "日期", "曝光", "点击", "订单数", "件数", "成交额",
          "费用"]
ROWS = [
    ["天猫", "TM-1", "A1", "频道页", "2026-10-01", "10000", "500", "40", "50", "6,950.00", "1000"],
    ["天猫", "TM-1", "A2", "频道页", "2026-10-02", "4000", "200", "30", "30", "1,200.00", "200.00"],
    ["天猫", "TM-2", "A1", "首页焦点图", "2026-10-01", "50000", "3000", "100", "100", "9,900.00",
     "5000"],
    ["京东", "#3", "A1", "频道页", "2026-10-01", "8000", "400", "20", "20", "2,980.00", "500"],
    ["天猫", "TM-9", "A1", "频道页", "2026-10-01", "10", "1", "1", "1", "100", "1"],  # no such
    ["天猫", "TM-1", "A1", "频道页", "2026-10-03", "100", "5", "2", "abc", "100", "1"],  # units
]


def write_xlsx(path, header, rows):
    wb = Workbook()
    ws = wb.active
    ws.append(["活动效果数据(导出自后台)"])  # a title row above the header
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_xlsx_results_import_rejects_only_the_bad_rows_with_their_reason(db, tmp_path):
    ids = pool(db)
    report = results.import_file(db, write_xlsx(tmp_path / "r.xlsx", HEADER, ROWS))
    assert (report.imported, report.created, report.bad_rows) == (4, 4, 2)
    messages = [e.message("zh-CN") for e in report.errors]
    assert "第 7 行「活动ID」=TM-9" in messages[0] and "找不到" in messages[0]
    assert "第 8 行「件数」=abc" in messages[1]
    assert "row 7, 活动ID = TM-9" in report.errors[0].message("en")
    with db.session() as s:
        rows = {(r.platform, r.sku, r.slot): r for r in s.exec(select(CampaignResult))}
    jd = rows[("jd", "A1", "频道页")]
    assert jd.task_id == ids["JD-1"] and jd.day == "2026-10-01"  # named by our task number
    assert rows[("tmall", "A1", "频道页")].gmv == D("6950.00")
    again = results.import_file(db, write_xlsx(tmp_path / "r2.xlsx", HEADER, ROWS[:1]))
    assert (again.created, again.updated) == (0, 1)  # the same row replaces, never adds


def test_roi_per_platform_type_and_slot_matches_the_hand_computation(db, tmp_path):
    pool(db)
    results.import_file(db, write_xlsx(tmp_path / "r.xlsx", HEADER, ROWS[:4]))
    # Unit margins (price = GMV ÷ units; commission, payment rounded to the cent, half up):
    #   TM-1 A1 at 139.00: 139 − 6.95 − 0.83 − 6 − 60 = 65.22 × 50 = 3261.00
    #   TM-1 A2 at  40.00:  40 − 2.00 − 0.24 − 6 − 20 = 11.76 × 30 =  352.80
    #   TM-2 A1 at  99.00:  99 − 4.95 − 0.59 − 6 − 60 = 27.46 × 100 = 2746.00
    #   JD-1 A1 at 149.00: 149 − 7.45 − 0.89 − 5 − 60 = 75.66 × 20 = 1513.20
    with db.session() as s:
        found = roi.report(s)
    by_platform = {tuple(x["key"]): x for x in found["by_platform"]}
    tmall = by_platform[("tmall",)]
    assert (tmall["gmv"], tmall["fees"], tmall["units"]) == ("18050.00", "6200.00", 180)
    assert tmall["roi"] == "2.91"  # 18050 / 6200 = 2.9113
    assert tmall["margin"] == "6359.80" and tmall["net"] == "159.80"
    assert tmall["ctr"] == "0.0578" and tmall["cvr"] == "0.0459"  # 3700/64000, 170/3700
    jd = by_platform[("jd",)]
    assert (jd["roi"], jd["margin"], jd["net"]) == ("5.96", "1513.20", "1013.20")
    by_type = {tuple(x["key"]): x for x in found["by_type"]}
    assert by_type[("tmall", "日常促销")]["roi"] == "6.79"  # 8150 / 1200 = 6.7917
    assert by_type[("tmall", "日常促销")]["net"] == "2413.80"  # 3613.80 − 1200
    assert by_type[("tmall", "百亿补贴")]["roi"] == "1.98"  # 9900 / 5000
    assert by_type[("tmall", "百亿补贴")]["net"] == "-2254.00"  # 2746 − 5000
    by_slot = {tuple(x["key"]): x for x in found["by_slot"]}
    assert by_slot[("tmall", "首页焦点图")]["roi"] == "1.98"
    assert by_slot[("tmall", "频道页")]["roi"] == "6.79"
    assert found["total"]["roi"] == "3.14"  # 21030 / 6700 = 3.1388
    assert found["total"]["net"] == "1173.00"  # 7873.00 − 6700
    with db.session() as s:  # the review report's ROI of the week the campaigns ended in
        week = datetime(2026, 9, 28, tzinfo=SH)
        assert roi.review_roi(s, week, week + timedelta(days=7), None, None) == D("3.14")
        assert roi.review_roi(s, week, week + timedelta(days=7), ["jd"], None) == D("5.96")
        assert roi.review_roi(s, week - timedelta(days=7), week, None, None) is None


def test_cli_imports_a_gbk_csv_and_an_http_json_source_and_reports_roi(db, tmp_path,
                                                                       monkeypatch):
    from bot.cli.main import app
    from bot.core.settings import get_settings
    from tests.fakes.insight_feeds import FeedServer

    pool(db)
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        path = tmp_path / "r.csv"
        rows = [[c.replace(",", "") for c in row] for row in ROWS[:2] + ROWS[4:5]]
        path.write_bytes("\n".join(",".join(r) for r in [HEADER, *rows]).encode("gbk"))
        out = runner.invoke(app, ["import", "results", str(path), "--lang", "zh-CN"])
        assert out.exit_code == 0, out.output
        assert "已导入 2 行(新增 2,更新 0),拒收 1 行。" in out.output
        assert "第 4 行「活动ID」=TM-9" in out.output
        items = [{"platform": "tmall", "campaign": "TM-2", "sku": "A1", "slot": "首页焦点图",
                  "date": "2026-10-01", "units": 100, "orders": 100, "gmv": "9900.00",
                  "fees": 5000},
                 {"platform": "tmall", "campaign": "TM-2", "sku": "A1", "units": "x"}]
        with FeedServer(items, key="results") as feed:
            feed.trouble = [503, 429]  # retried, then read
            out = runner.invoke(app, ["import", "results", feed.url, "--token", "s3cret",
                                      "--lang", "en"])
            assert out.exit_code == 0, out.output
            assert "Imported 1 rows" in out.output and "row 2, units = x" in out.output
            assert feed.requests[-1][1]["Authorization"] == "Bearer s3cret"
            assert "s3cret" not in out.output
            feed.trouble = ["garbage"]
            out = runner.invoke(app, ["import", "results", feed.url, "--lang", "en"])
            assert out.exit_code == 1 and "Could not read the results source" in out.output
        out = runner.invoke(app, ["report", "roi", "--json"])
        assert out.exit_code == 0, out.output
        import json

        found = json.loads(out.stdout)
        tmall = {tuple(x["key"]): x for x in found["by_platform"]}[("tmall",)]
        assert (tmall["gmv"], tmall["fees"], tmall["roi"]) == ("18050.00", "6200.00", "2.91")
        text = runner.invoke(app, ["report", "roi", "--lang", "zh-CN"]).output
        assert "天猫 / 百亿补贴:成交额 ¥9900.00,费用 ¥5000.00,ROI 1.98" in text
    finally:
        get_settings.cache_clear()
