"""Part 2's commands (registered from ``bot.insight.cli.register``):

    promopilot import results FILE|URL            # CSV/XLSX or an HTTP-JSON source
    promopilot import competitor-prices FILE|URL
    promopilot export supply-plan TASK --output plan.xlsx
    promopilot report roi [--since 2026-01-01] [--platform tmall] [--json]
    promopilot recommend show TASK | recommend backtest [--tune] [--json]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from bot.core.settings import get_settings

recommend_app = typer.Typer(help="Recommendations: apply / caution / skip, and how well "
                            "they predicted.")


def _lang(lang: str | None) -> str:
    from bot.core.i18n import normalise

    return normalise(lang or get_settings().language)


def _echo_report(report, lang: str) -> None:
    from bot.core.i18n import t

    for error in report.errors:
        typer.echo(error.message(lang), err=True)
    for line in report.notes(lang):
        typer.echo(line)
    typer.echo(t("results.summary", lang, n=report.imported, created=report.created,
                 updated=report.updated, bad=report.bad_rows))
    if report.errors and report.imported == 0:
        raise typer.Exit(1)


def _items(source: str, token: str | None, lang: str) -> Any:
    from bot.core.i18n import t
    from bot.insight import feeds

    try:
        return feeds.fetch(source, token)
    except feeds.FeedError as exc:
        typer.echo(t("results.fetch_failed", lang, url=source[:200], error=str(exc)), err=True)
        raise typer.Exit(1) from None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def register(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    from bot.declarations.cli import export_app, import_app, report_app

    app.add_typer(recommend_app, name="recommend")

    @import_app.command("results")
    def import_results(
        source: str = typer.Argument(..., help="results .xlsx/.csv, or an http(s) URL of JSON"),
        token: str = typer.Option(None, envvar="PROMOPILOT_RESULTS_TOKEN",
                                  help="Bearer token for a URL"),
        lang: str = typer.Option(None, help="zh-CN or en"),
    ) -> None:
        """Campaign results (曝光, 点击, 订单数, 件数, 成交额/GMV, 费用, 资源位 per campaign,
        SKU and day); a bad row is rejected with its reason, the others are imported."""
        from bot.insight import results

        lang = _lang(lang)
        container = build_container()
        tz = container.settings.timezone
        if _is_url(source):
            report = results.import_items(container.db, _items(source, token, lang),
                                          f"http-json:{source[:100]}", timezone=tz)
        else:
            report = results.import_file(container.db, Path(source), timezone=tz)
        _echo_report(report, lang)

    @import_app.command("competitor-prices")
    def import_competitor_prices(
        source: str = typer.Argument(..., help="平台, 商品编码, 竞品, 价格 (.xlsx/.csv) or a URL"),
        token: str = typer.Option(None, envvar="PROMOPILOT_COMPETITOR_PRICES_TOKEN"),
        lang: str = typer.Option(None, help="zh-CN or en"),
    ) -> None:
        """Competitors' prices of our SKUs (the alert job compares them with our prices)."""
        from bot.insight import alerts

        lang = _lang(lang)
        container = build_container()
        tz = container.settings.timezone
        if _is_url(source):
            report = alerts.import_prices_items(container.db, _items(source, token, lang),
                                                "http-json", timezone=tz)
        else:
            report = alerts.import_prices_file(container.db, Path(source), timezone=tz)
        _echo_report(report, lang)

    @export_app.command("supply-plan")
    def export_supply_plan(
        task_id: int = typer.Argument(..., help="the task id"),
        output: Path = typer.Option(..., "--output", "-o", help="the .xlsx to write"),
        lang: str = typer.Option(None, help="zh-CN or en (headers)"),
    ) -> None:
        """The forecast units and replenishment per SKU for suppliers, as an xlsx."""
        from bot.core.i18n import t
        from bot.insight import supply
        from storage.models import Task

        lang = _lang(lang)
        container = build_container()
        with container.db.session() as session:
            task = session.get(Task, task_id)
            if task is None:
                raise typer.BadParameter(t("err.not_found", lang, task_id=task_id))
            found, lines = supply.plan(session, task)
            if found is None or not lines:
                raise typer.BadParameter(t("err.no_declaration", lang, task_id=task_id))
            supply.write_xlsx(output, found, lines, lang)
        typer.echo(str(output))

    @report_app.command("roi")
    def report_roi(
        since: str = typer.Option(None, help="campaigns ended from this date (ISO)"),
        until: str = typer.Option(None, help="… until this date (ISO)"),
        platform: str = typer.Option(None, help="only these platforms (comma-separated)"),
        as_json: bool = typer.Option(False, "--json", help="machine-readable"),
        lang: str = typer.Option(None, help="zh-CN or en"),
    ) -> None:
        """ROI (GMV ÷ fees), margin and net per platform, campaign type and slot."""
        from bot.core.timefmt import zone
        from bot.insight import roi

        lang = _lang(lang)
        container = build_container()
        tz = zone(container.settings.timezone)
        try:
            start, end = (datetime.fromisoformat(x).replace(tzinfo=tz) if x else None
                          for x in (since, until))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        platforms = [p.strip() for p in (platform or "").split(",") if p.strip()]
        with container.db.session() as session:
            found = roi.report(session, start, end, platforms)
        if as_json:
            typer.echo(json.dumps(found, ensure_ascii=False, indent=1))
        else:
            typer.echo(roi_text(found, lang))

    @recommend_app.command("show")
    def recommend_show(task_id: int = typer.Argument(...),
                       as_json: bool = typer.Option(False, "--json"),
                       lang: str = typer.Option(None, help="zh-CN or en")) -> None:
        """The recommendation for a task with every reason."""
        from bot.insight.decide import explanation
        from bot.insight.recommend import recommend
        from storage.models import Task

        lang = _lang(lang)
        container = build_container()
        with container.db.session() as session:
            if as_json:
                task = session.get(Task, task_id)
                if task is None:
                    raise typer.BadParameter(f"#{task_id}")
                typer.echo(json.dumps(recommend(session, task).as_dict(lang),
                                      ensure_ascii=False, indent=1))
            else:
                typer.echo(explanation(session, task_id, lang))

    @recommend_app.command("backtest")
    def recommend_backtest(tune: bool = typer.Option(False, "--tune", help="also search for "
                                                     "better weights (reported, not written)"),
                           as_json: bool = typer.Option(False, "--json"),
                           lang: str = typer.Option(None, help="zh-CN or en")) -> None:
        """Replay every campaign with results: how often the verdict was right, and what
        the logged recommendations scored."""
        from bot.insight import recommend_backtest as bt

        lang = _lang(lang)
        container = build_container()
        with container.db.session() as session:
            found = bt.report(session, with_tuning=tune)
        typer.echo(json.dumps(found, ensure_ascii=False, indent=1) if as_json
                   else backtest_text(found, lang))


