"""Watching the sandbox feed: idempotent ingest, updates in place, malformed notices survive."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from adapters.platforms.http_json import HttpJsonSource
from bot.watch.ingest import ingest
from bot.watch.watcher import Watcher
from cards.builders import BUILDERS
from cards.render_html import render_html
from storage.models import AuditEvent, Campaign, OutboxMessage, Task


class Feed:
    """A local HTTP server answering whatever body (or status) the test sets."""

    def __init__(self) -> None:
        self.body: bytes = b"{}"
        self.status = 200
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(feed.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(feed.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/notices"

    def serve(self, notices: list) -> None:
        self.body = json.dumps({"data": {"notices": notices}}, ensure_ascii=False).encode()


@pytest.fixture
def feed():
    f = Feed()
    yield f
    f.server.shutdown()


def notice(**over) -> dict:
    base = {"id": "N-1", "title": "京东年货节报名", "type": "大促",
            "registration": {"start": "2026-12-01T10:00:00+08:00", "end": "2026-12-05 23:59"},
            "event": {"start": "2027-01-10T00:00:00+08:00", "end": None},
            "requirements": {"min_discount": 0.1}, "body": "正文"}
    return {**base, **over}


def test_same_notice_twice_is_one_task_and_a_change_updates_it(seeded, feed):
    db = seeded
    source = HttpJsonSource("t", "jd", feed.url)
    feed.serve([notice()])
    first = Watcher(db, [source]).run_once()
    assert len(first.new) == 1
    assert Watcher(db, [source]).run_once().unchanged == 1
    feed.serve([notice(registration={"start": "2026-12-01T10:00:00+08:00",
                                     "end": "2026-12-07T23:59:00+08:00"})])
    changed = Watcher(db, [source]).run_once()
    assert changed.updated == first.new and not changed.new
    with db.session() as s:
        campaign = s.exec(select(Campaign).where(Campaign.external_id == "N-1")).one()
        tasks = s.exec(select(Task).where(Task.campaign_id == campaign.id)).all()
        assert campaign.version == 2 and len(tasks) == 1
        assert tasks[0].deadline.isoformat() == "2026-12-07T15:59:00+00:00"  # Shanghai → UTC
        update = s.exec(select(AuditEvent).where(AuditEvent.action == "notice_updated")).one()
        assert update.detail["changes"]["registration_end"][0].startswith("2026-12-05T15:59")


def test_naive_times_are_read_in_the_team_zone(seeded, feed):
    feed.serve([notice()])
    HttpJsonSource("t", "jd", feed.url).fetch()
    n = HttpJsonSource("t", "jd", feed.url).fetch()[0]
    assert n.registration_end.utcoffset().total_seconds() == 8 * 3600


def test_malformed_notices_are_stored_safely_or_rejected(seeded, feed, caplog):
    db = seeded
    script = '<script>alert("x")</script><img src=x onerror=alert(1)> 双11 & <b>'
    feed.serve([
        notice(id="LONG", title="超长标题" * 2500),  # 10,000 characters
        notice(id="HTML", title=script, body=script),
        notice(id="NODATES", registration=None, event=None),
        notice(id="BADDATE", registration={"start": "next tuesday", "end": "soon"}),
        notice(id=None),
        notice(id="BADREQ", requirements=["not", "an", "object"]),
        "not an object",
        notice(id="CTRL", title="控制\x00字符\x1b[31m"),
    ])
    source = HttpJsonSource("t", "jd", feed.url)
    report = Watcher(db, [source]).run_once()
    assert len(report.new) == 4 and not report.failed
    assert len(source.rejected) == 4
    assert any("unreadable time" in r for r in source.rejected)
    with db.session() as s:
        by_id = {c.external_id: c for c in s.exec(select(Campaign))}
        assert len(by_id["LONG"].title) == 500 and by_id["LONG"].title.endswith("…")
        assert by_id["HTML"].title == script  # kept verbatim, escaped when shown
        assert by_id["CTRL"].title == "控制字符[31m"
        nodates = s.exec(select(Task).where(Task.campaign_id == by_id["NODATES"].id)).one()
        assert nodates.deadline is None
        card = BUILDERS["task"](s, {"task_id": nodates.id}, "en")
        assert "Deadline unclear" in str(card.fields)
        html_task = s.exec(select(Task).where(Task.campaign_id == by_id["HTML"].id)).one()
        html = render_html(BUILDERS["task"](s, {"task_id": html_task.id}, "zh-CN"))
        assert "<script>" not in html and "&lt;script&gt;" in html


def test_source_failures_are_reported_not_raised(seeded, feed):
    db = seeded
    feed.status = 500
    watcher = Watcher(db, [HttpJsonSource("broken", "jd", feed.url)])
    watcher.run_once()
    health = watcher.health["broken"]
    assert not health.ok and health.consecutive_failures == 1 and "500" in health.last_error
    feed.status, feed.body = 200, b"{not json"
    watcher.run_once()
    assert watcher.health["broken"].consecutive_failures == 2
    feed.serve([notice()])
    watcher.run_once()
    assert watcher.health["broken"].ok


def test_new_notice_posts_one_card_per_bound_channel(seeded):
    from bot.core.ports import Notice

    db = seeded
    n = Notice(platform="douyin", external_id="DY-1", title="抖音测试")
    ingest(db, [n])
    ingest(db, [n])
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.card_key.is_not(None))).all()
        mine = [r for r in rows if r.payload["params"]["task_id"] ==
                s.exec(select(Task.id).join(Campaign).where(Campaign.external_id == "DY-1")).one()]
        assert [(r.chat, r.channel_id) for r in mine] == [("web", "douyin-pdd")]
