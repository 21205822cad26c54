"""What the recommendations of one call read, loaded once for all its tasks.

A recommendation per task used to cost ~16 queries (the campaign twice, the platform's
results three times, rejections and rule proposals per platform …), and a 双11 burst of
claims logs one per claim (``bot.insight.decision_log``). Most of it is per platform, not per
task: a ``Batch`` loads the tasks' campaigns, declarations, the platforms' results,
reviewed lines, rejections, rule proposals and the stock other tasks hold in a few
``IN (…)`` queries, and ``bot.insight.recommend`` filters them per task in Python with the
same conditions the queries had, so one task or two hundred give the same answers
(tests/test_insight_recommend_batch.py compares them with the per-task queries of before).
Every moment of one call is one ``utcnow()``, so the tasks of a batch are judged at the
same instant.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import or_
from sqlmodel import Session, select

from bot.declarations.commitments import HOLDING_STATES, overlap
from bot.insight import roi
from bot.insight.recommend_policy import RecommendationPolicy
from storage.models import Campaign, Declaration, DeclarationLine, Product, Task
from storage.models_data import ProductCategory, RejectionRecord, RuleProposal
from storage.models_results import CampaignResult
from storage.types import utcnow

REJECTION_DAYS = 180
CHUNK = 500  # values per IN (…): well inside SQLite's variable limit
T = TypeVar("T")
Pair = tuple[CampaignResult, Campaign]


def chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = sorted(set(values))
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


@dataclass(frozen=True, slots=True)
class Row:
    """A result row's fields the factors filter on, read once (ORM attributes are slow)."""

    row: CampaignResult
    id: int
    platform: str
    sku: str
    slot: str | None
    units: int
    campaign_id: int
    type: str
    end: datetime | None
    moment: datetime

    @classmethod
    def of(cls, r: CampaignResult, c: Campaign) -> Row:
        return cls(r, r.id or 0, r.platform, r.sku, r.slot, r.units, c.id or 0, c.type,
                   c.event_end, c.event_end or r.imported_at)


