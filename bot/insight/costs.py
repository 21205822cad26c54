"""Syncs cost, stock, in-transit and safety stock from the ERP/WMS onto the product pool.

Each ``CostSource`` (``adapters/erp``: HTTP-JSON, CSV/XLSX drops) is read at its own
interval by the leader's ``cost_sync`` job (``promopilot costs sync`` does one pass by hand).
What a source reports replaces the pool's values for SKUs the pool knows (a SKU the pool
does not know is counted, not created); a field the source leaves out keeps its value.

Health lives in ``cost_source_states``: the last sync and what it changed, the last error,
rows rejected with their reasons. A failing source backs off (exponential, capped at an
hour, jitter); after ``alert_after`` failures in a row (default 1) one card goes to the ops
channels, and one when it works again. Each rejected row is logged and told once (a row
fixed and broken again is news again after a week).
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, select

from bot.core import outbox, timefmt
from bot.core.i18n import Term, t
from bot.core.ports import CostSource, RowRejected, StockCost
from bot.core.views import builder
from cards.model import Card, CardField
from storage.db import Database
from storage.models import Product
from storage.models_costs import CostSourceState
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=1)
KEEP = timedelta(days=7)
MAX_KEPT = 500
SHOWN = 10
CHUNK = 500
_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")  # query strings may carry keys


@dataclass
class SyncReport:
    rows: int = 0
    updated: int = 0
    unchanged: int = 0
    unknown: int = 0
    rejected: list[RowRejected] = field(default_factory=list)
    failed: str | None = None

    def counts(self) -> dict:
        return {"rows": self.rows, "updated": self.updated, "unchanged": self.unchanged,
                "unknown": self.unknown, "rejected": len(self.rejected)}


def _sane(row: StockCost) -> RowRejected | None:
    """What any source hands over is checked again here (a custom source may be sloppy)."""
    sku = row.sku if isinstance(row.sku, str) else ""
    if not sku.strip() or len(sku) > 64:
        return RowRejected(str(row.sku)[:64] or "?", "erp.row.no_sku", {"where": "?"})
    if row.cost is not None and (not isinstance(row.cost, Decimal) or not row.cost.is_finite()
                                 or not 0 <= row.cost <= Decimal("1e9")):
        return RowRejected(sku, "erp.row.not_number", {"sku": sku, "field": "cost",
                                                       "value": str(row.cost)[:40]})
    for name in ("stock", "in_transit", "safety_stock"):
        value = getattr(row, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 2_000_000_000):
            return RowRejected(sku, "erp.row.not_whole", {"sku": sku, "field": name,
                                                          "value": str(value)[:40]})
    return None


def apply(session: Session, source: str, rows: list[StockCost], now: datetime) -> SyncReport:
    """Write what the source reports onto the pool's products (one transaction)."""
    report = SyncReport(rows=len(rows))
    good = []
    for row in rows:
        bad = _sane(row)
        if bad is None:
            good.append(row)
        else:
            report.rejected.append(bad)
    for start in range(0, len(good), CHUNK):
        chunk = good[start:start + CHUNK]
        products = {p.sku: p for p in session.exec(select(Product).where(
            Product.sku.in_([r.sku for r in chunk])))}
        for row in chunk:
            product = products.get(row.sku)
            if product is None:
                report.unknown += 1
                continue
            changed = False
            for name in ("cost", "stock", "in_transit", "safety_stock"):
                value = getattr(row, name)
                if value is not None and getattr(product, name) != value:
                    setattr(product, name, value)
                    changed = True
            product.stock_source, product.stock_synced_at = source[:128], now
            if changed:
                product.updated_at = now
                report.updated += 1
            else:
                report.unchanged += 1
            session.add(product)
    session.flush()
    return report


def reason(key: str, params: dict, lang: str | None) -> str:
    """A rejection's reason in ``lang`` (the field it names as a word of that language)."""
    shown = dict(params or {})
    if "field" in shown:
        shown["field"] = Term(f"erp.field.{shown['field']}")
    return t(str(key), lang, **shown)


