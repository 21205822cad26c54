"""``promopilot import …``, ``export …``, ``rules …`` and ``report rejections``.

Imports show their progress from the first row read (rows, per cent, time spent, about how
long is left), the columns of the file nothing was read from, and, when a file has errors,
every bad cell by row and the file's own column name; the exit code is 1 then, and nothing
was imported unless ``--skip-bad-rows`` was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bot.core.settings import get_settings

import_app = typer.Typer(help="Import the data pool (products, documents, price history).")
export_app = typer.Typer(help="Export the data pool.")
rules_app = typer.Typer(help="The platform rules knowledge base (rules/*.yaml).")
report_app = typer.Typer(help="Reports.")


def _db():
    from storage.db import Database

    return Database(get_settings().database_url)


def _lang(lang: str | None) -> str:
    return lang or get_settings().language


def duration(seconds: float, lang: str | None) -> str:
    """A span a person reads (``1 分 05 秒`` / ``1 min 05 s``), never a clock time."""
    from bot.core.i18n import t

    whole = max(int(round(seconds)), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return t("dur.hm", lang, h=hours, m=f"{minutes:02d}")
    if minutes:
        return t("dur.ms", lang, m=minutes, s=f"{secs:02d}")
    return t("dur.s", lang, s=secs)


class ProgressLine:
    """Import progress on one line of stderr from the first row read: rows, per cent, time
    spent and a duration left (``约 12 秒``), redrawn at most every ``every`` seconds."""

    def __init__(self, label: str, lang: str | None, every: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.lang, self.every, self.clock = label, lang, every, clock
        self.started = clock()
        self.shown = -every
        self.last = ""

    def text(self, done: int, total: int | None, phase: str = "read") -> str:
        from bot.core.i18n import t

        elapsed = self.clock() - self.started
        params = {"label": self.label, "done": f"{done:,}", "elapsed": duration(elapsed, self.lang),
                  "phase": t(f"imp.phase.{phase}", self.lang)}
        if not total or done > total:
            return t("imp.progress_open", self.lang, **params)
        left = elapsed / done * (total - done) if done else 0
        return t("imp.progress", self.lang, total=f"{total:,}", pct=done * 100 // total,
                 left=duration(left, self.lang), **params)

    def __call__(self, done: int, total: int | None = None, phase: str = "read") -> None:
        now = self.clock()
        if now - self.shown < self.every and done != total:
            return
        self.shown = now
        self.last = self.text(done, total, phase)
        typer.echo("\r" + self.last, err=True, nl=False)

    def close(self) -> None:
        if self.last:
            typer.echo("", err=True)


def _run_import(kind: str, path: Path, skip_bad_rows: bool, lang: str | None) -> None:
    from bot.declarations import importers

    settings = get_settings()
    fn = {"products": importers.import_products, "documents": importers.import_documents,
          "prices": importers.import_prices}[kind]
    from bot.core.i18n import t

    label = t({"products": "imp.kind.products", "documents": "imp.kind.documents",
               "prices": "imp.kind.prices"}[kind], _lang(lang))
    bar = ProgressLine(f"{label} {path.name}", _lang(lang))
    try:
        report = fn(_db(), path, skip_bad_rows=skip_bad_rows, timezone=settings.timezone,
                    progress=bar)
    finally:
        bar.close()
    for line in importers.error_lines(report, _lang(lang)):
        typer.echo(line, err=True)
    for line in report.notes(_lang(lang)):
        typer.echo(line)
    typer.echo(report.summary(_lang(lang), skipped=skip_bad_rows))
    if report.errors and (not skip_bad_rows or report.imported == 0):
        raise typer.Exit(1)


@import_app.command("products")
def import_products(
    file: Path = typer.Argument(..., help="products .xlsx or .csv (UTF-8 or GBK)"),
    template: bool = typer.Option(False, "--template", help="write an empty template to FILE"),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="import the good rows"),
    lang: str = typer.Option(None, help="zh-CN or en (messages, template headers)"),
) -> None:
    """Import products/SKUs; a file with errors imports nothing unless --skip-bad-rows."""
    if template:
        from bot.declarations.exporters import write_template

        write_template(file, _lang(lang))
        typer.echo(str(file))
        return
    _run_import("products", file, skip_bad_rows, lang)


@import_app.command("documents")
def import_documents(
    directory: Path = typer.Argument(..., help="folder with the files and documents.xlsx/csv"),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows"),
    lang: str = typer.Option(None),
) -> None:
    """Import qualification documents listed in the folder's manifest."""
    _run_import("documents", directory, skip_bad_rows, lang)


@import_app.command("prices")
def import_prices(
    file: Path = typer.Argument(..., help="sku, platform, price, date"),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows"),
    lang: str = typer.Option(None),
) -> None:
    """Import past selling prices (for "lowest price in the last N days")."""
    _run_import("prices", file, skip_bad_rows, lang)


@export_app.command("products")
def export_products(
    file: Path = typer.Argument(..., help=".xlsx or .csv"),
    lang: str = typer.Option("en", help="header language: en or zh-CN"),
    encoding: str = typer.Option("utf-8", help="csv only: utf-8 or gbk"),
) -> None:
    """Export the product pool in the import format."""
    from bot.declarations.exporters import export_products as export

    with _db().session() as session:
        count = export(session, file, lang, encoding)
    typer.echo(f"{count} → {file}")


@export_app.command("declaration")
def export_declaration(task_id: int, file: Path, lang: str = typer.Option("zh-CN")) -> None:
    """The platform's bulk-registration xlsx (or .zip with documents) for a task."""
    from bot.declarations import exporters

    with _db().session() as session:
        _, data = (exporters.bundle_bytes if file.suffix == ".zip" else exporters.workbook_bytes)(
            session, task_id, lang)
    file.write_bytes(data)
    typer.echo(str(file))


@rules_app.command("sync")
def rules_sync(author: str = typer.Option(None, help="recorded as the author of changes")) -> None:
    """Store a new version of every rules file that changed."""
    from bot.declarations import rules

    with _db().session() as session:
        stored = rules.sync(session, author=author)
        lines = [f"{r.platform} v{r.version} ({r.author})" for r in stored]
    typer.echo("\n".join(lines) or "no changes")


@rules_app.command("history")
def rules_history(platform: str) -> None:
    """Every version of a platform's rules: when, who, from where."""
    from bot.core.timefmt import stated
    from bot.declarations import rules

    with _db().session() as session:
        for row in rules.history(session, platform):
            typer.echo(f"v{row.version}  {stated(row.created_at)}  {row.author}  "
                       f"{row.source}  {row.note}")


@report_app.command("rejections")
def report_rejections(platform: str = typer.Option(None), days: int = 90,
                      lang: str = typer.Option(None)) -> None:
    """Top platform rejection reasons per platform."""
    from bot.declarations.learning import report_text

    with _db().session() as session:
        typer.echo(report_text(session, _lang(lang), platform, days))


def register(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
    app.add_typer(rules_app, name="rules")
    app.add_typer(report_app, name="report")
