"""The review report's layouts, from the plain numbers the insight feature selected
(``bot.insight.review.gather``): the chat card, the chart (a PNG drawn with matplotlib's
headless Agg canvas) and the page (HTML with the chart inside).

The chart needs a font with Chinese glyphs for Chinese labels (``PROMOPILOT_CHART_FONT``,
else one found on the system, e.g. Debian's fonts-noto-cjk). Without one it is drawn with
English labels rather than empty boxes, and says so in the log once.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import threading
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from bot.core.i18n import has, looks_chinese, normalise, t
from bot.core.timefmt import stated, zone_name
from cards.model import Button, Card, CardField

log = logging.getLogger(__name__)
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                "WenQuanYi Zen Hei", "Noto Sans CJK", "Source Han Sans", "SimHei",
                "Microsoft YaHei", "PingFang SC")
COLORS = ("#4C78A8", "#54A24B", "#E45756", "#F58518")
_draw = threading.Lock()  # matplotlib's font settings are process-wide


def platform_label(code: str, lang: str) -> str:
    return t(f"cv.platform.{code}", lang) if has(f"cv.platform.{code}") else code


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def numbers(data: dict, lang: str) -> list[tuple[str, str]]:
    """The review's figures as (label, value), the same on the card and the page."""
    verdicts = data["accepted"] + data["rejected_platform"]
    return [
        (t("review.declarations", lang), str(data["declarations"])),
        (t("review.acceptance", lang), t("review.acceptance_value", lang,
                                         rate=_pct(data["acceptance_rate"]),
                                         accepted=data["accepted"], total=verdicts)),
        (t("review.roi", lang), data.get("roi") or "—"),
        (t("review.missed", lang), t("review.of", lang, n=data["missed"], of=data["deadlines"])),
        (t("review.hours_saved", lang), t("review.hours_value", lang,
                                          h=_num(data["hours_saved"]))),
        (t("review.avg_hours", lang), t("review.hours_value", lang,
                                        h=_num(data["avg_hours_to_submit"]))),
        (t("review.overtime", lang), t("review.of", lang, n=data["overtime"],
                                       of=data["person_submissions"])),
        (t("review.approval_rejections", lang), str(data["rejections_approval"])),
        (t("review.rework", lang), t("review.rework_value", lang, h=_num(data["rework_hours"]),
                                     open=data["reworks_open"])),
    ]


def reason_lines(data: dict, lang: str) -> list[str]:
    return [t("review.reason_line", lang, category=t(f"learn.cat.{r['category']}", lang),
              n=r["count"], sample=r["sample"]) for r in data["reasons"]]


def review_card(data: dict, lang: str, chart_url: str | None, page_url: str | None) -> Card:
    card = Card(kind="report", color="purple", title=t("review.title", lang, period=data["period"]),
                subtitle=t("review.team", lang, team=data["team"]) if data["team"] else "")
    card.fields = [CardField(label=label, value=value) for label, value in numbers(data, lang)]
    card.fields.append(CardField(label=t("review.reasons", lang), short=False,
                                 value="\n".join(reason_lines(data, lang))
                                 or t("review.no_reasons", lang)))
    if chart_url:
        card.buttons.append(Button(label=t("review.open_chart", lang), action="open",
                                   url=chart_url, style="primary"))
    if page_url:
        card.buttons.append(Button(label=t("review.open_page", lang), action="open", url=page_url))
    return card


# -- the chart ----------------------------------------------------------------------------

@lru_cache
def cjk_font(configured: str = "") -> str | None:
    """The family name of a font that has Chinese glyphs, or None."""
    from matplotlib import font_manager

    if configured and Path(configured).is_file():
        font_manager.fontManager.addfont(configured)
        return font_manager.FontProperties(fname=configured).get_name()
    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in names:
            return family
    for path in font_manager.findSystemFonts():  # installed after the font cache was made
        if any(k in Path(path).name for k in ("CJK", "SourceHan", "wqy", "SimHei", "msyh")):
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None


def chart_lang(lang: str, font: str | None) -> str:
    if normalise(lang) == "zh-CN" and font is None:
        _warn_no_font()
        return "en"
    return normalise(lang)


@lru_cache
def _warn_no_font() -> None:
    log.warning("no font with Chinese glyphs for the review chart: drawing English labels "
                "(install fonts-noto-cjk or set PROMOPILOT_CHART_FONT)")


