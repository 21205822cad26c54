"""Per-platform bulk-registration workbooks generated from a declaration, read back with
openpyxl and compared field by field; the layout is data (a YAML column map); the bundle
carries the documents; the sandboxed templates refuse Python internals."""

from __future__ import annotations

import io
import shutil
import zipfile
from decimal import Decimal
from types import SimpleNamespace

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pydantic import SecretStr
from sqlmodel import select

from bot.core import templating
from bot.core.i18n import t
from bot.core.timefmt import local_date
from bot.declarations import exporters
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from storage.models import Campaign, Product, QualificationDocument, Task
from storage.models_data import PlatformItem
from tests.fakes import data_pool as pool


@pytest.fixture
def drafted(seeded):
    """Every demo task claimed and auto-filled; returns {platform: task id}."""
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    with seeded.session() as s:
        rows = s.exec(select(Task.id, Campaign.platform).join(Campaign, Campaign.id == Task.campaign_id)
                      .order_by(Task.id)).all()
    out: dict[str, int] = {}
    for tid, platform in rows:
        if platform in out:
            continue
        pool.act(seeded, tid, "claim", "li.na")
        pool.act(seeded, tid, "draft", "li.na")
        out[platform] = tid
    return out


def read_back(data: bytes):
    return load_workbook(io.BytesIO(data))


def give_ids(db, tid: int, platform: str, *, skip: int = 0) -> dict[str, PlatformItem]:
    """Platform item/SKU ids for the declaration's SKUs (all but the first ``skip``)."""
    with db.session() as s:
        _, lines = current(s, tid)
        out = {}
        for n, line in enumerate(lines[skip:], 1):
            item = PlatformItem(sku=line.sku, platform=platform, item_id=f"{platform[:2].upper()}-{n:012d}",
                                sku_id=f"{n:016d}")
            s.add(item)
            out[line.sku] = item
    return out


@pytest.mark.parametrize("platform", ["tmall", "jd", "douyin", "pdd"])
def test_workbook_matches_the_declaration_field_by_field(seeded, drafted, platform):
    tid = drafted[platform]
    items = give_ids(seeded, tid, platform)
    with seeded.session() as s:
        campaign = s.get(Campaign, s.get(Task, tid).campaign_id)
        campaign.requirements = {**campaign.requirements, "per_person_limit": "３"}  # as typed
        s.add(campaign)
    mapping = yaml.safe_load((exporters.COLUMNS_DIR / f"{platform}.yaml").read_text(encoding="utf-8"))
    with seeded.session() as s:
        name, data = exporters.workbook_bytes(s, tid, "zh-CN")
        declaration, lines = current(s, tid)
        products = {p.sku: p for p in s.exec(select(Product))}
        docs = [s.get(QualificationDocument, i) for i in declaration.documents]
    assert name == f"{platform}-task{tid}-v1.xlsx"
    book = read_back(data)
    sheet = book[mapping["sheet"]]
    rows = list(sheet.iter_rows(values_only=True))
    headers = [c["header"] for c in mapping["columns"]]
    assert list(rows[0]) == headers
    assert len(rows) == len(lines) + 1
    for line, row in zip(lines, rows[1:], strict=True):
        cell = dict(zip(headers, row, strict=True))
        product, item = products[line.sku], items[line.sku]
        expected = {
            "tmall": {"商品ID": item.item_id, "SKU ID": item.sku_id, "商家编码": line.sku,
                      "商品条码": product.barcode, "商品标题": product.title,
                      "一口价(元)": line.list_price, "活动价(元)": line.promo_price,
                      "活动库存": line.promo_stock},
            "jd": {"SKU编码": item.item_id, "商家编码": line.sku, "商品名称": product.title,
                   "京东价": line.list_price, "促销价": line.promo_price, "促销库存": line.promo_stock,
                   "品牌": product.brand},
            "douyin": {"商品ID": item.item_id, "SKU ID": item.sku_id, "商家编码": line.sku,
                       "商品名称": product.title, "活动价格": line.promo_price,
                       "活动库存": line.promo_stock, "每人限购": 3},  # from the campaign, not 1
            "pdd": {"商品ID": item.item_id, "SKU ID": item.sku_id, "商家编码": line.sku,
                    "商品标题": product.title, "单买价": line.list_price, "活动价": line.promo_price,
                    "活动库存": line.promo_stock},
        }[platform]
        for header, want in expected.items():
            got = cell[header]
            if isinstance(want, Decimal):
                assert Decimal(str(got)).quantize(Decimal("0.01")) == want, (header, got, want)
            else:
                assert got == want, (header, got, want)
        if platform == "tmall":
            off = 1 - line.promo_price / line.list_price
            assert abs(Decimal(str(cell["折扣"])) - off) < Decimal("0.0001")
    price_col = headers.index(next(c["header"] for c in mapping["columns"]
                                   if c["value"] == "line.promo_price")) + 1
    assert sheet.cell(2, price_col).number_format == "0.00"
    doc_sheet = book[mapping["documents_sheet"]]
    doc_rows = list(doc_sheet.iter_rows(values_only=True))
    assert doc_rows[0] == ("名称", "类型", "签发方", "有效期至", "文件")
    assert [r[0] for r in doc_rows[1:]] == [d.title for d in docs] and docs
    for n, (doc, row) in enumerate(zip(docs, doc_rows[1:], strict=True), 2):
        assert row[1] == {"business_licence": "营业执照", "brand_authorisation": "品牌授权书",
                          "quality_report": "质检报告", "food_licence": "食品经营许可证"}[doc.kind]
        assert doc_sheet.cell(n, 4).is_date and doc_sheet.cell(n, 4).number_format == "yyyy-mm-dd"
        assert row[3].date() == local_date(doc.valid_until)  # the team's day, a date cell