def roi_text(found: dict, lang: str) -> str:
    from bot.core.i18n import t
    from cards.review import platform_label

    lines = []
    for dimension in ("platform", "type", "slot"):
        lines.append(t(f"roi.by.{dimension}", lang))
        for row in found[f"by_{dimension}"]:
            key = [platform_label(row["key"][0], lang), *row["key"][1:]]
            lines.append("  " + t("roi.row", lang, what=" / ".join(k or "—" for k in key),
                                  gmv=row["gmv"], fees=row["fees"], roi=row["roi"] or "—",
                                  net=row["net"] or "—", units=row["units"],
                                  n=row["campaigns"]))
    total = found["total"]
    lines.append(t("roi.total", lang, gmv=total["gmv"], fees=total["fees"],
                   roi=total["roi"] or "—", net=total["net"] or "—"))
    return "\n".join(lines)


def backtest_text(found: dict, lang: str) -> str:
    from bot.core.i18n import t

    bt, logged = found["backtest"], found["logged"]
    rate = "—" if bt["hit_rate"] is None else f"{bt['hit_rate']:.0%}"
    lines = [t("rec.bt.summary", lang, cases=bt["cases"], decided=bt["decided"], hits=bt["hits"],
               rate=rate, apply=bt["verdicts"]["apply"], caution=bt["verdicts"]["caution"],
               skip=bt["verdicts"]["skip"], policy=found["policy"])]
    lines.append(t("rec.bt.logged", lang, n=logged["logged"], hits=logged["hits"],
                   decided=logged["decided"], rate="—" if logged["hit_rate"] is None
                   else f"{logged['hit_rate']:.0%}"))
    tuning = found.get("tuning")
    if tuning is not None:
        if tuning["changed"]:
            lines.append(t("rec.bt.tuned", lang, rate=f"{tuning['hit_rate']:.0%}",
                           weights="; ".join(f"{t(f'rec.factor.{k}', lang)} {v:g}"
                                            for k, v in tuning["changed"].items())))
        else:
            lines.append(t("rec.bt.kept", lang))
    return "\n".join(lines)