def chart_png(data: dict, lang: str, font_file: str = "") -> bytes:
    """The review chart: per platform (submitted, accepted, rejected, missed deadlines)
    and the recent periods (declarations, acceptance rate)."""
    import matplotlib
    from matplotlib.figure import Figure

    font = cjk_font(font_file)
    lang = chart_lang(lang, font)
    team = data["team"] if not (font is None and looks_chinese(data["team"])) else \
        data.get("team_code", "")
    rc = {"font.family": [font, "DejaVu Sans"]} if font else {"font.family": ["DejaVu Sans"]}
    with _draw, matplotlib.rc_context(rc):
        fig = Figure(figsize=(11, 5.8), dpi=110)
        fig.suptitle(t("review.title", lang, period=data["period"]) + (f" · {team}" if team else ""),
                     fontsize=15, fontweight="bold")
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        _by_platform(left, data, lang)
        _trend(right, data, lang)
        fig.text(0.5, 0.025, t("review.chart_summary", lang, rate=_pct(data["acceptance_rate"]),
                              missed=data["missed"], deadlines=data["deadlines"],
                              hours=_num(data["hours_saved"]), roi=data.get("roi") or "—"),
                 ha="center", fontsize=11, color="#333333")
        fig.subplots_adjust(left=0.06, right=0.94, top=0.86, bottom=0.16, wspace=0.3)
        out = io.BytesIO()
        fig.savefig(out, format="png")
    return out.getvalue()


def _by_platform(ax, data: dict, lang: str) -> None:
    ax.set_title(t("review.chart.by_platform", lang))
    rows = data["platforms"]
    if not rows:
        ax.text(0.5, 0.5, t("review.chart.no_data", lang), ha="center", va="center",
                transform=ax.transAxes, fontsize=12, color="#666666")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    series = ("submitted", "accepted", "rejected", "missed")
    width = 0.8 / len(series)
    top = max([r[name] for r in rows for name in series] + [1])
    for i, (name, color) in enumerate(zip(series, COLORS, strict=True)):
        xs = [j + (i - 1.5) * width for j in range(len(rows))]
        values = [r[name] for r in rows]
        bars = ax.bar(xs, values, width, label=t(f"review.chart.{name}", lang), color=color)
        ax.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=9)
    ax.set_xticks(range(len(rows)), [platform_label(r["code"], lang) for r in rows])
    ax.set_xlim(-0.9, len(rows) - 0.1)
    ax.set_ylim(0, top * 1.3)  # room for the legend above the bars
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=9, loc="upper center", ncols=4, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _trend(ax, data: dict, lang: str) -> None:
    ax.set_title(t("review.chart.trend", lang))
    trend = data["trend"]
    xs = range(len(trend))
    counts = [p["declarations"] for p in trend]
    bars = ax.bar(xs, counts, 0.6, color=["#B8C7DC"] * (len(trend) - 1) + [COLORS[0]],
                  label=t("review.chart.declarations", lang))
    ax.bar_label(bars, labels=[str(v) if v else "" for v in counts], fontsize=9)
    ax.set_xticks(list(xs), [p["label"] for p in trend], fontsize=8)
    ax.set_ylim(0, max(counts + [1]) * 1.3)
    ax.yaxis.get_major_locator().set_params(integer=True)
    rate = ax.twinx()
    rates = [p["acceptance_rate"] * 100 if p["acceptance_rate"] is not None else float("nan")
             for p in trend]
    rate.plot(list(xs), rates, color=COLORS[1], marker="o", label=t("review.chart.rate", lang))
    rate.set_ylim(0, 130)
    rate.set_yticks([0, 25, 50, 75, 100])
    rate.yaxis.set_major_formatter("{x:.0f}%")
    handles = [bars, *rate.get_lines()]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=9, loc="upper center",
              ncols=2, frameon=False)
    ax.spines[["top"]].set_visible(False)
    rate.spines[["top"]].set_visible(False)


# -- the page -----------------------------------------------------------------------------

def page_html(data: dict, lang: str, png: bytes, generated: datetime) -> str:
    """A self-contained page: the figures, per platform, the top reasons and the chart."""
    lang = normalise(lang)
    e = html.escape
    figures = "".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>"
                      for label, value in numbers(data, lang))
    heads = ("review.page.platform", "review.chart.submitted", "review.chart.accepted",
             "review.chart.rejected", "review.chart.missed")
    platforms = "".join(
        "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in (
            platform_label(r["code"], lang), r["submitted"], r["accepted"], r["rejected"],
            r["missed"])) + "</tr>" for r in data["platforms"])
    reasons = "".join(f"<li>{e(line)}</li>" for line in reason_lines(data, lang)) or \
        f"<li>{e(t('review.no_reasons', lang))}</li>"
    title = t("review.title", lang, period=data["period"])
    team = f"<p>{e(t('review.team', lang, team=data['team']))}</p>" if data["team"] else ""
    image = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2rem;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}th,td{{border:1px solid #ddd;padding:.35rem .7rem;
text-align:left}}th{{background:#f5f5f5}}img{{max-width:100%}}.foot{{color:#777}}</style>
</head><body>
<h1>{e(title)}</h1>{team}
<p class="foot">{e(t('review.zone', lang, zone=zone_name(data.get('tz'))))}</p>
<table>{figures}</table>
<h2>{e(t('review.chart.by_platform', lang))}</h2>
<table><tr>{"".join(f"<th>{e(t(k, lang))}</th>" for k in heads)}</tr>{platforms}</table>
<h2>{e(t('review.reasons', lang))}</h2><ul>{reasons}</ul>
<img alt="{e(title)}" src="data:image/png;base64,{image}">
<p class="foot">{e(t('review.generated', lang, when=stated(generated, data.get('tz'))))}</p>
</body></html>
"""

