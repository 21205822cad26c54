"""A connector's records in the database: its health and its enrolment ledger.

The ledger maps PromoPilot's idempotency key (``pp-task{task}-decl{version}``) to the
platform's own reference — a request id, a trace code, activity ids. A row is written
*before* the enrolment is sent (``sending``), so after a lost answer, a crash or a retry
the connector knows an enrolment may exist and asks the platform first instead of
enrolling again.
"""

from __future__ import annotations

from sqlmodel import select

from bot.core.ports import Enrolment, ItemResult, SubmissionItem
from storage.db import Database
from storage.models_connectors import ConnectorEnrolment, ConnectorState
from storage.types import utcnow

FINAL = ("accepted", "rejected", "partial", "cancelled")


def item_dict(item: SubmissionItem) -> dict:
    return {"sku": item.sku, "list_price": None if item.list_price is None else str(item.list_price),
            "promo_price": None if item.promo_price is None else str(item.promo_price),
            "promo_stock": item.promo_stock}


def result_dicts(items: list[ItemResult]) -> list[dict]:
    return [{"sku": i.sku, "result": i.result, "reason_code": i.reason_code,
             "reason_text": i.reason_text} for i in items]


def results(rows: list[dict]) -> list[ItemResult]:
    return [ItemResult(str(r.get("sku")), str(r.get("result")), r.get("reason_code"),
                       r.get("reason_text")) for r in rows or []]


def as_enrolment(row: ConnectorEnrolment) -> Enrolment:
    return Enrolment(reference=row.reference, status=row.status, items=results(row.results),
                     raw=dict(row.raw or {}))


class Ledger:
    def __init__(self, db: Database, connector: str) -> None:
        self.db = db
        self.connector = connector

    def by_key(self, key: str) -> ConnectorEnrolment | None:
        with self.db.session() as session:
            return session.exec(select(ConnectorEnrolment).where(
                ConnectorEnrolment.connector == self.connector,
                ConnectorEnrolment.idempotency_key == key)).first()

    def by_reference(self, reference: str) -> ConnectorEnrolment | None:
        with self.db.session() as session:
            return session.exec(select(ConnectorEnrolment).where(
                ConnectorEnrolment.connector == self.connector,
                ConnectorEnrolment.reference == reference)).first()

    def start(self, key: str, campaign_id: str, items: list[SubmissionItem]) -> None:
        with self.db.session() as session:
            session.add(ConnectorEnrolment(connector=self.connector, idempotency_key=key,
                                           campaign_id=campaign_id,
                                           items=[item_dict(i) for i in items]))

    def note(self, key: str, **raw: object) -> None:
        """Remember something about an enrolment under way (e.g. the tag it was sent with)."""
        with self.db.session() as session:
            row = session.exec(select(ConnectorEnrolment).where(
                ConnectorEnrolment.connector == self.connector,
                ConnectorEnrolment.idempotency_key == key)).one()
            row.raw, row.updated_at = {**(row.raw or {}), **raw}, utcnow()
            session.add(row)

    def save(self, key: str, enrolment: Enrolment) -> None:
        with self.db.session() as session:
            row = session.exec(select(ConnectorEnrolment).where(
                ConnectorEnrolment.connector == self.connector,
                ConnectorEnrolment.idempotency_key == key)).one()
            row.reference, row.status = enrolment.reference, enrolment.status
            row.results = result_dicts(enrolment.items)
            row.raw, row.updated_at = {**(row.raw or {}), **enrolment.raw}, utcnow()
            session.add(row)


class Health:
    """Last call, last success, last error of one connector (stored: any process sees it)."""

    def __init__(self, db: Database, name: str, platform: str, shop: str) -> None:
        self.db = db
        self.name, self.platform, self.shop = name, platform, shop

    def _row(self, session) -> ConnectorState:
        row = session.get(ConnectorState, self.name)
        if row is None:
            row = ConnectorState(name=self.name, platform=self.platform, shop=self.shop)
        return row

    def ok(self, operation: str) -> None:
        now = utcnow()
        with self.db.session() as session:
            row = self._row(session)
            row.last_call, row.last_call_at, row.last_ok_at, row.ok = operation, now, now, True
            row.calls += 1
            session.add(row)

    def failed(self, operation: str, error: Exception) -> None:
        now = utcnow()
        with self.db.session() as session:
            row = self._row(session)
            row.last_call, row.last_call_at, row.ok = operation, now, False
            row.last_error, row.last_error_at = str(error)[:500], now
            row.last_error_key = getattr(error, "key", "conn.err.failed")
            row.last_error_params = {k: str(v) for k, v in getattr(error, "params", {
                "platform": self.platform, "code": "", "detail": str(error)[:300]}).items()}
            row.calls += 1
            row.failures += 1
            session.add(row)

    def read(self) -> ConnectorState | None:
        with self.db.session() as session:
            return session.get(ConnectorState, self.name)
