"""The batch path of the recommendation (``recommend_many``, the decision log's) says what
the per-task queries said before it (tests/recommend_reference.py), task for task, on a
history with two platforms, several campaign types, results, rejections, learned rules,
stock other declarations hold and a campaign of this month; and the log writes one row a
task, queued on SQLite's writer lock, in a few statements for the whole batch."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.insight import decision_log, recommend
from storage.models import Campaign, Declaration, DeclarationLine, Platform, Product, Task, Team
from storage.models_data import ProductCategory, RejectionRecord, RuleProposal
from storage.models_results import CampaignResult, RecommendationLog
from tests import insight_decisions as history
from tests import recommend_reference as reference

SH = history.SH


def _campaign(s, platform: str, ext: str, kind: str, start: datetime | None, **kw) -> Campaign:
    c = Campaign(platform=platform, external_id=ext, title=kw.pop("title", f"{kind} {ext}"),
                 type=kind, content_hash=ext, event_start=start,
                 event_end=start + timedelta(days=2) if start else None, **kw)
    s.add(c)
    s.flush()
    return c


def _task(s, team: int, campaign: Campaign, state: str = "new") -> Task:
    task = Task(campaign_id=campaign.id, team_id=team, state=state)
    s.add(task)
    s.flush()
    return task


def _declare(s, task: Task, lines: list[tuple[str, int, str | None]], at: datetime) -> None:
    d = Declaration(task_id=task.id, version=1, created_at=at)
    s.add(d)
    s.flush()
    for sku, stock, result in lines:
        s.add(DeclarationLine(declaration_id=d.id, sku=sku, promo_stock=stock, result=result,
                              list_price=Decimal("10"), promo_price=Decimal("8")))


def build(db) -> list[int]:
    """The Tmall year of tests/insight_decisions.py, and JD beside it; every task's id."""
    history.build(db)
    with db.session() as s:
        s.add(Platform(code="jd", name="京东"))
        team = s.exec(select(Team)).first().id
        s.add(Product(sku="B1", title="保温杯", brand="象印", category="家居/杯具", cost=Decimal("40"),
                      list_price=Decimal("129"), stock=300, safety_stock=20))
        s.add(ProductCategory(sku="P1", platform="jd", category="厨具/锅"))
        s.add(ProductCategory(sku="B1", platform="jd", category="家居/杯具"))
        for i, kind in enumerate(["秒杀", "品类日", "秒杀", "品类日", "秒杀"]):
            start = datetime(2026, 6, 1, tzinfo=SH) + timedelta(days=30 * i)
            c = _campaign(s, "jd", f"JD-{i}", kind, start, requirements={"slot": "首页"})
            t = _task(s, team, c, "finished")
            _declare(s, t, [("P1", 50, "accepted"), ("B1", 30, "rejected" if i % 2 else
                                                     "accepted"), ("P2", 10, None)],
                     start - timedelta(days=5))
            if i % 2:
                s.add(RejectionRecord(platform="jd", task_id=t.id, sku="B1", category="stock",
                                      signature="stock:LOW", created_at=start - timedelta(days=3)))
            for sku, units in (("P1", 30 + 10 * i), ("B1", 12)):
                s.add(CampaignResult(campaign_id=c.id, task_id=t.id, platform="jd", sku=sku,
                                     slot="首页", day=start.date().isoformat(), units=units,
                                     orders=units, gmv=Decimal(units * 150),
                                     fees=Decimal("900")))
        # a result row of this month (the budget), and learned rules on both platforms
        this_month = _campaign(s, "jd", "JD-NOV", "秒杀", datetime(2026, 11, 3, tzinfo=SH))
        s.add(CampaignResult(campaign_id=this_month.id, platform="jd", sku="P1", units=5,
                             day="2026-11-04", gmv=Decimal("500"), fees=Decimal("40000")))
        for platform, state, day in (("jd", "proposed", 5), ("jd", "dismissed", 6),
                                     ("tmall", "accepted", 7), ("jd", "accepted", 200)):
            s.add(RuleProposal(platform=platform, signature=f"sig-{platform}-{day}",
                               category="price", state=state,
                               created_at=datetime(2026, 11, day % 28 + 1, tzinfo=SH)))
        # declarations in approval hold stock for overlapping events
        nov = datetime(2026, 11, 20, tzinfo=SH)
        for platform, stock in (("jd", 400), ("tmall", 900)):
            held = _task(s, team, _campaign(s, platform, f"HOLD-{platform}", "秒杀", nov),
                         "in_approval")
            _declare(s, held, [("P1", stock, None), ("P2", 100, "rejected")], nov)
        # waiting for a decision: typed, untyped, without dates, in a brand's scope, declared
        _task(s, team, _campaign(s, "jd", "JD-NEW-1", "秒杀", nov, requirements={"slot": "首页"}))
        _task(s, team, _campaign(s, "jd", "JD-NEW-2", "品类日", nov + timedelta(days=1)))
        _task(s, team, _campaign(s, "jd", "JD-NEW-3", "", None))
        _task(s, team, _campaign(s, "jd", "JD-NEW-4", "", nov, title="象印 保温杯 专场"))
        declared = _task(s, team, _campaign(s, "tmall", "TM-NEW-3", "聚划算", nov))
        _declare(s, declared, [("P2", 20, None), ("P3", 5, None)], nov - timedelta(days=2))
        return list(s.exec(select(Task.id).order_by(Task.id)))