def backoff(interval: float, failures: int) -> timedelta:
    seconds = min(interval * 2 ** max(0, failures - 1), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def _error(exc: BaseException) -> str:
    return _QUERY.sub(r"\1?…", f"{type(exc).__name__}: {exc}")[:500]


def _remember(state: CostSourceState, rejected: list[RowRejected], now: datetime) -> list[dict]:
    """Keep the rejections in the state; return the new ones (new ref, or a new reason)."""
    known = {str(k): dict(v) for k, v in dict(state.rejections or {}).items()
             if isinstance(v, dict)}
    seq, stamp, new = state.rejection_seq, now.isoformat(), []
    for item in rejected:
        ref = item.ref[:160]
        entry = known.get(ref)
        if entry is not None and entry.get("key") == item.key \
                and entry.get("params") == item.params:
            entry["last"] = stamp
            continue
        seq += 1
        known[ref] = {"key": item.key, "params": item.params, "n": seq, "first": stamp,
                      "last": stamp}
        new.append({"ref": ref, **known[ref]})
    cutoff = (now - KEEP).isoformat()
    kept = sorted(((r, e) for r, e in known.items() if str(e.get("last")) >= cutoff),
                  key=lambda item: str(item[1].get("last")), reverse=True)[:MAX_KEPT]
    state.rejections, state.rejection_seq = dict(kept), seq
    return new


def _announce(session: Session, state: CostSourceState, what: str, params: dict,
              number: int) -> None:
    bindings = outbox.bindings_for(session, "*", "ops")
    key = f"{what}:{state.name[:80]}:{number}"
    for b in bindings:
        outbox.enqueue_card(session, b.chat, b.channel_id, key, what,
                            {"source": state.name, **params},
                            key=f"{key}:{b.chat}:{b.channel_id}"[:256])
    if not bindings:
        log.error("no ops channel bound for cost source alerts", extra={"source": state.name,
                                                                        "what": what})


class CostSync:
    def __init__(self, db: Database, sources: list[CostSource], *, clock=utcnow) -> None:
        self.db, self.sources, self.clock = db, sources, clock

    def _state(self, session: Session, source: CostSource) -> CostSourceState:
        state = session.get(CostSourceState, source.name)
        if state is None:
            state = CostSourceState(name=source.name, kind=getattr(source, "kind", ""))
            session.add(state)
            session.flush()
        return state

    def states(self) -> list[CostSourceState]:
        """Every configured source's state as stored (any replica sees the same)."""
        names = [s.name for s in self.sources]
        with self.db.session() as session:
            stored = {s.name: s for s in session.exec(select(CostSourceState).where(
                CostSourceState.name.in_(names)))} if names else {}
            for s in stored.values():
                session.expunge(s)
        return [stored.get(s.name) or CostSourceState(name=s.name, kind=getattr(s, "kind", ""))
                for s in self.sources]

    def run(self, *, only_due: bool = True) -> dict[str, SyncReport]:
        """One pass: every (due) source; a broken one never stops the others."""
        out = {}
        for source in list(self.sources):
            try:
                report = self.sync(source, only_due=only_due)
            except Exception:  # noqa: BLE001 - logged; the next pass tries again
                log.exception("cost sync failed", extra={"source": source.name})
                continue
            if report is not None:
                out[source.name] = report
        return out

    def sync(self, source: CostSource, *, only_due: bool = False) -> SyncReport | None:
        now = self.clock()
        with self.db.session() as session:
            state = self._state(session, source)
            if only_due and state.next_attempt_at and state.next_attempt_at > now:
                return None
            if hasattr(source, "validators"):
                source.validators = dict(state.validators or {})  # type: ignore[attr-defined]
        try:
            rows = source.fetch()
            with self.db.session() as session:
                report = apply(session, source.name, rows, now)
                report.rejected = list(getattr(source, "rejected", None) or []) + report.rejected
                self._succeeded(session, source, report, now)
        except Exception as exc:  # noqa: BLE001 - told in health, retried with backoff
            self._failed(source, exc, now)
            return SyncReport(failed=_error(exc))
        return report

    def _failed(self, source: CostSource, exc: BaseException, now: datetime) -> None:
        error = _error(exc)
        with self.db.session() as session:
            state = self._state(session, source)
            state.ok = False
            state.consecutive_failures += 1
            state.last_attempt, state.last_error, state.updated_at = now, error, now
            state.next_attempt_at = now + backoff(float(getattr(source, "interval", 900)),
                                                  state.consecutive_failures)
            if state.consecutive_failures >= int(getattr(source, "alert_after", 1)) \
                    and not state.alerting:
                state.alerting, state.incidents = True, state.incidents + 1
                _announce(session, state, "cost_source_down", {}, state.incidents)
            session.add(state)
            failures = state.consecutive_failures
        log.warning("cost source failed", extra={"source": source.name, "failures": failures,
                                                 "error": error})

    def _succeeded(self, session: Session, source: CostSource, report: SyncReport,
                   now: datetime) -> None:
        state = self._state(session, source)
        recovered = state.alerting
        state.ok, state.consecutive_failures, state.alerting = True, 0, False
        state.last_attempt, state.last_success, state.last_error = now, now, None
        state.next_attempt_at = now + timedelta(seconds=float(getattr(source, "interval", 900)))
        state.validators = dict(getattr(source, "validators", {}) or {})
        state.last_counts, state.updated_at = report.counts(), now
        new = _remember(state, report.rejected, now)
        if recovered:
            _announce(session, state, "cost_source_recovered", {}, state.incidents)
        for item in new[:20]:
            log.warning("cost row rejected", extra={"source": source.name, "ref": item["ref"],
                                                    "reason": reason(item["key"], item["params"],
                                                                     "en")})
        if new:
            _announce(session, state, "cost_rows_rejected", {
                "items": [{"ref": i["ref"], "key": i["key"], "params": i["params"]}
                          for i in new[:SHOWN]], "more": max(0, len(new) - SHOWN)}, new[0]["n"])
        session.add(state)
        log.info("cost source synced", extra={"source": source.name, **report.counts()})


def as_dict(state: CostSourceState) -> dict:
    """A source's health, machine-readable (``promopilot costs --json``): team-zone ISO."""
    newest = sorted((state.rejections or {}).items(), key=lambda i: str(i[1].get("first")),
                    reverse=True)[:SHOWN]
    return {"name": state.name, "kind": state.kind, "ok": state.ok,
            "consecutive_failures": state.consecutive_failures,
            "last_success": timefmt.iso(state.last_success),
            "next_attempt_at": timefmt.iso(state.next_attempt_at),
            "last_error": state.last_error, "last_counts": state.last_counts,
            "rejected": len(state.rejections or {}),
            "rejections": [{"ref": r, "reason": reason(e.get("key", ""), e.get("params", {}), "en"),
                            "since": e.get("first")} for r, e in newest]}


# -- ops cards ---------------------------------------------------------------------------------

def _source_card(session: Session, params: dict, lang: str, down: bool) -> Card | None:
    state = session.get(CostSourceState, str(params.get("source")))
    if state is None:
        return None
    if down:
        card = Card(kind="error", color="red", title=t("erp.down_title", lang, name=state.name),
                    text=t("erp.down_text", lang, n=state.consecutive_failures,
                           error=state.last_error or "—"))
        card.fields.append(CardField(label=t("watch.next_try", lang),
                                     value=timefmt.local(state.next_attempt_at)))
        return card
    return Card(kind="error", color="green", title=t("erp.up_title", lang, name=state.name),
                text=t("erp.up_text", lang, when=timefmt.local(state.last_success)))


@builder("cost_source_down")
def cost_source_down_card(session: Session, params: dict, lang: str) -> Card | None:
    return _source_card(session, params, lang, True)


@builder("cost_source_recovered")
def cost_source_recovered_card(session: Session, params: dict, lang: str) -> Card | None:
    return _source_card(session, params, lang, False)


@builder("cost_rows_rejected")
def cost_rows_rejected_card(session: Session, params: dict, lang: str) -> Card | None:
    """Built from its params alone: the rows and their reasons, in the reader's language."""
    source = str(params.get("source") or "?")[:128]
    lines = []
    for item in (params.get("items") or [])[:SHOWN]:
        try:
            why = reason(str(item.get("key")), dict(item.get("params") or {}), lang)
        except Exception:  # noqa: BLE001 - an old or odd row still shows its reference
            why = str(item.get("key"))
        lines.append(f"• {str(item.get('ref'))[:160]}: {why}")
    if params.get("more"):
        lines.append(t("deal.more", lang, n=params["more"]))
    return Card(kind="error", color="orange", title=t("erp.rejected_title", lang, source=source),
                text="\n".join(lines) or "—")