def test_no_per_person_limit_leaves_the_cell_empty_and_missing_item_ids_are_named(seeded, drafted):
    tid = drafted["douyin"]
    give_ids(seeded, tid, "douyin", skip=1)
    with seeded.session() as s:
        _, lines = current(s, tid)
        doc = s.get(QualificationDocument, s.exec(select(QualificationDocument.id)).first())
        doc.valid_until = None  # 长期
        s.add(doc)
        declaration = current(s, tid)[0]
        declaration.documents = [doc.id]
        s.add(declaration)
    with seeded.session() as s:
        _, data = exporters.workbook_bytes(s, tid, "en")
        _, bundle = exporters.bundle_bytes(s, tid, "zh-CN")
    book = read_back(data)
    rows = list(book["活动商品"].iter_rows(values_only=True))
    limit = rows[0].index("每人限购")
    assert {r[limit] for r in rows[1:]} == {None}  # not limited, not a made-up 1
    assert rows[1][0] is None and rows[2][0]  # the first SKU has no Douyin item id
    assert list(book["资质"].iter_rows(values_only=True))[1][:4] == (
        doc.title, t(f"doc.{doc.kind}", "en"), doc.issuer, "No expiry")  # a label, not the code
    readme = zipfile.ZipFile(io.BytesIO(bundle)).read("README.txt").decode()
    assert "1 个 SKU 在数据池里没有抖音商品ID" in readme and lines[0].sku in readme


def test_the_excel_hand_off_is_the_export_for_the_same_declaration(seeded, drafted, tmp_path):
    from adapters.platforms.submitters.excel import ExcelConfig, ExcelHandoff
    from bot.core.ports import SubmissionItem
    from bot.submissions.runs import idempotency_key
    from storage.models_approval import SubmissionRun

    tid = drafted["jd"]
    give_ids(seeded, tid, "jd")
    key = idempotency_key(tid, 1)
    with seeded.session() as s:
        s.add(SubmissionRun(task_id=tid, declaration_version=1, idempotency_key=key, channels=["excel"]))
        _, lines = current(s, tid)
        _, exported = exporters.workbook_bytes(s, tid, "zh-CN")
    handoff = ExcelHandoff(ExcelConfig(directory=str(tmp_path)), "jd", seeded)
    items = [SubmissionItem(ln.sku, ln.list_price, ln.promo_price, ln.promo_stock) for ln in lines]
    receipt = handoff.submit("JD-PLUS-20261201", items, key)
    handed = load_workbook(receipt.raw["handoff"]["file"])
    export = read_back(exported)
    assert handed.sheetnames == export.sheetnames == ["促销商品", "资质"]
    for name in export.sheetnames:
        assert [[(c.value, c.number_format) for c in row] for row in handed[name].iter_rows()] == \
            [[(c.value, c.number_format) for c in row] for row in export[name].iter_rows()]
    first = dict(zip([c.value for c in handed["促销商品"][1]], [c.value for c in handed["促销商品"][2]],
                     strict=True))
    assert first["SKU编码"].startswith("JD-") and first["商家编码"] == lines[0].sku


