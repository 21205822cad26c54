"""Units a declared campaign will sell, from the SKU's history and its weekly seasonality.

The model is **Holt-Winters** (additive damped trend and additive weekly season) in its
state-space form, statsmodels' ``ETSModel``, which gives prediction intervals
(docs/decisions.md says why this library). With less history it steps down and says so:

| days of history | method | interval |
|---|---|---|
| ≥ 2 weeks + 2 days | ``holt_winters`` | the model's 80 % prediction interval |
| 4 – 15 | ``holt`` (damped trend, no season) | the model's 80 % interval |
| 1 – 3 | ``mean`` (of those days) | ± 50 % |
| none | part 1's ``simple_estimate`` (stock × sell-through) | its own |

**History** is the SKU's daily units on the campaign's platform from the imported campaign
results (``campaign_results`` rows with a day; slots of one day added up), over the last
365 days before the campaign. A calendar day without a result is filled with the mean of the
same weekday's days that have one, so the weekly phase holds across gaps between campaigns.
The forecast runs from the day after the last result to the campaign's last day; its days
inside the event are added up (the interval of the sum is √Σ of the daily half-widths²).
A campaign without event dates is taken to last ``DEFAULT_DAYS`` days from its start (or
from the day after the history).

``expected_units`` is the function part 1's scenarios call for expected units
(``bot.insight.scenarios.set_forecast``); it scales by the price response of the pricing
policy (``demand.elasticity``) from the history's own average price, and never passes the
promo stock.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from sqlmodel import Session, select

from bot.core.timefmt import local_date
from bot.insight import scenarios
from bot.insight.margin import Deal
from bot.insight.scenarios import Estimate
from storage.models import Campaign
from storage.models_results import CampaignResult

log = logging.getLogger(__name__)
SEASON = 7
LEVEL = 0.8  # the interval's coverage
HISTORY_DAYS = 365
MAX_HORIZON = 180
DEFAULT_DAYS = 3


@dataclass(frozen=True)
class Band:
    low: float
    mid: float
    high: float


@dataclass(frozen=True)
class SeriesForecast:
    method: str  # holt_winters, holt, mean, none
    steps: tuple[Band, ...]

    def total(self, indexes: Sequence[int] | None = None) -> Band:
        chosen = [self.steps[i] for i in (indexes if indexes is not None
                                          else range(len(self.steps)))]
        mid = sum(b.mid for b in chosen)
        below = math.sqrt(sum((b.mid - b.low) ** 2 for b in chosen))
        above = math.sqrt(sum((b.high - b.mid) ** 2 for b in chosen))
        return Band(max(mid - below, 0.0), mid, mid + above)


def _ets(values: Sequence[float], horizon: int, seasonal: bool) -> list[Band]:
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = pd.Series(np.asarray(values, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short, flat series
        fit = ETSModel(y, error="add", trend="add", damped_trend=True,
                       seasonal="add" if seasonal else None,
                       seasonal_periods=SEASON if seasonal else None).fit(disp=False)
        frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1) \
            .summary_frame(alpha=1 - LEVEL)
    out = []
    for mean, low, high in zip(frame["mean"], frame["pi_lower"], frame["pi_upper"],
                               strict=True):
        if not all(math.isfinite(v) for v in (mean, low, high)):
            raise ValueError("the model gave no finite forecast")
        mid = max(float(mean), 0.0)
        out.append(Band(max(float(low), 0.0), mid, max(float(high), mid)))
    return out


def series_forecast(values: Sequence[float], horizon: int) -> SeriesForecast:
    """The next ``horizon`` values of a daily series (see the module's table)."""
    values = [max(float(v), 0.0) for v in values]
    horizon = max(0, min(int(horizon), MAX_HORIZON))
    if not values or horizon == 0:
        return SeriesForecast("none", ())
    if len(values) >= 4:
        seasonal = len(values) >= 2 * SEASON + 2
        try:
            return SeriesForecast("holt_winters" if seasonal else "holt",
                                  tuple(_ets(values, horizon, seasonal)))
        except Exception as exc:  # noqa: BLE001 - a degenerate series: the plain mean below
            log.info("forecast model failed, using the mean",
                     extra={"n": len(values), "error": repr(exc)[:200]})
    recent = values[-SEASON:]
    mean = sum(recent) / len(recent)
    return SeriesForecast("mean", tuple(Band(mean * 0.5, mean, mean * 1.5)
                                        for _ in range(horizon)))


def naive_last(values: Sequence[float], horizon: int) -> list[float]:
    """The baseline a forecast must beat: tomorrow sells what the last day sold."""
    return [float(values[-1])] * horizon if values else [0.0] * horizon


def backtest(series: Sequence[Sequence[float]], horizon: int = SEASON) -> dict:
    """Hold out the last ``horizon`` values of each series; mean absolute error of the
    forecast and of the naive last value, and how often the truth fell in the interval."""
    errors, naive, inside, n = 0.0, 0.0, 0, 0
    for values in series:
        train, test = list(values[:-horizon]), list(values[-horizon:])
        found = series_forecast(train, horizon)
        for band, last, truth in zip(found.steps, naive_last(train, horizon), test,
                                     strict=True):
            errors += abs(band.mid - truth)
            naive += abs(last - truth)
            inside += band.low <= truth <= band.high
            n += 1
    return {"series": len(series), "points": n, "mae": errors / n if n else None,
            "mae_naive": naive / n if n else None, "coverage": inside / n if n else None}


# -- a SKU on a platform -------------------------------------------------------------------------

def daily_units(session: Session, platform: str, sku: str,
                before: date | None = None) -> list[tuple[date, int, Decimal]]:
    """(day, units, GMV) of the SKU on the platform from the results, oldest first."""
    rows = session.exec(select(CampaignResult.day, CampaignResult.units, CampaignResult.gmv)
                        .where(CampaignResult.platform == platform, CampaignResult.sku == sku,
                               CampaignResult.day != "")).all()
    days: dict[date, list] = {}
    for day_text, units, gmv in rows:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            continue
        if before is not None and (day >= before or day < before - timedelta(HISTORY_DAYS)):
            continue
        entry = days.setdefault(day, [0, Decimal("0")])
        entry[0] += units
        entry[1] += gmv
    return [(d, u, g) for d, (u, g) in sorted(days.items())]


def calendar(history: list[tuple[date, int, Decimal]]) -> list[float]:
    """Every day from the first to the last result; a missing day is its weekday's mean."""
    if not history:
        return []
    seen = {d: float(u) for d, u, _ in history}
    by_weekday: dict[int, list[float]] = {}
    for d, u in seen.items():
        by_weekday.setdefault(d.weekday(), []).append(u)
    overall = sum(seen.values()) / len(seen)
    first, last = history[0][0], history[-1][0]
    out = []
    for i in range((last - first).days + 1):
        d = first + timedelta(i)
        same = by_weekday.get(d.weekday())
        out.append(seen.get(d, sum(same) / len(same) if same else overall))
    return out


def event_days(campaign: Campaign, after: date) -> list[date]:
    """The campaign's days (team zone) that come after ``after``."""
    start = local_date(campaign.event_start) if campaign.event_start else None
    end = local_date(campaign.event_end) if campaign.event_end else None
    start = start or after + timedelta(1)
    end = end if end and end >= start else start + timedelta(DEFAULT_DAYS - 1)
    end = min(end, start + timedelta(MAX_HORIZON))
    return [start + timedelta(i) for i in range((end - start).days + 1)
            if start + timedelta(i) > after]


@lru_cache(maxsize=512)
def _cached(values: tuple[float, ...], horizon: int) -> SeriesForecast:
    return series_forecast(values, horizon)


@dataclass(frozen=True)
class SkuForecast:
    sku: str
    method: str
    history_days: int
    campaigns: int
    band: Band
    price: Decimal | None  # the history's average price (GMV ÷ units)


def sku_forecast(session: Session, campaign: Campaign, sku: str,
                 before: date | None = None) -> SkuForecast | None:
    """Units of ``sku`` over the campaign's days after its history; None without any daily
    history. History ends before the campaign starts, or before ``before`` (a running
    campaign: its own days so far count, the forecast covers the days left)."""
    cutoff = before or (local_date(campaign.event_start) if campaign.event_start else None)
    history = daily_units(session, campaign.platform, sku, cutoff)
    if not history:
        return None
    values = calendar(history)
    last = history[-1][0]
    days = event_days(campaign, last)
    if not days:
        return None
    horizon = (days[-1] - last).days
    found = _cached(tuple(values), horizon)
    indexes = [(d - last).days - 1 for d in days]
    units = sum(u for _, u, _ in history)
    gmv = sum((g for _, _, g in history), Decimal("0"))
    campaigns = session.exec(select(CampaignResult.campaign_id).where(
        CampaignResult.platform == campaign.platform, CampaignResult.sku == sku,
        CampaignResult.day != "").distinct()).all()
    return SkuForecast(sku, found.method, len(history), len(campaigns), found.total(indexes),
                       (gmv / units).quantize(Decimal("0.01")) if units else None)


def expected_units(session: Session, found: Deal, sku: str, price: Decimal,
                   reference: Decimal, cap: int) -> Estimate:
    """Part 1's ``Forecast``: expected units of ``sku`` at ``price`` for the deal's campaign
    (low, mid, high), never above ``cap``; part 1's simple estimate without daily history."""
    if cap <= 0 or price <= 0:
        return Estimate(0, 0, 0, "declared")
    forecast = sku_forecast(session, found.campaign, sku)
    if forecast is None:
        return scenarios.simple_estimate(session, found, sku, price, reference, cap)
    elasticity = float(found.policy.knob("demand", "elasticity", "-2"))
    base = forecast.price or reference
    factor = math.pow(float(price / base), elasticity) if base and base > 0 else 1.0

    def units(value: float, down: bool = False) -> int:
        scaled = Decimal(str(value * factor))
        whole = int(scaled.to_integral_value(rounding=ROUND_DOWN)) if down else \
            int(scaled.to_integral_value())
        return max(0, min(cap, whole))

    band = forecast.band
    mid = units(band.mid)
    return Estimate(min(units(band.low, down=True), mid), mid, max(units(band.high), mid),
                    "history", forecast.campaigns)
