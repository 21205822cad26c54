"""``promopilot audit export``: the audit log (every transition, approval decision and
submission attempt) as JSON lines or CSV, with phone numbers and e-mails masked. Times are
ISO 8601 in the team's zone with its offset (``2026-12-01T06:08:00+08:00``)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from sqlmodel import select

from bot.core import timefmt
from bot.core.masking import mask  # one masking for every export (BI export too)

FIELDS = ["id", "created_at", "task_id", "actor", "action", "from_state", "to_state",
          "event_id", "detail"]


def local_times(value: Any) -> Any:
    """Timestamps inside an event's detail (stored as UTC ISO strings) in the team's zone,
    like ``created_at``, so one export never mixes two zones."""
    if isinstance(value, str):
        return timefmt.iso_text(value)
    if isinstance(value, list):
        return [local_times(v) for v in value]
    if isinstance(value, dict):
        return {k: local_times(v) for k, v in value.items()}
    return value


def _parse(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name}: use ISO 8601, e.g. 2026-11-25T00:00:00+08:00") \
            from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{name}: give a time zone, e.g. +08:00 or Z")
    return parsed


def rows(db, task: int | None, since: datetime | None, until: datetime | None,
         unmasked: bool) -> Any:
    from storage.models import AuditEvent

    query = select(AuditEvent).order_by(AuditEvent.id)
    if task is not None:
        query = query.where(AuditEvent.task_id == task)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    with db.session() as session:
        for event in session.exec(query.execution_options(yield_per=500)):
            row = {"id": event.id, "created_at": timefmt.iso(event.created_at),
                   "task_id": event.task_id, "actor": event.actor, "action": event.action,
                   "from_state": event.from_state, "to_state": event.to_state,
                   "event_id": event.event_id, "detail": local_times(event.detail or {})}
            yield row if unmasked else mask(row)


def register(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    audit = typer.Typer(help="The audit log.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("export")
    def export(
        task: int | None = typer.Option(None, help="only this task"),
        since: str | None = typer.Option(None, help="from this time (ISO 8601 with zone)"),
        until: str | None = typer.Option(None, help="before this time (ISO 8601 with zone)"),
        fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv"),
        output: Path | None = typer.Option(None, "--output", "-o", help="file (default stdout)"),
        unmasked: bool = typer.Option(False, help="keep phone numbers and e-mails"),
    ) -> None:
        """Export audit events (approval decisions, submission attempts, transitions)."""
        from bot.core.settings import get_settings
        from storage.db import Database

        if fmt not in ("jsonl", "csv"):
            raise typer.BadParameter("--format: jsonl or csv")
        db = Database(get_settings().database_url)
        out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        count = 0
        try:
            writer = csv.DictWriter(out, fieldnames=FIELDS) if fmt == "csv" else None
            if writer:
                writer.writeheader()
            for row in rows(db, task, _parse(since, "--since"), _parse(until, "--until"),
                            unmasked):
                if writer:
                    writer.writerow({**row, "detail": json.dumps(row["detail"],
                                                                 ensure_ascii=False)})
                else:
                    out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                count += 1
        finally:
            if output:
                out.close()
            db.dispose()
        if output:
            typer.echo(f"exported {count} audit events to {output}", err=True)