def _group(rows: Iterable[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    out: dict[Any, list[Row]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


class Batch:
    """The shared reads of one ``recommend_many`` call (a per-call cache, never kept)."""

    def __init__(self, session: Session, tasks: list[Task], as_of: datetime | None,
                 policy: RecommendationPolicy) -> None:
        self.session, self.policy, self.as_of = session, policy, as_of
        self.moment = utcnow()
        self.now = as_of or self.moment
        self.campaigns: dict[int, Campaign] = {}
        for ids in chunks(t.campaign_id for t in tasks):
            self.campaigns |= {c.id or 0: c for c in session.exec(
                select(Campaign).where(Campaign.id.in_(ids)))}
        self.platforms = sorted({c.platform for c in self.campaigns.values()})
        befores = [self.cutoff(c) for c in self.campaigns.values()] or [self.now]
        self.since = min(befores) - timedelta(days=REJECTION_DAYS)
        self.until = max(befores)
        self._memo: dict[tuple, Any] = {}
        self._lazy: dict[str, Any] = {}
        self.task_ids = sorted({t.id or 0 for t in tasks})

    def cutoff(self, campaign: Campaign) -> datetime:
        return self.as_of or campaign.event_start or campaign.registration_end or self.moment

    def memo(self, key: tuple, compute: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _once(self, name: str, load: Callable[[], T]) -> T:
        if name not in self._lazy:
            self._lazy[name] = load()
        return self._lazy[name]

    # -- results ---------------------------------------------------------------------------

    def results(self) -> list[Pair]:
        """Result rows on the batch's platforms (by the row's or its campaign's platform)
        with their campaign, in id order (``roi.rows_in``'s order)."""
        def load() -> list[Pair]:
            query = select(CampaignResult, Campaign).join(
                Campaign, Campaign.id == CampaignResult.campaign_id)
            if all(p and p != "*" for p in self.platforms):
                query = query.where(or_(CampaignResult.platform.in_(self.platforms),
                                        Campaign.platform.in_(self.platforms)))
            return list(self.session.exec(query.order_by(CampaignResult.id)))
        return self._once("results", load)

    def on(self, platform: str) -> list[Pair]:
        """Rows whose result names ``platform``."""
        return self.memo(("on", platform), lambda: [
            (r, c) for r, c in self.results() if r.platform == platform])

    def rows(self) -> list[Row]:
        return self._once("rows", lambda: [Row.of(r, c) for r, c in self.results()])

    def of_campaigns(self, ids: set[int]) -> list[Row]:
        """``roi.rows_in(campaign_ids=…)``: every row of those campaigns."""
        def load() -> list[Row]:
            index: dict[int, list[Row]] = self._once("by_campaign", lambda: _group(
                self.rows(), lambda r: r.campaign_id))
            return sorted((r for i in ids for r in index.get(i, [])), key=lambda r: r.id)
        return self.memo(("of_campaigns", tuple(sorted(ids))), load)

    def ended(self, platform: str) -> dict[str, tuple[list[datetime], list[Row]]]:
        """Per SKU, the platform's rows of campaigns with an end, by that end (to bisect)."""
        def load() -> dict[str, tuple[list[datetime], list[Row]]]:
            rows = [r for r in self.rows() if r.platform == platform and r.end is not None]
            grouped = _group(sorted(rows, key=lambda r: r.end), lambda r: r.sku)  # type: ignore[arg-type,return-value]
            return {sku: ([r.end for r in v], v) for sku, v in grouped.items()}  # type: ignore[misc]
        return self.memo(("ended", platform), load)

    def before(self, platform: str, before: datetime) -> list[Row]:
        """``roi.rows_in(end=before, platforms=[platform])``: the rows whose campaign ended
        (or, without an end, that were imported) before."""
        def load() -> tuple[list[datetime], list[Row]]:
            every = self.rows() if not platform or platform == "*" else [
                r for r in self.rows() if r.platform == platform]
            rows = sorted(every, key=lambda r: r.moment)
            return [r.moment for r in rows], rows
        moments, rows = self.memo(("by_moment", platform), load)
        return rows[:bisect.bisect_left(moments, before)]

    def with_results(self, platform: str) -> list[Campaign]:
        """Campaigns on ``platform`` that have results."""
        def load() -> list[Campaign]:
            seen: dict[int, Campaign] = {}
            for _, c in self.results():
                if c.platform == platform:
                    seen.setdefault(c.id or 0, c)
            return list(seen.values())
        return self.memo(("with_results", platform), load)

    def has_results(self, campaign: Campaign) -> bool:
        ids = self._once("result_campaigns", lambda: {r.campaign_id for r, _ in self.results()})
        return campaign.id in ids

    def sold(self, platform: str) -> list[str]:
        return self.memo(("sold", platform), lambda: sorted(
            {r.sku for r, _ in self.on(platform) if r.sku != ""}))

    def total(self, rows: list[Row]) -> roi.Totals:
        """``roi.total`` with one ``Margins`` for the batch (its products looked up at once);
        the same rows give the same totals (read, never changed)."""
        def compute() -> roi.Totals:
            margins = self._once("margins", self._margins)
            whole = roi.Totals(("*",))
            for r in rows:
                key = ("margin", r.id)
                if key not in self._memo:
                    self._memo[key] = margins.of(r.row)
                whole.add(r.row, self._memo[key])
            return whole
        return self.memo(("total", tuple(sorted(r.id for r in rows))), compute)

    def _margins(self) -> roi.Margins:
        margins = roi.Margins(self.session)
        rows = [r for r, _ in self.results() if r.sku]
        margins.products |= {sku: None for sku in {r.sku for r in rows}}
        margins.products |= self.products({r.sku for r in rows})
        found = {(c.sku, c.platform): c.category for c in self._every_category()}
        margins.categories |= {(r.sku, r.platform): found.get((r.sku, r.platform)) or ""
                               for r in rows}
        return margins

    # -- products and declarations ---------------------------------------------------------

    def products(self, skus: Iterable[str]) -> dict[str, Product]:
        """The pool's products of ``skus`` (those it has), looked up once each."""
        skus = list(skus)
        cache: dict[str, Product | None] = self._once("products", dict)
        missing = {s for s in skus if s not in cache}
        if "result_skus" not in self._lazy:  # the stock factor's SKUs all have results: at once
            self._lazy["result_skus"] = True
            missing |= {r.sku for r, _ in self.results() if r.sku}
        for part in chunks(missing):
            cache |= {s: None for s in part}
            cache |= {p.sku: p for p in self.session.exec(
                select(Product).where(Product.sku.in_(part)))}
        return {s: p for s in skus if (p := cache.get(s)) is not None}

    def all_products(self) -> list[Product]:
        return self._once("all_products", lambda: list(
            self.session.exec(select(Product).order_by(Product.sku))))

    def _every_category(self) -> list[ProductCategory]:
        """Categories on the batch's platforms and its results' (the margins need those)."""
        def load() -> list[ProductCategory]:
            wanted = sorted(set(self.platforms) | {r.platform for r, _ in self.results()})
            return list(self.session.exec(select(ProductCategory).where(
                ProductCategory.platform.in_(wanted)))) if wanted else []
        return self._once("categories", load)

    def categories(self, platform: str) -> dict[str, str]:
        return self.memo(("categories", platform), lambda: {
            c.sku: c.category for c in self._every_category() if c.platform == platform})

    def latest_lines(self, task_id: int) -> list[DeclarationLine] | None:
        """The lines of the task's latest declaration (None: it has no declaration)."""
        def load() -> dict[int, list[DeclarationLine] | None]:
            latest: dict[int, int] = {}
            for ids in chunks(self.task_ids):
                for d in self.session.exec(select(Declaration).where(
                        Declaration.task_id.in_(ids)).order_by(Declaration.version)):
                    latest[d.task_id] = d.id or 0
            lines = self._lines(latest.values())
            return {tid: lines.get(did, []) for tid, did in latest.items()}
        return self._once("declared", load).get(task_id)

    def _lines(self, declaration_ids: Iterable[int],
               skus: set[str] | None = None) -> dict[int, list[DeclarationLine]]:
        out: dict[int, list[DeclarationLine]] = {}
        for ids in chunks(declaration_ids):
            query = select(DeclarationLine).where(DeclarationLine.declaration_id.in_(ids))
            for line in self.session.exec(query.order_by(DeclarationLine.id)):
                if skus is None or line.sku in skus:
                    out.setdefault(line.declaration_id, []).append(line)
        return out

    def committed(self, campaign: Campaign, skus: list[str], exclude_task: int) -> dict[str, int]:
        """``commitments.committed_stock`` from the holding tasks loaded once per batch."""
        if not skus:
            return {}
        holding = self._once("holding", self._holding)
        wanted = set(skus)
        out: dict[str, int] = {}
        for tid, other, declaration_lines in holding:
            if tid == exclude_task or not overlap(campaign, other):
                continue
            for line in declaration_lines:
                if line.sku in wanted and line.result != "rejected" and line.promo_stock > 0:
                    out[line.sku] = out.get(line.sku, 0) + line.promo_stock
        return out

    def _holding(self) -> list[tuple[int, Campaign, list[DeclarationLine]]]:
        """Tasks whose declared stock is spoken for, with their latest declaration's lines."""
        others = list(self.session.exec(select(Task.id, Campaign).join(
            Campaign, Campaign.id == Task.campaign_id).where(Task.state.in_(HOLDING_STATES))))
        latest: dict[int, int] = {}
        for ids in chunks(tid for tid, _ in others):
            for d in self.session.exec(select(Declaration).where(
                    Declaration.task_id.in_(ids)).order_by(Declaration.version)):
                latest[d.task_id] = d.id or 0
        lines = self._lines(latest.values())
        return [(tid or 0, c, lines.get(latest.get(tid or 0, -1), [])) for tid, c in others]

    # -- rejections ------------------------------------------------------------------------

    def reviewed(self, platform: str, since: datetime, until: datetime,
                 type_: str | None) -> tuple[int, int]:
        """(rejected, reviewed) lines of declarations on the platform created in the window."""
        def load() -> list[tuple[str | None, datetime, str, str | None]]:
            return list(self.session.exec(
                select(DeclarationLine.result, Declaration.created_at, Campaign.platform,
                       Campaign.type)
                .join(Declaration, Declaration.id == DeclarationLine.declaration_id)
                .join(Task, Task.id == Declaration.task_id)
                .join(Campaign, Campaign.id == Task.campaign_id)
                .where(Campaign.platform.in_(self.platforms),
                       DeclarationLine.result.is_not(None),
                       Declaration.created_at >= self.since,
                       Declaration.created_at < self.until)))
        rows = self._once("reviewed", load)
        results = [r for r, at, p, kind in rows if p == platform and since <= at < until
                   and (type_ is None or kind == type_)]
        return sum(1 for r in results if r == "rejected"), len(results)

    def learned(self, platform: str, before: datetime) -> int:
        rows = self._once("proposals", lambda: list(self.session.exec(
            select(RuleProposal.platform, RuleProposal.created_at).where(
                RuleProposal.platform.in_(self.platforms),
                RuleProposal.created_at < self.until,
                RuleProposal.state.in_(("proposed", "accepted"))))))
        return sum(1 for p, at in rows if p == platform and at < before)

    def rejections(self, platform: str, since: datetime, before: datetime) -> list[str]:
        rows = self._once("rejections", lambda: list(self.session.exec(
            select(RejectionRecord.platform, RejectionRecord.created_at,
                   RejectionRecord.category).where(
                RejectionRecord.platform.in_(self.platforms),
                RejectionRecord.created_at >= self.since,
                RejectionRecord.created_at < self.until))))
        return [cat for p, at, cat in rows if p == platform and since <= at < before]


def spent(pairs: list[Pair], month: str, today: str) -> Decimal:
    """Slot fees of ``month`` up to ``today`` (local dates) in the rows."""
    from bot.core.timefmt import local_date

    total = Decimal("0")
    for row, other in pairs:
        day = row.day or (local_date(other.event_end).isoformat() if other.event_end else "")
        if day[:7] == month and day <= today:
            total += row.fees
    return total
