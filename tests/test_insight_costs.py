"""Cost and stock sync from the ERP/WMS onto the product pool, on SQLite and PostgreSQL:
the real httpx client against a local 聚水潭-style server (the mapping, pages, 429 with
Retry-After then success, a body that is not JSON, a business error), a malformed row
rejected with its reason while the others count, the last sync in ``promopilot costs``,
one ops card per failure and one at recovery; CSV (GBK) and XLSX drops."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import select
from typer.testing import CliRunner

from adapters.erp.file_drop import FileCostSource
from adapters.erp.http_json import CostMapping, HttpJsonCostSource
from bot.insight.costs import CostSync
from storage.models import OutboxMessage, Product
from storage.models_costs import CostSourceState
from tests.fakes.erp import ErpServer, jst_row

D = Decimal


@pytest.fixture
def erp():
    server = ErpServer()
    yield server
    server.close()


def source(erp: ErpServer, **kw) -> HttpJsonCostSource:
    kw.setdefault("attempts", 3)
    kw.setdefault("mapping", CostMapping(page_size=2))
    return HttpJsonCostSource(name="jst", url=erp.url, method="POST", body={"wms_co_id": 0},
                              token_env="PP_TEST_ERP_TOKEN", **kw)


def product(db, sku: str) -> Product:
    with db.session() as s:
        return s.exec(select(Product).where(Product.sku == sku)).one()


def cards(db, builder: str) -> list[OutboxMessage]:
    with db.session() as s:
        return [r for r in s.exec(select(OutboxMessage).where(OutboxMessage.kind == "card"))
                if r.payload.get("builder") == builder]


def state(db, name: str) -> CostSourceState:
    with db.session() as s:
        return s.get(CostSourceState, name)


def test_the_erp_sync_maps_fields_pages_retries_a_429_and_rejects_a_bad_row(
        seeded, erp, monkeypatch):
    db = seeded
    monkeypatch.setenv("PP_TEST_ERP_TOKEN", "tok-123")
    before = product(db, "MZ-002")
    erp.rows = [jst_row("MZ-001", cost=41.255, qty=800, order_lock=20, purchase_qty=200,
                        min_qty=120),
                jst_row("MZ-002", qty="很多"),  # malformed: rejected, the rest still count
                jst_row("MZ-003", cost="66.00", qty="260.0000", order_lock=0, min_qty=None),
                jst_row("NOT-IN-POOL", qty=5),
                "not a row"]
    erp.trouble = [429]
    started = time.monotonic()
    report = CostSync(db, [source(erp)]).sync(source(erp))
    assert time.monotonic() - started >= 0.9  # Retry-After: 1 was honoured
    assert report.failed is None
    assert (report.rows, report.updated, report.unknown) == (3, 2, 1)
    one = product(db, "MZ-001")
    assert (one.cost, one.stock, one.in_transit, one.safety_stock) == (
        D("41.26"), 780, 200, 120)  # 41.255 half up; 800 − 20 locked for orders
    assert one.stock_source == "jst" and one.stock_synced_at is not None
    three = product(db, "MZ-003")
    assert (three.cost, three.stock, three.safety_stock) == (D("66.00"), 260, 60)  # kept
    two = product(db, "MZ-002")
    assert (two.cost, two.stock) == (before.cost, before.stock)
    pages = [body for path, _, body in erp.requests]
    assert [b.get("page_index") for b in pages] == [1, 1, 2, 3]  # the 429, then three pages
    assert all(b["page_size"] == 2 and b["wms_co_id"] == 0 for b in pages)
    assert erp.requests[-1][1]["Authorization"] == "Bearer tok-123"
    kept = state(db, "jst")
    assert kept.ok and kept.last_counts["updated"] == 2
    assert set(kept.rejections) == {"MZ-002", "p3#1"}
    assert kept.rejections["MZ-002"]["key"] == "erp.row.not_number"
    announced = cards(db, "cost_rows_rejected")
    assert len(announced) == 1
    from bot.core.views import BUILDERS

    with db.session() as s:
        zh = BUILDERS["cost_rows_rejected"](s, announced[0].payload["params"], "zh-CN")
        en = BUILDERS["cost_rows_rejected"](s, announced[0].payload["params"], "en")
    assert "MZ-002:「库存」的值「很多」不是数字" in zh.text and "p3#1" in zh.text
    assert "MZ-002: stock “很多” is not a number" in en.text
    CostSync(db, [source(erp)]).sync(source(erp))  # the same rows again: told once
    assert len(cards(db, "cost_rows_rejected")) == 1


def test_last_sync_and_errors_show_in_promopilot_costs(seeded, erp, tmp_path, monkeypatch):
    from bot.cli.main import app
    from bot.core.settings import get_settings

    erp.rows = [jst_row("MZ-001"), jst_row("MZ-002", cost="-3")]
    config = tmp_path / "costs.yaml"
    config.write_text(f"""
sources:
  - name: jst-inventory
    kind: http_json
    url: {erp.url}
    method: POST
    retries: 2