def _said(rec) -> tuple:
    return (rec.task_id, rec.verdict, rec.score, rec.policy,
            [(r.factor, r.points, r.value, r.params) for r in rec.reasons])


def test_the_batch_says_what_the_per_task_queries_said_for_every_task(db):
    ids = build(db)
    with db.session() as s:
        tasks = [s.get(Task, i) for i in ids]
        for as_of in (history.NOW, datetime(2026, 8, 1, tzinfo=SH), None):
            before = [_said(reference.recommend(s, t, as_of)) for t in tasks]
            assert [_said(r) for r in recommend.recommend_many(s, tasks, as_of)] == before
            assert [_said(recommend.recommend(s, t, as_of)) for t in tasks] == before
        # the history covers what it should: both platforms, every basis of the stock
        said = {r.task_id: r for r in recommend.recommend_many(s, tasks, history.NOW)}
        bases = {next(x for x in r.reasons if x.factor == "stock").params["basis"]
                 for r in said.values()}
        assert bases == {"declaration", "scope", "sold"}
        assert len({r.verdict for r in said.values()}) >= 2
        held = [next(x for x in r.reasons if x.factor == "stock").params.get("held", 0)
                for r in said.values()]
        assert max(held) > 0  # the declarations in approval hold stock


def test_a_batch_costs_a_few_statements_whatever_its_size(db):
    ids = build(db)
    counted: list[str] = []

    def count(*args) -> None:
        counted.append(args[2])

    with db.session() as s:
        tasks = list(s.exec(select(Task).where(Task.id.in_(ids))))
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            recommend.recommend_many(s, tasks[:3], history.NOW)
            few, counted[:] = len(counted), []
            recommend.recommend_many(s, tasks, history.NOW)
            many, counted[:] = len(counted), []
            for task in tasks:
                reference.recommend(s, task, history.NOW)
            before = len(counted)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert len(tasks) > 25 and few <= 16 and many <= 20  # 2 platforms: their rules twice
    assert before > 10 * len(tasks)  # what it cost per task before


def test_the_log_writes_one_row_a_task_also_when_written_twice(db):
    ids = build(db)
    new = ids[-5:]
    decision_log._write(db.engine, [(new[0], "claim"), (new[1], "skip"), (new[0], "skip")])
    decision_log._write(db.engine, [(new[0], "claim"), (new[2], "claim")])  # a retry
    with db.session() as s:  # another replica logged new[3] in the meantime
        s.add(RecommendationLog(task_id=new[3], verdict="apply", decided="claim"))
    rows = {}
    with db.session() as s:
        tasks = [s.get(Task, i) for i in new[:4]]
        shown = {r.task_id: r for r in recommend.recommend_many(s, tasks)}
        decision_log._insert(s, [{"task_id": new[3], "verdict": "skip", "score": 1,
                                  "weights_version": "", "decided": "skip", "detail": {},
                                  "created_at": history.NOW}])
    with db.session() as s:
        rows = {r.task_id: r for r in s.exec(select(RecommendationLog))}
    assert sorted(rows) == sorted(new[:4])
    assert (rows[new[0]].decided, rows[new[1]].decided) == ("claim", "skip")
    assert rows[new[3]].verdict == "apply"  # the first row stays
    for task_id in new[:3]:
        assert (rows[task_id].verdict, rows[task_id].score) == \
            (shown[task_id].verdict, shown[task_id].score)
        assert rows[task_id].detail["points"] == {r.factor: r.points
                                                  for r in shown[task_id].reasons}


def test_on_sqlite_the_log_waits_for_the_writer_lock_of_its_database(db):
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL has no single writer to queue for")
    ids = build(db)
    done = threading.Event()
    with db.session():  # a click holds the process's writer lock
        writer = threading.Thread(target=lambda: (decision_log._write(
            db.engine, [(ids[-1], "claim")]), done.set()))
        writer.start()
        assert not done.wait(0.5)  # it computed, and queues for the lock, not SQLite's
    assert done.wait(10)
    writer.join()
    with db.read() as s:
        assert s.exec(select(RecommendationLog.task_id)).all() == [ids[-1]]


def test_when_the_batch_fails_each_task_is_still_logged_on_its_own(db, monkeypatch):
    ids = build(db)
    new = ids[-3:]

    whole = recommend.recommend_many

    def broken(session, tasks, *args, **kw):
        if len(tasks) > 1:
            raise RuntimeError("a task's data the batch cannot read")
        return whole(session, tasks, *args, **kw)

    monkeypatch.setattr(recommend, "recommend_many", broken)
    decision_log._write(db.engine, [(t, "claim") for t in new])
    with db.session() as s:
        rows = {r.task_id: r for r in s.exec(select(RecommendationLog))}
        shown = {t: recommend.recommend(s, s.get(Task, t)) for t in new}
    assert sorted(rows) == new
    assert all(rows[t].score == shown[t].score for t in new)
