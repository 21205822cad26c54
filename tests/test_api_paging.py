"""Every list under /api answers one bounded page with an opaque keyset cursor, on SQLite and
PostgreSQL: following ``next_cursor`` returns every row exactly once even while rows are
added (and deadlines moved) between pages; ``limit`` defaults to 50 and stops at 200; a
cursor that is garbage, from another list or from other filters is a 422 in the one error
shape; unknown filter values and parameters are 422 too; 40,000 tasks are never one answer."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlmodel import select

from bot.core.i18n import t
from storage.models import AuditEvent, Campaign, Task, Team, User
from storage.types import utcnow

EN = {"Accept-Language": "en"}


@pytest.fixture
def client(settings, seeded) -> Iterator[TestClient]:
    from bot.web.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def add_tasks(db, n: int, *, platform: str = "jd", state: str = "new", tag: str = "") -> None:
    """``n`` campaigns with a task each, inserted in bulk."""
    now = utcnow()
    tag = tag or f"{time.time_ns()}"
    with db.session() as s:
        team = s.exec(select(Team.id)).first()
        first = (s.exec(select(Campaign.id).order_by(Campaign.id.desc())).first() or 0) + 1
    with db.engine.begin() as conn:
        for start in range(0, n, 5000):
            size = min(5000, n - start)
            conn.execute(insert(Campaign), [dict(
                platform=platform, external_id=f"bulk-{tag}-{start + i}", title=f"批量 {i}",
                type="限时折扣", requirements={}, source_url="", content_hash="x",
                version=1, created_at=now, updated_at=now) for i in range(size)])
    with db.session() as s:
        ids = list(s.exec(select(Campaign.id).where(
            Campaign.id >= first, Campaign.external_id.startswith(f"bulk-{tag}-"))))
    with db.engine.begin() as conn:
        for start in range(0, len(ids), 5000):
            conn.execute(insert(Task), [dict(
                campaign_id=c, team_id=team, state=state, version=1, created_at=now,
                updated_at=now, deadline=now + timedelta(days=(c * 7) % 30))
                for c in ids[start:start + 5000]])


def all_task_ids(db, **where) -> set[int]:
    with db.session() as s:
        query = select(Task.id)
        for name, value in where.items():
            query = query.where(getattr(Task, name) == value)
        return set(s.exec(query))


def walk(client, url: str, between=lambda: None, **params) -> list[dict]:
    """Every page from the first to the last; ``between`` runs before each next page."""
    items, cursor, pages = [], None, 0
    while True:
        answer = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"items", "next_cursor", "limit"}
        assert len(body["items"]) <= body["limit"]
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 1000, "the pages never end"
        between()


def test_pages_cover_every_task_once_while_tasks_are_added_between_pages(client, seeded):
    db = seeded
    add_tasks(db, 130)
    before = all_task_ids(db)
    added: list[int] = []

    def meanwhile() -> None:  # new tasks, and an old task's deadline moved to the front
        add_tasks(db, 3)
        with db.session() as s:
            moved = s.exec(select(Task).order_by(Task.id.desc())).first()
            moved.deadline = utcnow() - timedelta(days=400)
            s.add(moved)
        added[:] = sorted(all_task_ids(db) - before)

    seen = [t["id"] for t in walk(client, "/api/tasks", meanwhile, limit=37)]
    assert len(seen) == len(set(seen)), "a task came twice"
    assert before <= set(seen), f"missed {sorted(before - set(seen))[:5]}"
    assert set(added) <= set(seen)  # ascending: what was added meanwhile comes too
    assert seen == sorted(seen)

    newest_first = [t["id"] for t in walk(client, "/api/tasks", meanwhile, limit=41,
                                          order="desc")]
    assert len(newest_first) == len(set(newest_first))
    now_there = all_task_ids(db)
    assert before <= set(newest_first) <= now_there
    assert newest_first == sorted(newest_first, reverse=True)


def test_filtered_pages_are_exactly_the_matching_rows(client, seeded):
    db = seeded
    add_tasks(db, 60, platform="tmall", state="claimed")
    add_tasks(db, 60, platform="jd", state="new")
    wanted = all_task_ids(db, state="claimed")
    with db.session() as s:
        tmall_new = set(s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                               .where(Campaign.platform == "tmall", Task.state == "new")))
    seen = walk(client, "/api/tasks", state="claimed", limit=25)
    assert {t["id"] for t in seen} == wanted and len(seen) == len(wanted)
    both = walk(client, "/api/tasks", state="new", platform="tmall", limit=7)
    assert {t["id"] for t in both} == tmall_new
    campaigns = walk(client, "/api/campaigns", platform="tmall", limit=30)
    assert campaigns and {c["platform"] for c in campaigns} == {"tmall"}
    assert len({c["id"] for c in campaigns}) == len(campaigns)


def test_limit_defaults_to_50_and_stops_at_200(client, seeded):
    add_tasks(seeded, 260)
    first = client.get("/api/tasks").json()
    assert len(first["items"]) == 50 and first["limit"] == 50 and first["next_cursor"]
    assert len(client.get("/api/tasks", params={"limit": 200}).json()["items"]) == 200
    for bad in (201, 0, -1, 40000):
        answer = client.get("/api/tasks", params={"limit": bad}, headers=EN)
        assert answer.status_code == 422, bad
        detail = answer.json()["detail"]
        assert detail["code"] == "api.bad_limit" and "200" in detail["message"], detail
    zh = client.get("/api/audit", params={"limit": 500}).json()["detail"]["message"]
    assert zh == t("api.bad_limit", "zh-CN", name="limit", max=200, value=500)
    typed = client.get("/api/users", params={"limit": "lots"})
    assert typed.status_code == 422 and typed.json()["detail"]["code"] == "weberr.invalid_request"


def test_forty_thousand_tasks_are_never_one_answer(client, seeded):
    add_tasks(seeded, 40_000)
    started = time.monotonic()
    answer = client.get("/api/tasks")
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["items"]) == 50 and body["next_cursor"]
    deep = client.get("/api/tasks", params={"cursor": body["next_cursor"], "limit": 200,
                                            "state": "new"})
    assert deep.status_code == 422  # the cursor was made without the filter
    far = client.get("/api/tasks", params={"limit": 200, "order": "desc"}).json()
    assert len(far["items"]) == 200 and far["items"][0]["id"] == max(all_task_ids(seeded))
    assert time.monotonic() - started < 10


def test_bad_cursors_are_refused_with_422_in_the_one_error_shape(client, seeded):
    add_tasks(seeded, 10)
    tasks = client.get("/api/tasks", params={"limit": 2}).json()["next_cursor"]
    campaigns = client.get("/api/campaigns", params={"limit": 2}).json()["next_cursor"]
    new_only = client.get("/api/tasks", params={"limit": 2, "state": "new"}).json()["next_cursor"]
    assert client.get("/api/tasks", params={"cursor": tasks, "limit": 5}).status_code == 200
    forged = base64.urlsafe_b64encode(json.dumps({"l": "tasks", "a": "1 OR 1=1"}).encode())
    cases = {
        "garbage": ("/api/tasks", {"cursor": "not a cursor!"}, "api.bad_cursor"),
        "not JSON": ("/api/tasks", {"cursor": base64.urlsafe_b64encode(b"\xff\x00").decode()},
                     "api.bad_cursor"),
        "forged": ("/api/tasks", {"cursor": forged.decode()}, "api.bad_cursor"),
        "huge": ("/api/tasks", {"cursor": base64.urlsafe_b64encode(json.dumps(
            {"l": "tasks", "a": 10**30, "f": ""}).encode()).decode()}, "api.bad_cursor"),
        "another list": ("/api/tasks", {"cursor": campaigns}, "api.cursor_mismatch"),
        "other filters": ("/api/tasks", {"cursor": new_only, "state": "claimed"},
                          "api.cursor_mismatch"),
        "other order": ("/api/tasks", {"cursor": tasks, "order": "desc"},
                        "api.cursor_mismatch"),
        "audit": ("/api/audit", {"cursor": tasks}, "api.cursor_mismatch"),
    }
    for name, (url, params, code) in cases.items():
        answer = client.get(url, params=params, headers=EN)
        assert answer.status_code == 422, (name, answer.text)
        detail = answer.json()["detail"]
        assert detail["code"] == code and detail["message"], (name, detail)
        assert "cursor" in detail["message"]


def test_filters_and_parameters_are_checked_on_every_list(client, seeded):
    checks = [
        ("/api/tasks", {"stat": "new"}, "api.unknown_param"),
        ("/api/tasks", {"state": "bogus"}, "dash.bad_filter"),
        ("/api/tasks", {"owner": "nobody"}, "dash.bad_filter"),
        ("/api/tasks", {"owner": "me"}, "dash.bad_filter"),  # a token/demo caller is nobody
        ("/api/tasks", {"campaign_id": 999999}, "api.unknown_id"),
        ("/api/tasks", {"campaign_id": 10**12}, "weberr.invalid_request"),
        ("/api/tasks", {"order": "sideways"}, "dash.bad_filter"),
        ("/api/campaigns", {"type": "no such type"}, "dash.bad_filter"),
        ("/api/campaigns", {"platform": "amazon"}, "dash.bad_filter"),
        ("/api/users", {"role": "king"}, "dash.bad_filter"),
        ("/api/users", {"active": "perhaps"}, "weberr.invalid_request"),
        ("/api/audit", {"actor": "nobody-at-all"}, "dash.bad_filter"),
        ("/api/audit", {"action": "teleport"}, "dash.bad_filter"),
        ("/api/audit", {"task_id": 999999}, "api.unknown_id"),
        ("/api/audit", {"since": "yesterday"}, "api.bad_time"),
        ("/api/audit", {"page": "2"}, "api.unknown_param"),
    ]
    for url, params, code in checks:
        answer = client.get(url, params=params)
        assert answer.status_code == 422, (url, params, answer.text)
        detail = answer.json()["detail"]
        assert detail["code"] == code and detail["message"], (url, params, detail)
    unknown = client.get("/api/tasks", params={"stat": "new"}, headers=EN).json()["detail"]
    assert "stat" in unknown["message"] and "state" in unknown["message"]
    managers = client.get("/api/users", params={"role": "manager", "active": "true"}).json()
    with seeded.session() as s:
        expected = {u.name for u in s.exec(select(User)) if "manager" in (u.roles or [])
                    and u.active}
    assert expected and {u["name"] for u in managers["items"]} == expected


def test_audit_log_pages_and_filters(client, seeded):
    db = seeded
    add_tasks(db, 5)
    with db.session() as s:
        task_id = s.exec(select(Task.id).order_by(Task.id.desc())).first()  # a bare new task
    for action in ("claim", "draft", "request_approval"):
        client.post(f"/api/tasks/{task_id}/actions", json={"action": action,
                                                          "actor": "li.na"})
    now = utcnow()
    with db.engine.begin() as conn:
        conn.execute(insert(AuditEvent), [dict(
            task_id=None, actor="system", action="digest", detail={"n": i},
            created_at=now - timedelta(days=10)) for i in range(120)])
    everything = walk(client, "/api/audit", limit=45)
    with db.session() as s:
        total = len(s.exec(select(AuditEvent.id)).all())
    assert len(everything) == total and len({e["id"] for e in everything}) == total
    mine = walk(client, "/api/audit", task_id=task_id, limit=2)
    assert [e["action"] for e in mine][:1] == ["claim"] and {e["task_id"] for e in mine} == {
        task_id}
    claims = walk(client, "/api/audit", action="claim", actor="li.na")
    assert [(e["task_id"], e["action"]) for e in claims] == [(task_id, "claim")]
    recent = walk(client, "/api/audit", since=(now - timedelta(days=1)).isoformat())
    assert recent and all(e["action"] != "digest" for e in recent)
    old = walk(client, "/api/audit", until=(now - timedelta(days=1)).isoformat(), limit=200)
    assert len(old) == 120
    latest = client.get("/api/audit", params={"order": "desc", "limit": 1}).json()
    assert latest["items"][0]["id"] == max(e["id"] for e in everything)
