"""The decisions feature's commands. Registered from ``bot.cli.main.CLI_MODULES``.

``promopilot report metrics`` and ``report review`` join the ``report`` group and
``export declarations`` the ``export`` group of ``bot.declarations.cli``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bot.core.settings import get_settings


def _db():
    from storage.db import Database

    return Database(get_settings().database_url)


def _lang(lang: str | None) -> str:
    from bot.core.i18n import normalise

    return normalise(lang or get_settings().language)


def _window(since: str, until: str | None, team: str | None, lang: str, session) -> tuple:
    """(start, end, team id) or a clear refusal in the reader's language."""
    from sqlmodel import select

    from bot.core.errors import DomainError
    from bot.core.i18n import t
    from bot.insight.metrics import parse_since
    from storage.models import Team
    from storage.types import utcnow

    now = utcnow()
    try:
        start = parse_since(since, now)
        end = parse_since(until, now) if until else now
    except DomainError as exc:
        raise typer.BadParameter(exc.message(lang)) from None
    team_id = None
    if team:
        row = session.exec(select(Team).where(Team.code == team)).first()
        if row is None:
            raise typer.BadParameter(t("insight.unknown_team", lang, team=team))
        team_id = row.id
    return start, end, team_id


def _platforms(platform: str | None) -> list[str]:
    return [p.strip() for p in (platform or "").split(",") if p.strip()]


