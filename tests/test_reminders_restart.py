"""The real app as a process: killed with SIGKILL in the middle of a reminder sweep and
started again → every due reminder delivered exactly once. Two instances on one PostgreSQL
→ each notice posted once and each reminder once; when the leader dies the other takes over.

The clock is pinned with ``PROMOPILOT_FAKE_NOW``; ``PROMOPILOT_SWEEP_PAUSE_MS`` slows the
sweep so the kill lands inside it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.core.ports import Notice
from bot.core.settings import Settings
from bot.demo import seed
from bot.watch.ingest import ingest
from storage.db import Database, upgrade
from storage.models import ChatMessage, OutboxMessage, ReminderLog, Task, User
from tests.conftest import IN_CI, PG_ADMIN_URL, free_port
from tests.fakes.notice_feeds import NoticeServer

SH = ZoneInfo("Asia/Shanghai")
FAKE_NOW = datetime(2031, 3, 10, 10, 0, tzinfo=SH)
PROMOPILOT = str(Path(sys.executable).parent / "promopilot")
TIERS = ("72h#0", "24h#0", "4h#0", "1h#0", "unclaimed#0")


def prepare(url: str, tasks: int) -> Database:
    upgrade(url)
    db = Database(url)
    seed(db, Settings(database_url=url, _env_file=None), notices=False)
    ingest(db, [Notice(platform="tmall", external_id=f"K-{i}", title=f"天猫活动 {i}",
                       registration_end=FAKE_NOW + timedelta(minutes=30))
                for i in range(tasks)], now=FAKE_NOW - timedelta(days=10))
    return db


def start(url: str, tmp: Path, name: str, **env: str) -> tuple[subprocess.Popen, Path, int]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPILOT_")}
    base.update({
        "PROMOPILOT_DATABASE_URL": url, "PROMOPILOT_PORT": str(port),
        "PROMOPILOT_SANDBOX_ENABLED": "false", "PROMOPILOT_DEMO_ON_EMPTY": "false",
        "PROMOPILOT_FAKE_NOW": FAKE_NOW.isoformat(), "PROMOPILOT_SWEEP_INTERVAL_SECONDS": "1",
        "PROMOPILOT_OUTBOX_INTERVAL_SECONDS": "0.5", "PROMOPILOT_DIGEST_TIME": "",
        "PROMOPILOT_QUIET_HOURS": "", "PROMOPILOT_WATCH_INTERVAL_SECONDS": "1",
        "PROMOPILOT_REVIEW_POLL_SECONDS": "3600", "PROMOPILOT_LOG_LEVEL": "INFO",
        **env,
    })
    log = tmp / f"{name}.log"
    proc = subprocess.Popen([PROMOPILOT, "run"], cwd=tmp, env=base,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    return proc, log, port


def wait_for(check, timeout: float, what: str, procs=()) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        for proc, log in procs:
            if proc.poll() is not None:
                raise AssertionError(f"app exited: {log.read_text()[-3000:]}")
        time.sleep(0.1)
    tails = "\n".join(log.read_text()[-2500:] for _, log in procs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def count(db: Database, query) -> int:
    with db.session() as s:
        return s.exec(query).one()


def assert_each_reminder_once(db: Database, task_ids: list[int]) -> None:
    with db.session() as s:
        logged = Counter((r.task_id, r.tier) for r in s.exec(select(ReminderLog)))
        assert logged == Counter((t, tier) for t in task_ids for tier in TIERS)
        assert all(r.late for r in s.exec(select(ReminderLog)))  # all were overdue: late
        unsent = s.exec(select(OutboxMessage).where(OutboxMessage.status != "sent")).all()
        assert unsent == []
        cards = Counter(m.card_key for m in s.exec(select(ChatMessage).where(
            ChatMessage.card_key.like("reminder:%"))))
        assert cards == Counter(f"reminder:{t}:{tier}" for t in task_ids for tier in TIERS)
        manager = s.exec(select(User).where(User.name == "zhou.qiang")).one()
        private = [m.text for m in s.exec(select(ChatMessage).where(
            ChatMessage.visible_to == manager.id))]
        escalated = Counter(text.split("#")[1].split("「")[0] for text in private
                            if "仍无人认领" in text)
        assert escalated == Counter(str(t) for t in task_ids)  # one escalation per task


def test_sigkill_mid_sweep_then_restart_delivers_each_reminder_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    db = prepare(url, tasks=40)
    total = 40 * len(TIERS)
    logged = select(func.count()).select_from(ReminderLog)
    # First life: slow sweep, the outbox (after its first round) waits an hour.
    proc, log, _ = start(url, tmp_path, "first", PROMOPILOT_SWEEP_PAUSE_MS="40",
                         PROMOPILOT_OUTBOX_INTERVAL_SECONDS="3600")
    try:
        wait_for(lambda: count(db, logged) >= 30, 60, "the sweep to start", [(proc, log)])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    killed_at = count(db, logged)
    assert 0 < killed_at < total, killed_at  # the kill landed mid-sweep
    # Second life: normal pace; it finishes the sweep and delivers everything.
    proc, log, port = start(url, tmp_path, "second")
    try:
        wait_for(lambda: count(db, logged) == total and count(
            db, select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status != "sent")) == 0, 90, "all reminders", [(proc, log)])
        time.sleep(2.5)  # a few more sweeps and outbox rounds: nothing more may happen
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    with db.session() as s:
        task_ids = list(s.exec(select(Task.id).order_by(Task.id)))
    assert_each_reminder_once(db, task_ids)
    db.dispose()


@pytest.fixture
def pg_database():
    name = f"pp_two_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable: {exc!r}")
        pytest.skip(f"PostgreSQL unreachable: {exc!r}"[:200])
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def feed(notices: list[dict]) -> bytes:
    return json.dumps({"data": {"notices": notices}}, ensure_ascii=False).encode()


def notice(i: int) -> dict:
    return {"id": f"FEED-{i}", "title": f"京东活动 {i}", "body": "报名截止:2031年4月1日 18:00"}


def test_two_instances_on_postgresql_post_once_and_fail_over(pg_database, tmp_path):
    db = prepare(pg_database, tasks=10)
    server = NoticeServer()
    server.serve("/jd", feed([notice(i) for i in range(5)]))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - {{name: jd-feed, platform: jd, kind: http_json, "
                       f"url: '{server.base}/jd', interval: 10, retries: 1}}\n")
    env = {"PROMOPILOT_SOURCES_FILE": str(sources)}
    apps = [start(pg_database, tmp_path, f"app{i}", **env) for i in range(2)]
    procs = [(p, log) for p, log, _ in apps]
    feed_tasks = select(func.count()).select_from(Task).where(Task.id > 10)
    try:
        wait_for(lambda: count(db, select(func.count()).select_from(ReminderLog)) == 50
                 and count(db, feed_tasks) == 5
                 and count(db, select(func.count()).select_from(OutboxMessage).where(
                     OutboxMessage.status != "sent")) == 0, 90, "both apps' work", procs)
        time.sleep(3)
        leaders = [i for i, (_, log) in enumerate(procs) if "became leader" in log.read_text()]
        assert len(leaders) == 1, leaders  # one leader runs watchers, sweeps and the outbox
        with db.session() as s:
            task_ids = list(s.exec(select(Task.id).where(Task.id <= 10).order_by(Task.id)))
            notice_cards = Counter((m.channel_id, m.card_key) for m in s.exec(
                select(ChatMessage).where(ChatMessage.card_key.like("task:%"),
                                          ChatMessage.task_id > 10)))
        assert sorted(notice_cards.values()) == [1] * 5  # each new notice posted once
        assert {channel for channel, _ in notice_cards} == {"jd-promo"}
        assert_each_reminder_once(db, task_ids)

        # The leader dies; the other replica takes the lock and carries on.
        leader, _ = procs[leaders[0]]
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        killed = time.time()
        server.serve("/jd", feed([notice(i) for i in range(6)]))
        survivor = [procs[i] for i in range(2) if i != leaders[0]]
        wait_for(lambda: count(db, feed_tasks) == 6, 60, "the survivor to take over", survivor)
        assert time.time() - killed < 60
        assert "became leader" in survivor[0][1].read_text()
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        server.close()
        db.dispose()
