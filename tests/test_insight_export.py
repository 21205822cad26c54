"""The BI export read back field by field (CSV with csv, Excel with openpyxl, Parquet with
pyarrow), masking per role through ``GET /api/export`` (an admin who asks sees names and
phone numbers, everybody else masked), and ``GET /api/metrics``. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal

import httpx
import pyarrow.parquet as pq
from openpyxl import load_workbook
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.core.passwords import set_password
from bot.core.settings import get_settings
from bot.insight import bi_export
from tests.conftest import LiveServer, free_port
from tests.insight_history import at, build

TOKEN = "insight-team-token"
PASSWORD = "a long enough password for tests"
SINCE = at("2026-10-01 00:00")


def by_key(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["campaign_external_id"], r["sku"] or None): r for r in rows}


def test_csv_xlsx_and_parquet_read_back_field_by_field(db, monkeypatch, tmp_path):
    from bot.cli.main import app

    build(db)
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        files = {}
        for fmt in bi_export.FORMATS:
            files[fmt] = tmp_path / f"declarations.{fmt}"
            done = runner.invoke(app, ["export", "declarations", "--format", fmt, "--output",
                                       str(files[fmt]), "--since", "2026-10-01", "--unmasked",
                                       "--lang", "en"])
            assert done.exit_code == 0, done.output
            assert "Exported 8 rows" in done.stdout  # A has two lines, B–G one row each, H is older
        bad = runner.invoke(app, ["export", "declarations", "--format", "json", "-o",
                                  str(tmp_path / "x"), "--lang", "zh-CN"])
        assert bad.exit_code != 0 and "不支持格式" in bad.output
    finally:
        get_settings.cache_clear()

    table = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8"))))
    assert list(table[0]) == bi_export.FIELDS and len(table) == 8
    a1 = by_key(table)[("ext-A", "SKU-1")]
    assert {k: a1[k] for k in ("platform", "campaign_title", "team", "state", "noticed_at",
                               "deadline", "submitted_at", "verdict", "verdict_at", "owner",
                               "owner_name", "declaration_version", "declared_by",
                               "approved_by", "note", "product_title", "list_price",
                               "promo_price", "discount", "promo_stock", "line_result",
                               "zone")} == {
        "platform": "tmall", "campaign_title": "活动 A", "team": "t1", "state": "accepted",
        "noticed_at": "2026-11-02T10:00:00+08:00", "deadline": "2026-11-03T12:00:00+08:00",
        "submitted_at": "2026-11-02T20:00:00+08:00", "verdict": "accepted",
        "verdict_at": "2026-11-03T09:00:00+08:00", "owner": "li.na", "owner_name": "李娜",
        "declaration_version": "2", "declared_by": "李娜", "approved_by": "王芳",
        "note": "联系 13912345678", "product_title": "保温杯 联系 13812345678",
        "list_price": "100.00", "promo_price": "79.90", "discount": "0.7990",
        "promo_stock": "50", "line_result": "accepted", "zone": "Asia/Shanghai"}
    a2 = by_key(table)[("ext-A", "SKU-2")]
    assert (a2["line_result"], a2["reason_code"], a2["reason_text"]) == \
        ("rejected", "PRICE", "价格高于 30 天最低价")
    d = by_key(table)[("ext-D", None)]  # no declaration: the task still counts
    assert (d["state"], d["sku"], d["owner"], d["submitted_at"]) == ("expired", "", "", "")

    sheet = load_workbook(files["xlsx"], read_only=True)["declarations"]
    cells = list(sheet.iter_rows(values_only=True))
    assert list(cells[0]) == bi_export.FIELDS and len(cells) == 9
    xa1 = by_key([dict(zip(cells[0], row, strict=True)) for row in cells[1:]])[("ext-A", "SKU-1")]
    assert xa1["noticed_at"] == datetime(2026, 11, 2, 10, 0)  # the team's wall clock
    assert xa1["submitted_at"] == datetime(2026, 11, 2, 20, 0) and xa1["zone"] == "Asia/Shanghai"
    assert (xa1["list_price"], xa1["promo_price"], xa1["promo_stock"]) == (100, 79.9, 50)
    assert (xa1["task_id"], xa1["owner_name"], xa1["approved_by"]) == \
        (int(a1["task_id"]), "李娜", "王芳")

    parquet = pq.read_table(files["parquet"])
    assert parquet.schema.names == bi_export.FIELDS
    assert str(parquet.schema.field("promo_price").type) == "decimal128(14, 2)"
    pa1 = by_key(parquet.to_pylist())[("ext-A", "SKU-1")]
    assert pa1["noticed_at"] == at("11-02 10:00") and pa1["noticed_at"].utcoffset().seconds == 0
    assert (pa1["promo_price"], pa1["discount"], pa1["promo_stock"]) == \
        (Decimal("79.90"), Decimal("0.7990"), 50)
    assert (pa1["task_id"], pa1["declaration_version"], pa1["owner"]) == \
        (int(a1["task_id"]), 2, "li.na")
    assert by_key(parquet.to_pylist())[("ext-D", None)]["list_price"] is None


def test_masked_rows_hide_names_and_phone_numbers(db):
    build(db)
    with db.session() as s:
        masked = by_key(bi_export.rows(s, SINCE))
        clear = by_key(bi_export.rows(s, SINCE, unmasked=True))
    row = masked[("ext-A", "SKU-1")]
    assert (row["owner"], row["owner_name"], row["declared_by"], row["approved_by"]) == \
        ("l****", "李*", "李*", "王*")
    assert row["note"] == "联系 139****5678" and row["product_title"] == "保温杯 联系 138****5678"
    assert row["campaign_external_id"] == "ext-A" and row["sku"] == "SKU-1"  # codes stay
    assert clear[("ext-A", "SKU-1")]["note"] == "联系 13912345678"


def _login(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    page = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = client.post("/console/login", data={"username": name, "password": PASSWORD,
                                                "csrf_token": token})
    assert done.status_code == 303, done.text
    return client


def test_the_api_masks_unless_an_admin_asks(db, settings):
    from bot.web.app import create_app

    build(db)
    with db.session() as s:
        for name in ("li.na", "root"):
            set_password(s, name, PASSWORD)
    secure = settings.model_copy(update={"demo": False, "api_token": SecretStr(TOKEN),
                                         "port": free_port()})
    live = LiveServer(create_app(secure), secure).start()
    try:
        team = httpx.Client(base_url=live.url, timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        query = {"format": "csv", "since": "2026-10-01"}

        def owners(response: httpx.Response) -> set[str]:
            assert response.status_code == 200, response.text
            return {r["owner_name"] for r in csv.DictReader(io.StringIO(response.text))} - {""}

        assert httpx.get(f"{live.url}/api/export", params=query).status_code == 401
        assert owners(team.get("/api/export", params=query)) == {"李*"}
        assert owners(team.get("/api/export", params={**query, "actor": "root"})) == {"李*"}
        admin = team.get("/api/export", params={**query, "actor": "root", "unmasked": "true"})
        assert owners(admin) == {"李娜"} and "13912345678" in admin.text
        ops = team.get("/api/export", params={**query, "actor": "li.na", "unmasked": "true"},
                       headers={"Accept-Language": "zh-CN"})
        assert ops.status_code == 403 and "只有管理员" in ops.json()["detail"]["message"]
        assert team.get("/api/export", params={**query, "unmasked": "true"}).status_code == 403

        li_na, root = _login(live.url, "li.na"), _login(live.url, "root")
        assert owners(li_na.get("/api/export", params=query)) == {"李*"}
        assert li_na.get("/api/export", params={**query, "unmasked": "true"}).status_code == 403
        assert li_na.get("/api/export", params={**query, "actor": "root"}).status_code == 403
        assert owners(root.get("/api/export", params={**query, "unmasked": "true"})) == {"李娜"}

        parquet = team.get("/api/export", params={**query, "format": "parquet",
                                                  "platform": "jd"})
        assert parquet.status_code == 200
        assert "attachment" in parquet.headers["content-disposition"]
        assert set(pq.read_table(io.BytesIO(parquet.content)).column("platform").to_pylist()) \
            == {"jd"}
        wrong = team.get("/api/export", params={**query, "format": "json"},
                         headers={"Accept-Language": "en"})
        assert wrong.status_code == 422 and "csv, xlsx, parquet" in wrong.json()["detail"]["message"]

        found = team.get("/api/metrics", params={"since": "2026-10-01", "until": "2026-12-01"})
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["platforms"]["tmall"]["rework_hours"] == 21.0
        assert (body["total"]["submitted"], body["total"]["overtime"]) == (4, 3)
        assert body["since"] == "2026-10-01T00:00:00+08:00" and body["work_hours"] == "09:00-18:00"
        assert team.get("/api/metrics", params={"since": "soon"}).status_code == 422
        assert team.get("/api/metrics", params={"team": "nope"}).status_code == 404
        assert httpx.get(f"{live.url}/api/metrics").status_code == 401
    finally:
        live.stop()
