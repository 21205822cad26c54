"""The BI export: every declaration line with its task, campaign, people and outcome, as CSV,
Excel or Parquet, for the team's BI tool. ``promopilot export declarations`` and
``GET /api/export``.

One row per line of a task's current declaration; a task without a declaration is one row
with the line columns empty (so skipped and missed campaigns are counted too). People's
names are masked (``bot.core.masking``: 李娜 → 李*) and phone numbers and e-mail addresses
inside any text too, unless an admin asks for them (``--unmasked`` on the CLI; an admin's
``unmasked=true`` on the API).

Times: CSV has ISO 8601 in the row's team zone with its offset; Excel has the team's wall
clock (the ``zone`` column names it); Parquet has UTC timestamps. Money is exact (Decimal
in Excel and CSV text, ``decimal128(14, 2)`` in Parquet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from sqlmodel import Session, select

from bot.core import timefmt
from bot.core.errors import Invalid
from bot.core.masking import mask, mask_name
from bot.core.settings import get_settings
from storage.models import (
    ApprovalStep,
    AuditEvent,
    Campaign,
    Declaration,
    DeclarationLine,
    Product,
    Task,
    Team,
    User,
)

FORMATS = ("csv", "xlsx", "parquet")
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "parquet": "application/vnd.apache.parquet"}
# (name, kind): kind is int, str, money, ratio or time
COLUMNS: list[tuple[str, str]] = [
    ("task_id", "int"), ("platform", "str"), ("campaign_id", "int"),
    ("campaign_external_id", "str"), ("campaign_title", "str"), ("campaign_type", "str"),
    ("team", "str"), ("state", "str"), ("noticed_at", "time"), ("deadline", "time"),
    ("event_start", "time"), ("event_end", "time"), ("submitted_at", "time"),
    ("verdict", "str"), ("verdict_at", "time"), ("owner", "str"), ("owner_name", "str"),
    ("declaration_version", "int"), ("declared_by", "str"), ("approved_by", "str"),
    ("note", "str"), ("sku", "str"), ("product_title", "str"), ("list_price", "money"),
    ("promo_price", "money"), ("discount", "ratio"), ("promo_stock", "int"),
    ("line_result", "str"), ("reason_code", "str"), ("reason_text", "str"), ("zone", "str"),
]
FIELDS = [name for name, _ in COLUMNS]
PEOPLE = ("owner", "owner_name", "declared_by")  # approved_by is masked name by name
TEXTS = ("campaign_title", "campaign_type", "note", "product_title", "reason_text")  # free text
CHUNK = 500


def check_format(fmt: str) -> str:
    fmt = (fmt or "").strip().lower()
    if fmt not in FORMATS:
        raise Invalid("insight.bad_format", value=fmt[:20], formats=", ".join(FORMATS))
    return fmt


def _in_chunks(session: Session, query_for, ids: list[int]) -> Iterator[Any]:
    for i in range(0, len(ids), CHUNK):
        yield from session.exec(query_for(ids[i:i + CHUNK]))


def rows(session: Session, since: datetime, until: datetime | None = None, *,
         platforms: Iterable[str] | None = None, team_id: int | None = None,
         unmasked: bool = False) -> list[dict]:
    """The export's rows (typed: int, str, Decimal, aware datetime, None) for tasks noticed
    in ``[since, until)``, masked unless ``unmasked``."""
    query = (select(Task, Campaign).join(Campaign, Campaign.id == Task.campaign_id)
             .where(Task.created_at >= since).order_by(Task.id))
    if until is not None:
        query = query.where(Task.created_at < until)
    wanted = sorted(set(platforms or ()))
    if wanted and "*" not in wanted:
        query = query.where(Campaign.platform.in_(wanted))
    if team_id is not None:
        query = query.where(Task.team_id == team_id)
    found = list(session.exec(query))
    ids = [task.id or 0 for task, _ in found]
    users = {u.id: u for u in session.exec(select(User))}
    teams = {team.id: team for team in session.exec(select(Team))}
    latest: dict[int, Declaration] = {}
    for d in _in_chunks(session, lambda c: select(Declaration).where(Declaration.task_id.in_(c)),
                        ids):
        if d.task_id not in latest or d.version > latest[d.task_id].version:
            latest[d.task_id] = d
    lines: dict[int, list[DeclarationLine]] = {}
    for line in _in_chunks(session, lambda c: select(DeclarationLine).where(
            DeclarationLine.declaration_id.in_(c)).order_by(DeclarationLine.id),
            [d.id or 0 for d in latest.values()]):
        lines.setdefault(line.declaration_id, []).append(line)
    submitted: dict[int, datetime] = {}
    verdicts: dict[int, AuditEvent] = {}
    for e in _in_chunks(session, lambda c: select(AuditEvent).where(
            AuditEvent.task_id.in_(c), AuditEvent.action.in_(
                ("mark_submitted", "accept", "platform_reject"))).order_by(
            AuditEvent.created_at, AuditEvent.id), ids):
        if e.action == "mark_submitted":
            submitted.setdefault(e.task_id or 0, e.created_at)
        else:
            verdicts[e.task_id or 0] = e
    approvers: dict[tuple[int, int], list[str]] = {}
    for step in _in_chunks(session, lambda c: select(ApprovalStep).where(
            ApprovalStep.task_id.in_(c), ApprovalStep.state == "approved").order_by(
            ApprovalStep.seq, ApprovalStep.id), ids):
        who = users.get(step.decided_by)
        if who is not None:
            approvers.setdefault((step.task_id, step.declaration_version), []).append(who)
    skus = {line.sku for group in lines.values() for line in group}
    products = {p.sku: p.title for p in session.exec(select(Product).where(Product.sku.in_(skus)))} \
        if skus else {}
    default_zone = get_settings().timezone
    out = []
    for task, campaign in found:
        team = teams.get(task.team_id)
        owner = users.get(task.claimed_by)
        declaration = latest.get(task.id or 0)
        verdict = verdicts.get(task.id or 0)
        author = users.get(declaration.created_by) if declaration else None
        approved = approvers.get((task.id or 0, declaration.version), []) if declaration else []
        base = {
            "task_id": task.id, "platform": campaign.platform, "campaign_id": campaign.id,
            "campaign_external_id": campaign.external_id, "campaign_title": campaign.title,
            "campaign_type": campaign.type, "team": team.code if team else None,
            "state": task.state, "noticed_at": task.created_at, "deadline": task.deadline,
            "event_start": campaign.event_start, "event_end": campaign.event_end,
            "submitted_at": submitted.get(task.id or 0),
            "verdict": {"accept": "accepted", "platform_reject": "rejected"}.get(
                verdict.action) if verdict else None,
            "verdict_at": verdict.created_at if verdict else None,
            "owner": owner.name if owner else None,
            "owner_name": owner.display_name if owner else None,
            "declaration_version": declaration.version if declaration else None,
            "declared_by": author.display_name if author else None,
            "approved_by": ", ".join(u.display_name if unmasked else mask_name(u.display_name)
                                     for u in approved) or None,
            "note": declaration.note if declaration else None,
            "zone": team.timezone if team else default_zone,
        }
        for line in (lines.get(declaration.id or 0) if declaration else None) or [None]:
            row = dict(base)
            if line is not None:
                discount = (line.promo_price / line.list_price).quantize(Decimal("0.0001")) \
                    if line.promo_price is not None and line.list_price else None
                extra = {"sku": line.sku, "product_title": products.get(line.sku),
                         "list_price": line.list_price, "promo_price": line.promo_price,
                         "discount": discount, "promo_stock": line.promo_stock,
                         "line_result": line.result, "reason_code": line.reason_code,
                         "reason_text": line.reason_text}
                row.update(extra)
            if not unmasked:
                row.update({k: mask_name(row[k]) for k in PEOPLE})
                row.update({k: mask(row.get(k)) for k in TEXTS})
            out.append({name: row.get(name) for name in FIELDS})
    return out


# -- writers -----------------------------------------------------------------------------

def write(fmt: str, data: list[dict], target: IO[bytes]) -> int:
    """Write ``data`` to a binary file object in ``fmt``; returns the number of rows."""
    {"csv": _csv, "xlsx": _xlsx, "parquet": _parquet}[check_format(fmt)](data, target)
    return len(data)


def to_bytes(fmt: str, data: list[dict]) -> bytes:
    buffer = io.BytesIO()
    write(fmt, data, buffer)
    return buffer.getvalue()


def _text(value: Any, kind: str, tz: str) -> str:
    if value is None:
        return ""
    if kind == "time":
        return timefmt.iso(value, tz) or ""
    return str(value)


def _csv(data: list[dict], target: IO[bytes]) -> None:
    text = io.TextIOWrapper(target, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(FIELDS)
    for row in data:
        writer.writerow([_text(row[name], kind, row["zone"]) for name, kind in COLUMNS])
    text.flush()
    text.detach()


def _xlsx(data: list[dict], target: IO[bytes]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet("declarations")
    bold = Font(bold=True)
    header = []
    for name in FIELDS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    formats = {"time": "yyyy-mm-dd hh:mm:ss", "money": "0.00", "ratio": "0.0000"}
    for row in data:
        cells = []
        for name, kind in COLUMNS:
            value = row[name]
            if kind == "time" and value is not None:
                value = timefmt.in_zone(value, row["zone"]).replace(tzinfo=None)
            cell = WriteOnlyCell(sheet, value=value)
            if kind in formats and value is not None:
                cell.number_format = formats[kind]
            cells.append(cell)
        sheet.append(cells)
    book.save(target)


def _parquet(data: list[dict], target: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"int": pa.int64(), "str": pa.string(), "money": pa.decimal128(14, 2),
             "ratio": pa.decimal128(10, 4), "time": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])
    table = pa.Table.from_pylist(
        [{name: (timefmt.aware(row[name]) if kind == "time" and row[name] is not None
                 else row[name]) for name, kind in COLUMNS} for row in data], schema=schema)
    pq.write_table(table, target)