""", encoding="utf-8")
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", seeded.url)
    monkeypatch.setenv("PROMOPILOT_COSTS_FILE", str(config))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        synced = runner.invoke(app, ["costs", "sync", "--lang", "en"])
        assert synced.exit_code == 0, synced.output
        assert '"updated": 1' in synced.output
        shown = runner.invoke(app, ["costs", "--lang", "zh-CN"])
        assert shown.exit_code == 0, shown.output
        assert "OK   jst-inventory" in shown.output and "(Asia/Shanghai)" in shown.output
        assert "rejected MZ-002: MZ-002:「成本」不能为负数(-3)" in shown.output
        as_json = json.loads(runner.invoke(app, ["costs", "--json"]).stdout)
        assert as_json[0]["last_counts"]["updated"] == 1 and as_json[0]["rejected"] == 1
        assert as_json[0]["last_success"].endswith("+08:00")
        erp.trouble = [503, 503]
        failed = runner.invoke(app, ["costs", "sync"])
        assert failed.exit_code == 1
        down = runner.invoke(app, ["costs"])
        assert down.exit_code == 1 and "FAIL jst-inventory" in down.output
        assert "last error: RetryableHTTPError" in down.output and "503" in down.output
    finally:
        get_settings.cache_clear()


def test_a_failing_source_is_told_to_ops_once_and_its_recovery_too(seeded, erp):
    db = seeded
    erp.rows = [jst_row("MZ-001", cost="40.00")]
    src = source(erp, attempts=2, interval=60)
    sync = CostSync(db, [src])
    erp.trouble = [500, 500, 500, 500]
    assert sync.sync(src).failed and sync.sync(src).failed  # two syncs, two attempts each
    assert len(erp.requests) == 4
    failing = state(db, "jst")
    assert not failing.ok and failing.consecutive_failures == 2 and "500" in failing.last_error
    assert failing.next_attempt_at > failing.last_attempt
    assert len(cards(db, "cost_source_down")) == 1  # once per new failure
    assert product(db, "MZ-001").cost == D("38.00")  # the pool keeps the last good values
    assert sync.run(only_due=True) == {}  # backing off: not due yet
    assert sync.sync(src).failed is None
    assert product(db, "MZ-001").cost == D("40.00")
    assert len(cards(db, "cost_source_recovered")) == 1
    from bot.core.views import BUILDERS

    down = cards(db, "cost_source_down")[0].payload["params"]
    with db.session() as s:
        card = BUILDERS["cost_source_down"](s, down, "zh-CN")
    assert "同步失败" in card.title
    erp.trouble = [500, 500]
    assert sync.sync(src).failed
    assert len(cards(db, "cost_source_down")) == 2  # a new failure is news again


def test_a_body_that_is_not_json_is_retried_and_a_business_error_is_not(seeded, erp):
    db = seeded
    erp.rows = [jst_row("MZ-001", cost="39.00")]
    erp.trouble = ["garbage"]
    assert CostSync(db, []).sync(source(erp)).failed is None
    assert product(db, "MZ-001").cost == D("39.00")
    erp.requests.clear()
    erp.trouble = [("code", 10001)]
    report = CostSync(db, []).sync(source(erp))
    assert "business code 10001" in report.failed and len(erp.requests) == 1
    retrying = source(erp, mapping=CostMapping(retry_codes=[10001]))
    erp.trouble = [("code", 10001)]
    assert CostSync(db, []).sync(retrying).failed is None


def write_gbk_csv(path: Path, rows: list[list[object]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode("gbk"))
    return path


def test_csv_and_xlsx_drops_newest_wins_bad_rows_and_files_rejected(seeded, tmp_path):
    db = seeded
    folder = tmp_path / "drops"
    folder.mkdir()
    older = write_gbk_csv(folder / "库存-1130.csv", [
        ["仓库库存导出 2026-11-30"],
        ["商品编码", "商品名称", "成本价", "可用库存", "采购在途", "安全库存"],
        ["MZ-001", "补水面膜", "37.80", "700", "100", "90"],
        ["MZ-002", "洁面乳", "21.00", "-5", "0", "80"],  # negative stock: rejected
        ["", "", "", "", "", ""],
        ["MZ-003", "精华液", "65.5", "250", "0", "60"],
    ])
    os.utime(older, (time.time() - 60, time.time() - 60))
    book = Workbook()
    sheet = book.active
    sheet.append(["SKU", "cost", "stock", "in_transit", "safety_stock"])
    sheet.append(["MZ-001", 38.2, 650, 50, 90])  # newer: wins over the CSV
    sheet.append(["MZ-004", "abc", 40, 0, 20])
    book.save(folder / "wms.xlsx")
    (folder / "notes.csv").write_text("日期,备注\n11-30,盘点\n", encoding="utf-8")
    (folder / "broken.xlsx").write_bytes(b"not a zip")
    src = FileCostSource(name="wms-drop", folder=str(folder))
    sync = CostSync(db, [src])
    report = sync.sync(src)
    assert report.failed is None and report.updated == 2
    one, three = product(db, "MZ-001"), product(db, "MZ-003")
    assert (one.cost, one.stock, one.in_transit) == (D("38.20"), 650, 50)
    assert (three.cost, three.stock) == (D("65.50"), 250)
    kept = state(db, "wms-drop").rejections
    assert kept["MZ-002"]["key"] == "erp.row.negative"
    assert kept["MZ-004"]["key"] == "erp.row.not_number"
    assert kept["notes.csv"]["key"] == "erp.file.no_sku_column"
    assert kept["broken.xlsx"]["key"] == "erp.file.unreadable"
    assert product(db, "MZ-002").stock == 450  # unchanged
    again = sync.sync(src)  # nothing changed on disk: nothing read again
    assert again.rows == 0 and again.failed is None
    missing = FileCostSource(name="gone", folder=str(tmp_path / "nowhere"))
    assert "does not exist" in CostSync(db, [missing]).sync(missing).failed


def test_the_server_syncs_on_a_schedule_on_the_leader_only(seeded, erp, settings, tmp_path,
                                                           monkeypatch):
    import asyncio

    from bot.core.scheduler import guarded
    from bot.web.app import create_app

    erp.rows = [jst_row("MZ-001", cost="42.00")]
    config = tmp_path / "costs.yaml"
    config.write_text(f"sources:\n  - {{name: jst, kind: http_json, url: '{erp.url}', "
                      f"method: POST, interval: 600}}\n", encoding="utf-8")
    monkeypatch.setenv("PROMOPILOT_COSTS_FILE", str(config))
    container = create_app(settings).state.container
    assert [s.name for s in container.cost_sources] == ["jst"]
    job = next(fn for name, fn, _ in container.jobs if name == "cost_sync")
    asyncio.run(guarded("cost_sync", job, lambda: False)())  # not the leader: nothing
    assert erp.requests == [] and product(seeded, "MZ-001").cost == D("38.00")
    asyncio.run(guarded("cost_sync", job, lambda: True)())
    assert product(seeded, "MZ-001").cost == D("42.00")
    asyncio.run(guarded("cost_sync", job, lambda: True)())  # not due again for 600 s
    assert len(erp.requests) == 1


JST = ("jst-app-key", "jst-app-secret-9", "jst-access-token")


def test_a_jushuitan_source_signs_every_call_and_a_wrong_secret_fails_the_sync_clearly(
        seeded, monkeypatch, caplog):
    """聚水潭's open platform refuses an unsigned call: every page goes as its signed form
    (biz carries the body and the page), the secret is never sent nor logged, a retry is
    signed afresh, and a wrong secret or a missing variable fails the sync saying why."""
    from adapters.erp.config import CostsFile, build

    db = seeded
    erp = ErpServer([jst_row("MZ-001", cost="40.10"), jst_row("MZ-003", cost="65.00")],
                    jushuitan=JST)
    try:
        monkeypatch.setenv("PP_JST_KEY", JST[0])
        monkeypatch.setenv("PP_JST_SECRET", JST[1])
        monkeypatch.setenv("PP_JST_TOKEN", JST[2])
        config = CostsFile.model_validate({"sources": [{
            "name": "jst", "kind": "http_json", "url": erp.url, "method": "POST",
            "body": {"wms_co_id": 0}, "signing": "jushuitan", "app_key_env": "PP_JST_KEY",
            "app_secret_env": "PP_JST_SECRET", "token_env": "PP_JST_TOKEN", "retries": 3,
            "mapping": {"page_size": 1}}]})
        (signed,) = build(config)
        erp.trouble = [503]
        report = CostSync(db, [signed]).sync(signed)
        assert report.failed is None and report.updated == 2, report
        assert product(db, "MZ-001").cost == D("40.10")
        forms = [form for _, _, form in erp.requests]
        assert [json.loads(f["biz"])["page_index"] for f in forms] == [1, 1, 2]
        assert all(json.loads(f["biz"])["wms_co_id"] == 0 and f["app_key"] == JST[0]
                   for f in forms)
        assert all(JST[1] not in json.dumps(f) for f in forms)  # the secret is never sent
        assert all("Authorization" not in headers for _, headers, _ in erp.requests)
        assert JST[1] not in caplog.text and JST[2] not in caplog.text

        erp.requests.clear()
        monkeypatch.setenv("PP_JST_SECRET", "not-the-secret")
        failed = CostSync(db, [signed]).sync(signed)
        assert "business code 102" in failed.failed and "签名错误" in failed.failed
        assert len(erp.requests) == 1  # refused for good, not retried
        monkeypatch.delenv("PP_JST_SECRET")
        missing = CostSync(db, [signed]).sync(signed)
        assert "PP_JST_SECRET" in missing.failed and len(erp.requests) == 1
    finally:
        erp.close()


def test_jushuitan_signing_without_its_variables_is_refused_at_start_up():
    from adapters.erp.config import CostsFile

    with pytest.raises(ValueError, match="app_key_env, app_secret_env and token_env"):
        CostsFile.model_validate({"sources": [{
            "name": "jst", "kind": "http_json", "url": "http://127.0.0.1:1/x",
            "method": "POST", "signing": "jushuitan", "token_env": "PP_JST_TOKEN"}]})