def test_a_changed_column_map_changes_the_file_without_code(seeded, drafted, tmp_path, monkeypatch):
    shutil.copytree(exporters.COLUMNS_DIR, tmp_path / "columns")
    path = tmp_path / "columns" / "jd.yaml"
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    mapping["sheet"] = "新版模板"
    mapping["columns"].insert(0, {"header": "活动编号", "value": "campaign.external_id"})
    mapping["columns"].append({"header": "折后价(分)", "value": "(line.promo_price * 100)|int"})
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(exporters, "COLUMNS_DIR", tmp_path / "columns")
    with seeded.session() as s:
        _, data = exporters.workbook_bytes(s, drafted["jd"])
        _, lines = current(s, drafted["jd"])
    rows = list(read_back(data)["新版模板"].iter_rows(values_only=True))
    assert rows[0][0] == "活动编号" and rows[1][0] == "JD-PLUS-20261201"
    assert rows[1][-1] == int(lines[0].promo_price * 100)


def test_a_column_map_reaching_python_internals_is_refused(seeded, drafted, tmp_path, monkeypatch):
    (tmp_path / "pdd.yaml").write_text(
        "sheet: x\ncolumns:\n  - header: evil\n    value: line.__class__.__mro__\n", encoding="utf-8")
    monkeypatch.setattr(exporters, "COLUMNS_DIR", tmp_path)
    with seeded.session() as s, pytest.raises(templating.TemplateRefused):
        exporters.workbook_bytes(s, drafted["pdd"])


def test_bundle_carries_the_workbook_documents_and_declaration_text(seeded, drafted, tmp_path):
    tid = drafted["tmall"]
    with seeded.session() as s:
        declaration, _ = current(s, tid)
        for i, doc_id in enumerate(declaration.documents):
            doc = s.get(QualificationDocument, doc_id)
            doc.file_path = str(tmp_path / f"doc{i}.pdf")
            (tmp_path / f"doc{i}.pdf").write_bytes(f"%PDF {doc.title}".encode())
            s.add(doc)
    with seeded.session() as s:
        name, data = exporters.bundle_bytes(s, tid, "zh-CN")
    assert name == f"tmall-task{tid}-v1.zip"
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert f"tmall-task{tid}-v1.xlsx" in names
    assert len([n for n in names if n.startswith("documents/")]) == len(declaration.documents)
    readme = archive.read("README.txt").decode()
    assert "申报单 v1" in readme and "合规预检:通过" in readme and "营业执照" in readme


def test_downloads_from_the_card_link_and_signed_when_a_token_is_set(settings, seeded):
    from bot.web.app import create_app

    settings.api_token = SecretStr("s3cret")
    app = create_app(settings)
    with TestClient(app) as client:
        tid = pool.task(seeded, "jd", state="claimed")
        pool.act(seeded, tid, "draft", "li.na")
        assert client.get(f"/console/declarations/{tid}/bundle").status_code == 403
        url = data_plugin.link(tid, "excel", settings).replace(settings.base_url, "")
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-disposition"].endswith(f'jd-task{tid}-v1.xlsx"')
        assert read_back(response.content)["促销商品"].cell(1, 1).value == "SKU编码"
        forged = url.replace("sig=", "sig=0")
        assert client.get(forged).status_code == 403


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ line.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% set xs = [] %}{{ xs.append(1) }}",
    "{{ line.__dict__ }}",
])
def test_sandbox_refuses_python_internals(source):
    with pytest.raises(templating.TemplateRefused):
        templating.render_string(source, line=SimpleNamespace(sku="A"))


def test_templates_render_in_both_languages(seeded, drafted):
    with seeded.session() as s:
        zh = exporters.declaration_text(s, drafted["jd"], "zh-CN")
        en = exporters.declaration_text(s, drafted["jd"], "en")
    assert zh.startswith("【京东PLUS会员日·家电数码秒杀报名】申报单 v1") and "合规预检:通过" in zh
    assert "declaration v1" in en and "Pre-check: passed." in en
    assert templating.render_string("{{ p|money }} {{ r|pct }}", p=Decimal("9.5"), r=Decimal("0.2")) == \
        "9.50 20%"