def metrics_text(found, lang: str) -> str:
    """The metrics as a table a person reads (one line per platform and month, totals)."""
    from bot.core.i18n import t
    from bot.core.timefmt import stated
    from cards.review import platform_label

    def cells(row) -> list[str]:
        avg = row.avg_hours_to_submit
        return [platform_label(row.platform, lang) if row.platform != "*" else t(
                    "insight.total", lang), row.month if row.month != "*" else "",
                str(row.submitted), "—" if avg is None else f"{avg:.1f}",
                f"{row.missed}/{row.deadlines}",
                f"{row.rejections_approval}/{row.rejections_platform}",
                f"{row.rework_hours:.1f}", f"{row.overtime}/{row.person_submissions}"]

    head = [t(f"insight.col.{c}", lang) for c in (
        "platform", "month", "submitted", "avg_hours", "missed", "rejections", "rework_hours",
        "overtime")]
    body = [cells(r) for r in found.rows]
    body += [cells(found.total(p)) for p in found.platforms()] if len(found.rows) > 1 else []
    lines = [t("insight.metrics_title", lang, since=stated(found.since), until=stated(found.until))]
    if not body:
        return "\n".join([*lines, t("insight.metrics_empty", lang)])
    table = [head, *body, cells(found.total())]
    widths = [max(_width(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        lines.append("  ".join(c + " " * (w - _width(c))
                               for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def register(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    from bot.declarations.cli import export_app, report_app

    _register_decisions(app, build_container)
    from bot.insight import decide_cli  # part 2: results, ROI, supply plan, recommendations

    decide_cli.register(app, build_container)

    @report_app.command("metrics")
    def report_metrics(
        since: str = typer.Option("30d", help="30d, 12w, 48h, a date or an ISO time"),
        until: str = typer.Option(None, help="end of the window (default: now)"),
        platform: str = typer.Option(None, help="only these platforms (comma-separated)"),
        team: str = typer.Option(None, help="only this team (code)"),
        as_json: bool = typer.Option(False, "--json", help="machine-readable"),
        lang: str = typer.Option(None, help="zh-CN or en"),
    ) -> None:
        """Team cost metrics per platform and month: hours from notice to submission,
        deadlines missed, rejections and rework, overtime submissions."""
        from bot.insight.metrics import compute

        lang = _lang(lang)
        db = _db()
        try:
            with db.session() as session:
                start, end, team_id = _window(since, until, team, lang, session)
                found = compute(session, start, end, platforms=_platforms(platform),
                                team_id=team_id)
        finally:
            db.dispose()
        if as_json:
            typer.echo(json.dumps(found.as_dict(), ensure_ascii=False, indent=1))
        else:
            typer.echo(metrics_text(found, lang))

    @report_app.command("review")
    def report_review(
        output: Path = typer.Option(..., "--output", "-o", help="a .png or .html file"),
        since: str = typer.Option("7d", help="7d, 4w, a date or an ISO time"),
        until: str = typer.Option(None, help="end of the window (default: now)"),
        fmt: str = typer.Option(None, "--format", help="png or html (default: the suffix)"),
        platform: str = typer.Option(None, help="only these platforms (comma-separated)"),
        team: str = typer.Option(None, help="only this team (code)"),
        lang: str = typer.Option(None, help="zh-CN or en"),
    ) -> None:
        """The review report (the leader's card) as a chart (PNG) or a page (HTML)."""
        from bot.core.i18n import t
        from bot.insight.metrics import get_insight_settings
        from bot.insight.review import gather
        from cards.review import chart_png, cjk_font, page_html
        from storage.types import utcnow

        lang = _lang(lang)
        kind = (fmt or output.suffix.lstrip(".")).lower()
        if kind not in ("png", "html"):
            raise typer.BadParameter(t("insight.bad_review_format", lang, value=kind[:20],
                                       formats="png, html"))
        db = _db()
        try:
            with db.session() as session:
                start, end, team_id = _window(since, until, team, lang, session)
                data = gather(session, start, end, team_id=team_id,
                              platforms=_platforms(platform) or None)
        finally:
            db.dispose()
        font = get_insight_settings().chart_font
        png = chart_png(data, lang, font)
        output.write_bytes(png if kind == "png" else page_html(data, lang, png, utcnow())
                           .encode("utf-8"))
        if lang == "zh-CN" and cjk_font(font) is None:
            typer.echo(t("insight.no_cjk_font", lang, package="fonts-noto-cjk",
                         variable="PROMOPILOT_CHART_FONT"), err=True)
        typer.echo(str(output))

    @export_app.command("declarations")
    def export_declarations(
        output: Path = typer.Option(..., "--output", "-o", help="the file to write"),
        fmt: str = typer.Option("csv", "--format", help="csv, xlsx or parquet"),
        since: str = typer.Option("30d", help="tasks noticed since: 30d, a date, an ISO time"),
        until: str = typer.Option(None, help="noticed before (default: now)"),
        platform: str = typer.Option(None, help="only these platforms (comma-separated)"),
        team: str = typer.Option(None, help="only this team (code)"),
        unmasked: bool = typer.Option(False, help="keep names and phone numbers"),
        lang: str = typer.Option(None, help="zh-CN or en (messages)"),
    ) -> None:
        """Every declaration line with its task, campaign, people and outcome, for BI;
        names and phone numbers masked unless --unmasked."""
        from bot.core.errors import DomainError
        from bot.core.i18n import t
        from bot.insight import bi_export

        lang = _lang(lang)
        try:
            kind = bi_export.check_format(fmt)
        except DomainError as exc:
            raise typer.BadParameter(exc.message(lang)) from None
        db = _db()
        try:
            with db.session() as session:
                start, end, team_id = _window(since, until, team, lang, session)
                data = bi_export.rows(session, start, end, platforms=_platforms(platform),
                                      team_id=team_id, unmasked=unmasked)
        finally:
            db.dispose()
        with output.open("wb") as fh:
            count = bi_export.write(kind, data, fh)
        typer.echo(t("insight.exported", lang, n=count, file=str(output)))


# -- costs and scenarios (part 1) ------------------------------------------------------------------

def costs_text(states: list, lang: str) -> str:
    """``promopilot costs``: each cost source's last sync, counts, error and rejected rows."""
    from bot.core.timefmt import stated
    from bot.insight.costs import reason

    if not states:
        return "no cost sources configured (config/costs.yaml or PROMOPILOT_COSTS_FILE)"
    out = []
    for s in states:
        c = s.last_counts or {}
        out.append(f"{'OK  ' if s.ok else 'FAIL'} {s.name:<28} {s.kind or '-':<10} "
                   f"last_sync={stated(s.last_success)} rows={c.get('rows', 0)} "
                   f"updated={c.get('updated', 0)} unknown={c.get('unknown', 0)} "
                   f"rejected={len(s.rejections or {})} failures={s.consecutive_failures} "
                   f"next={stated(s.next_attempt_at)}")
        if s.last_error:
            out.append(f"     last error: {s.last_error}")
        newest = sorted((s.rejections or {}).items(), key=lambda i: str(i[1].get("first")),
                        reverse=True)
        for ref, e in newest[:3]:
            out.append(f"     rejected {ref}: {reason(e.get('key', ''), e.get('params', {}), lang)}")
        if len(newest) > 3:
            out.append(f"     … {len(newest) - 3} more (--json lists the newest 10)")
    return "\n".join(out)


def _register_decisions(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    costs_app = typer.Typer(help="Cost and stock sources (ERP/WMS): health and sync.",
                            invoke_without_command=True)
    app.add_typer(costs_app, name="costs")

    @costs_app.callback()
    def costs_status(ctx: typer.Context,
                     as_json: bool = typer.Option(False, "--json", help="machine-readable"),
                     lang: str = typer.Option(None, help="zh-CN or en (reasons)")) -> None:
        """Each cost source: last sync, what it changed, the last error, rejected rows (from
        the database: any replica). Exits 1 when a source is failing."""
        if ctx.invoked_subcommand is not None:
            return
        from bot.insight.costs import CostSync, as_dict

        container = build_container()
        states = CostSync(container.db, container.cost_sources).states()
        if as_json:
            typer.echo(json.dumps([as_dict(s) for s in states], ensure_ascii=False, indent=2))
        else:
            typer.echo(costs_text(states, _lang(lang)))
        if any(not s.ok for s in states):
            raise typer.Exit(code=1)

    @costs_app.command("sync")
    def costs_sync(source: str = typer.Option(None, help="only this source (name)"),
                   lang: str = typer.Option(None, help="zh-CN or en (reasons)")) -> None:
        """Sync every cost source now (due or not); ops cards go out through the server."""
        from bot.insight.costs import CostSync

        container = build_container()
        sources = [s for s in container.cost_sources if source in (None, s.name)]
        if source and not sources:
            raise typer.BadParameter(f"no cost source named {source!r}")
        sync = CostSync(container.db, sources)
        reports = sync.run(only_due=False)
        for name, report in reports.items():
            typer.echo(json.dumps({"source": name, **report.counts(), "failed": report.failed},
                                  ensure_ascii=False))
        typer.echo(costs_text(sync.states(), _lang(lang)))
        if any(r.failed for r in reports.values()):
            raise typer.Exit(code=1)

    @app.command("scenarios")
    def scenarios_command(task_id: int = typer.Argument(..., help="the task id"),
                          as_json: bool = typer.Option(False, "--json", help="machine-readable"),
                          lang: str = typer.Option(None, help="zh-CN or en")) -> None:
        """The options for a task's declaration side by side: units, margin after fees,
        stock against the red line, budget, risks; and the guards' findings."""
        from bot.core.i18n import t
        from bot.insight import guards
        from bot.insight import scenarios as options
        from storage.models import Task

        lang = _lang(lang)
        db = _db()
        try:
            with db.session() as session:
                task = session.get(Task, task_id)
                if task is None:
                    raise typer.BadParameter(t("err.not_found", lang, task_id=task_id))
                found, listed = options.scenarios(session, task)
                if found is None:
                    raise typer.BadParameter(t("err.no_declaration", lang, task_id=task_id))
                risks = guards.findings(session, found)
                body = options.as_dict(found, listed, lang)
                text = "\n".join([*(f"{chr(65 + i)} {options.row_text(o, lang)}"
                                     for i, o in enumerate(listed)),
                                   options.basis_text(found, listed, lang),
                                   *(f"{'✗' if f.severity == 'error' else '⚠'} "
                                     f"{f.describe(lang)}" for f in risks)])
        finally:
            db.dispose()
        if as_json:
            body["risks"] = [f.as_dict(lang) for f in risks]
            typer.echo(json.dumps(body, ensure_ascii=False, indent=1))
        else:
            typer.echo(text)
