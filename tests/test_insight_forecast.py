"""The units forecast: a back-test on synthetic weekly-seasonal series (it must beat
tomorrow-sells-what-today-sold), the scenarios' expected units from a SKU's history, the
``/forecast`` API and the supplier's plan (xlsx)."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import httpx
from openpyxl import load_workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.insight import forecast, scenarios
from bot.insight.margin import deal
from storage.models import Declaration, DeclarationLine, Product, Task
from tests import insight_decisions as history


def synthetic(n: int = 12, days: int = 70, seed: int = 7) -> list[list[float]]:
    """Daily units: a level, a trend, a weekly season (weekends up) and noise."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        base, trend = rng.uniform(20, 200), rng.uniform(-0.3, 0.8)
        amp, phase = rng.uniform(0.2, 0.5) * base, rng.randrange(7)
        out.append([max(0.0, base + trend * i + amp * math.sin(2 * math.pi * (i + phase) / 7)
                        + rng.gauss(0, 0.08 * base)) for i in range(days)])
    return out


def test_holt_winters_beats_the_naive_last_value_on_seasonal_series():
    found = forecast.backtest(synthetic(), horizon=7)
    print(f"\nforecast back-test: MAE {found['mae']:.2f} vs naive {found['mae_naive']:.2f}, "
          f"80% interval covered {found['coverage']:.0%} of {found['points']} days")
    assert found["points"] == 84
    assert found["mae"] < 0.6 * found["mae_naive"]
    assert found["coverage"] >= 0.5
    short = forecast.series_forecast([5, 7, 6], 3)  # a few days: the mean, said so
    assert short.method == "mean" and short.steps[0].mid == 6
    assert forecast.series_forecast([], 3).method == "none"


def _declare(db, ids) -> int:
    task_id = ids["new_daily"]
    with db.session() as s:
        task = s.get(Task, task_id)
        task.state = "drafting"
        s.add(task)
        d = Declaration(task_id=task_id, version=1)
        s.add(d)
        s.flush()
        for sku, price, stock in (("P1", "169.15", 300), ("P3", "50.15", 20)):
            s.add(DeclarationLine(declaration_id=d.id, sku=sku, promo_price=Decimal(price),
                                  list_price=Decimal("199.00" if sku == "P1" else "59.00"),
                                  promo_stock=stock))
        p3 = s.exec(select(Product).where(Product.sku == "P3")).one()
        p3.stock = 25  # safety stock 20
        s.add(p3)
    return task_id


def test_expected_units_come_from_history_with_an_interval_and_the_stock_cap(db):
    task_id = _declare(db, history.build(db))
    with db.session() as s:
        found = deal(s, s.get(Task, task_id))
        at_history = forecast.expected_units(s, found, "P1", Decimal("169.15"),
                                             Decimal("169.15"), 300)
        deeper = forecast.expected_units(s, found, "P1", Decimal("149.00"),
                                         Decimal("169.15"), 300)
        capped = forecast.expected_units(s, found, "P1", Decimal("169.15"),
                                         Decimal("169.15"), 10)
        none = forecast.expected_units(s, found, "P3", Decimal("50.15"), Decimal("50.15"), 20)
        sku = forecast.sku_forecast(s, found.campaign, "P1")
    assert sku.method == "holt_winters" and sku.history_days == 2 * 3 * history.COUNT // 2
    assert at_history.basis == "history" and at_history.past == history.COUNT
    assert 0 < at_history.low <= at_history.mid <= at_history.high <= 300
    assert deeper.mid > at_history.mid  # cheaper sells more (the policy's elasticity)
    assert capped.high <= 10
    assert none.basis == "declared"  # no daily history: part 1's simple estimate


def test_scenarios_use_the_forecast_once_installed(live):
    db = live.container.db
    ids = history.build(db)
    task_id = _declare(db, ids)
    assert scenarios.forecast() is forecast.expected_units  # set by the plugin
    body = httpx.get(f"{live.url}/api/tasks/{task_id}/scenarios").json()
    lines = {x["sku"]: x for x in body["options"][0]["lines"]}
    assert lines["P1"]["basis"] == "history" and lines["P3"]["basis"] == "declared"
    got = httpx.get(f"{live.url}/api/tasks/{task_id}/forecast").json()
    p1, p3 = (next(x for x in got["lines"] if x["sku"] == s) for s in ("P1", "P3"))
    assert p1["method"] == "holt_winters" and p1["units"]["mid"] > 0
    assert p3["method"] == "simple" and p3["replenish"] == 20 + p3["units"]["high"] - 25
    assert got["needed_by"] == "2026-11-19"
    assert httpx.get(f"{live.url}/api/tasks/{ids['new_subsidy']}/forecast").status_code == 422


def test_supply_plan_export_for_suppliers(db, tmp_path, monkeypatch):
    from bot.cli.main import app
    from bot.core.settings import get_settings

    task_id = _declare(db, history.build(db))
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        out = tmp_path / "plan.xlsx"
        result = CliRunner().invoke(app, ["export", "supply-plan", str(task_id), "--output",
                                          str(out), "--lang", "zh-CN"])
        assert result.exit_code == 0, result.output
        rows = list(load_workbook(out).active.iter_rows(values_only=True))
        assert rows[1][:3] == ("商品编码", "商品名称", "预计销量(低)")
        by_sku = {r[0]: r for r in rows[2:]}
        assert set(by_sku) == {"P1", "P3"}
        p3 = by_sku["P3"]
        assert p3[9] == 20 + p3[4] - 25 and str(p3[10])[:10] == "2026-11-19"
        missing = CliRunner().invoke(app, ["export", "supply-plan", "999", "-o", str(out)])
        assert missing.exit_code != 0
    finally:
        get_settings.cache_clear()
