"""Bulk rows for the benchmarks' databases: inserted in one statement, ids back in order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session


def inserted_ids(session: Session, model: type, rows: list[dict]) -> list[int]:
    """Insert ``rows`` into ``model``'s table; their new ids, in the rows' order."""
    table = model.__table__
    return [r[0] for r in session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)]


def campaign(platform: str, external_id: str, title: str, now: datetime,
             type: str = "") -> dict:  # noqa: A002 - the column's name
    """One notice's campaign row, as ingest would store it (no requirements, one version)."""
    return {"platform": platform, "external_id": external_id, "title": title, "type": type,
            "requirements": {}, "source_url": "", "content_hash": "x", "version": 1,
            "created_at": now, "updated_at": now}
