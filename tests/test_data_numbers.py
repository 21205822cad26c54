"""Every number a person types goes through one parser: the chat edit command, the console's
JSON line edit and every money/count cell of an import. Full-width digits, thousands commas,
￥/¥, 元 and spaces are normalised; superscripts, words, other currencies, odd commas and out of
range values are refused with the reason in the reader's language — never an internal error
(出错了) and never a 500."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

import commands  # noqa: F401
from bot.core.i18n import t
from bot.declarations import importers
from bot.declarations import plugin as data_plugin
from bot.declarations.autofill import current
from bot.declarations.numbers import NumberRefused, to_decimal, to_int
from commands import Inbound, router
from tests.fakes import data_pool as pool

# typed text → (as a promo price, as a promo stock): the value kept, or the refusal's key
TABLE = [
    ("²", "num.odd_digit", "num.odd_digit"),
    ("２０", Decimal("20.00"), 20),
    ("1,299.00", Decimal("1299.00"), 1299),
    ("￥99", Decimal("99.00"), "num.not_number"),
    ("¥ 99", Decimal("99.00"), "num.not_number"),
    ("99元", Decimal("99.00"), "num.not_number"),
    (" 1 299 ", Decimal("1299.00"), 1299),
    ("50件", "num.not_number", 50),
    ("abc", "num.not_number", "num.not_number"),
    ("二十", "num.not_number", "num.not_number"),
    ("$99", "num.currency", "num.not_number"),
    ("12,5", "num.grouping", "num.grouping"),
    ("-3", "num.negative", "num.negative"),
    ("0", "num.positive", 0),
    ("99.999", "num.places", "num.not_integer"),
    ("1e9999", "num.not_number", "num.not_number"),
    ("①", "num.odd_digit", "num.odd_digit"),
    ("２０００００００００", "num.too_large", "num.too_large"),
]
INTERNAL = t("err.internal", "zh-CN", ref="").split(",")[0]  # 出错了


def parse(field: str, raw: str):
    try:
        if field == "price":
            return to_decimal(raw, positive=True, maximum=Decimal("100000000"))
        return to_int(raw, maximum=10_000_000)
    except NumberRefused as exc:
        return exc.key


@pytest.mark.parametrize("raw, price, stock", TABLE)
def test_the_parser(raw, price, stock):
    assert (parse("price", raw), parse("stock", raw)) == (price, stock)


def test_a_file_cell_is_rounded_to_the_cent_a_typed_price_is_not():
    assert to_decimal("99.999", round_excess=True) == Decimal("100.00")
    assert to_decimal(38.499999999999, round_excess=False) == Decimal("38.50")  # a float cell
    with pytest.raises(NumberRefused):
        to_decimal("99.999")


@pytest.fixture
def drafted(seeded):
    data_plugin.install(SimpleNamespace(db=seeded, jobs=[], extras={}), None)
    tid = pool.task(seeded, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                    state="claimed")
    pool.act(seeded, tid, "draft", "li.na")
    with seeded.session() as s:
        return seeded, tid, current(s, tid)[1][0].sku


def stored(db, tid: int, sku: str) -> tuple[Decimal, int]:
    with db.session() as s:
        line = next(ln for ln in current(s, tid)[1] if ln.sku == sku)
        return line.promo_price, line.promo_stock


def reason(key: str, lang: str) -> str:
    params = {"num.odd_digit": {"char": "²"}, "num.places": {"n": 2},
              "num.too_large": {"max": Decimal("100000000")}}.get(key, {})
    text = t(key, lang, **params)
    return text.split("「")[0] if key == "num.odd_digit" else text.split("100000000")[0]


def test_the_chat_edit_command_normalises_or_refuses_clearly(drafted):
    db, tid, sku = drafted
    wrong = []
    for raw, price, stock in TABLE:
        for field, word, want, label in (("price", "价格", price, "活动价"),
                                         ("stock", "库存", stock, "活动库存")):
            before = stored(db, tid, sku)
            reply = router.handle_text(db, Inbound("web", "jd-promo", "li.na"),
                                       f"改 {tid} {sku} {word}={raw}")
            after = stored(db, tid, sku)
            if INTERNAL in reply.text:
                wrong.append((raw, field, "internal error", reply.text))
            elif isinstance(want, str):
                if reply.ok or after != before or f"「{label}」的值「{raw.strip()}」无效" not in reply.text \
                        or reason(want, "zh-CN") not in reply.text:
                    wrong.append((raw, field, want, reply.text))
            elif not reply.ok or after[0 if field == "price" else 1] != want:
                wrong.append((raw, field, want, reply.text, after))
    assert not wrong, wrong


def test_the_refusal_reads_in_both_languages_and_an_unknown_field_is_named(drafted):
    from bot.core.errors import Invalid
    from bot.declarations.autofill import typed_value

    db, tid, sku = drafted
    with pytest.raises(Invalid) as refused:
        typed_value("stock", "²")
    assert refused.value.message("en") == ("Invalid promo stock '²': contains '²', a special digit "
                                           "(superscript, circled …); type plain digits 0-9")
    assert refused.value.message("zh-CN").startswith("「活动库存」的值「²」无效:含有「²」")
    unknown = router.handle_text(db, Inbound("web", "jd-promo", "li.na"), f"改 {tid} {sku} 颜色=红")
    assert not unknown.ok and "不认识「颜色」" in unknown.text
    spaced = router.handle_text(db, Inbound("web", "jd-promo", "li.na"), f"改 {tid} {sku} 价格 = 99 元")
    assert spaced.ok, spaced.text
    assert stored(db, tid, sku)[0] == Decimal("99.00")


def test_the_console_line_endpoint_answers_422_with_the_reason_never_500(settings, seeded):
    from bot.web.app import create_app

    with TestClient(create_app(settings)) as client:
        tid = pool.task(seeded, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                        state="claimed")
        pool.act(seeded, tid, "draft", "li.na")
        with seeded.session() as s:
            sku = current(s, tid)[1][0].sku
        wrong = []
        for raw, price, stock in TABLE:
            for field, want in (("price", price), ("stock", stock)):
                response = client.post(f"/console/api/declarations/{tid}/lines",
                                       json={"user": "li.na", "sku": sku, field: raw})
                if isinstance(want, str):
                    message = response.json().get("detail", {}).get("message", "") \
                        if response.status_code == 422 else ""
                    if response.status_code != 422 or reason(want, "zh-CN") not in message:
                        wrong.append((raw, field, response.status_code, response.text[:200]))
                    continue
                line = next((ln for ln in response.json().get("lines", []) if ln["sku"] == sku), {}) \
                    if response.status_code == 200 else {}
                got = line.get("promo_price" if field == "price" else "promo_stock")
                if str(got) != str(want):
                    wrong.append((raw, field, response.status_code, got, want))
        assert not wrong, wrong
        number = client.post(f"/console/api/declarations/{tid}/lines",
                             json={"user": "li.na", "sku": sku, "price": 88.8, "stock": 40})
        assert number.status_code == 200  # JSON numbers are numbers too
        assert stored(seeded, tid, sku) == (Decimal("88.80"), 40)


def test_imports_use_the_same_parser(db, tmp_path):
    rows = ["sku,title,list_price,stock"] + [
        f'S-{i},x,"{raw}","{raw}"' for i, (raw, _, _) in enumerate(TABLE)]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = importers.import_products(db, tmp_path / "p.csv")
    errors = {(e.row, e.column): e.key for e in report.errors}
    for i, (raw, price, stock) in enumerate(TABLE):
        row = i + 2
        if raw == "0":
            price = Decimal("0.00")  # a list price of 0 is a value; only a promo price must be > 0
        if raw == "99.999":
            price = Decimal("100.00")  # a file's money cell is rounded to the cent
        if raw == "２０００００００００":  # the pool's columns are wider than a promo line's
            price, stock = Decimal("2000000000.00"), 2_000_000_000
        for column, want in (("list_price", price), ("stock", stock)):
            if isinstance(want, str):
                assert errors.get((row, column)) == want, (raw, column, errors.get((row, column)))
            else:
                assert (row, column) not in errors, (raw, column, errors[(row, column)])
    message = next(e for e in report.errors if e.value == "²").message("en")
    assert message.startswith("row 2, list_price = ²: contains '²', a special digit")
