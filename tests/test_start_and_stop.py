"""Starting and stopping real processes: replicas started together on an empty database both
come up (migrations and demo seeding take turns), and a watch pass still running when the
app is told to stop does not count its own shutdown as every source failing."""

from __future__ import annotations

import signal
import time
from collections import Counter

import httpx
import pytest
from sqlmodel import func, select

from adapters.platforms.sandbox.seed import demo_notices
from bot.demo import PEOPLE
from storage.db import Database, upgrade
from storage.models import Campaign, Platform, SandboxNotice, Task, Team, User
from storage.models_watch import SourceState
from storage.types import utcnow
from tests.fakes.notice_feeds import NoticeServer
from tests.procs import App, empty_database, wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from empty_database(request.param, tmp_path)


def count(db: Database, model) -> int:  # noqa: ANN001
    with db.session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_two_replicas_started_together_on_an_empty_database(url, tmp_path):
    env = {"PROMOPILOT_DEMO_ON_EMPTY": "true", "PROMOPILOT_SANDBOX_ENABLED": "true"}
    apps = [App(url, tmp_path, f"replica{i}", env, migrate=True) for i in range(2)]
    try:
        for app in apps:
            app.ready(60)  # both up: neither crashed on the other's migrations or seeding
        time.sleep(1)
        assert all(app.proc.poll() is None for app in apps)
    finally:
        for app in apps:
            app.stop()
    logs = "\n".join(app.tail(200_000) for app in apps)
    assert "IntegrityError" not in logs and "Traceback" not in logs, logs[-3000:]
    db = Database(url)
    try:
        notices = sum(len(items) for items in demo_notices(utcnow()).values())
        assert count(db, Team) == 1
        assert count(db, User) == len(PEOPLE)
        assert count(db, SandboxNotice) == notices
        with db.session() as s:
            campaigns = Counter(s.exec(select(Campaign.external_id)))
            assert s.exec(select(func.count()).select_from(Task)).one() == len(campaigns)
            assert s.exec(select(func.count()).select_from(Platform)).one() >= 4
        assert set(campaigns.values()) == {1}  # each demo notice became one campaign
    finally:
        db.dispose()


def test_watch_pass_at_shutdown_does_not_mark_sources_failed(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    slow = NoticeServer()
    slow.serve("/slow", b'{"data": {"notices": []}}', delay=2.0)
    sources = tmp_path / "sources.yaml"
    sources.write_text(  # a slow outside feed, then two feeds served by this app itself
        "sources:\n"
        f"  - {{name: slow-feed, platform: jd, kind: http_json, url: '{slow.base}/slow', "
        "interval: 10, retries: 1, timeout: 10}\n"
        "  - {name: self-tmall, platform: tmall, kind: sandbox, interval: 10, retries: 1}\n"
        "  - {name: self-jd, platform: jd, kind: sandbox, interval: 10, retries: 1}\n")
    app = App(url, tmp_path, "watcher", {
        "PROMOPILOT_DEMO": "true", "PROMOPILOT_SOURCES_FILE": str(sources),
        "PROMOPILOT_WATCH_INTERVAL_SECONDS": "10"}).ready()
    console = httpx.Client(timeout=30)
    try:
        # An open console keeps uvicorn's graceful shutdown waiting, with the listening
        # socket already closed: the watch pass goes on meanwhile.
        with console.stream("GET", f"{app.url}/console/events") as events:
            wait_for(lambda: slow.asked("/slow"), 40, "the watch pass to reach the slow feed",
                     [app])
            app.proc.send_signal(signal.SIGTERM)
            time.sleep(3.5)  # the slow fetch returns; the pass would reach the app's own feeds
            assert app.proc.poll() is None and events.status_code == 200
        app.proc.wait(20)
    finally:
        console.close()
        app.kill()
        slow.close()
    db = Database(url)
    try:
        with db.session() as s:
            states = {st.name: st for st in s.exec(select(SourceState))}
        failed = {name: st.last_error for name, st in states.items()
                  if not st.ok or st.consecutive_failures}
        assert failed == {}, failed  # stopping is not the sources' fault
        assert "source failed" not in app.tail(200_000)
    finally:
        db.dispose()
