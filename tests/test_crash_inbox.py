"""An acknowledged click is never lost (SIGKILL, real processes).

``PROMOPILOT_INBOX_PAUSE_MS`` holds every stored event back before its work, so the first
process acknowledges a burst of clicks — Slack (signed interactivity payloads), DingTalk
(stream card callbacks), the console, Feishu (card callbacks) — and is killed with all of
them acknowledged and none done. A second process (no pause) takes the rows over once their
short lease has run out and does each one exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlmodel import func, select

from bot.core.ports import Notice
from bot.core.settings import Settings
from bot.core.users import link
from bot.demo import seed
from bot.watch.ingest import ingest
from cards.callback import CallbackData
from storage.db import Database, upgrade
from storage.models import AuditEvent, InboxEvent, Task, User
from storage.types import utcnow
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu, card_action
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, block_actions, form, post
from tests.procs import App, empty_database, wait_for

PAUSED = {"PROMOPILOT_INBOX_PAUSE_MS": "4000"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from empty_database(request.param, tmp_path)


def prepare(url: str, tasks: int, links: dict[str, str]) -> tuple[Database, list[int]]:
    upgrade(url)
    db = Database(url)
    seed(db, Settings(database_url=url, _env_file=None), notices=False)
    with db.session() as s:
        lina = s.exec(select(User).where(User.name == "li.na")).one()
        for chat, external_id in links.items():
            link(s, lina, chat, external_id)
    now = utcnow()
    report = ingest(db, [Notice(platform="tmall", external_id=f"INBOX-{i}", title=f"会场 {i}",
                                registration_end=now + timedelta(days=10))
                         for i in range(tasks)])
    with db.session() as s:
        ids = list(s.exec(select(Task.id).where(Task.campaign_id.in_(report.new))
                          .order_by(Task.id)))
    return db, ids


def value(task_id: int) -> str:
    return CallbackData("claim", task_id, 1).pack()


def inbox(db: Database) -> list[InboxEvent]:
    with db.session() as s:
        return list(s.exec(select(InboxEvent).order_by(InboxEvent.id)))


def claims(db: Database, task_id: int) -> int:
    with db.session() as s:
        return s.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.task_id == task_id, AuditEvent.action == "claim")).one()


def kill_with_backlog(db: Database, first: App, expected: int) -> None:
    """Everything acknowledged and stored, nothing done yet: SIGKILL."""
    try:
        wait_for(lambda: len(inbox(db)) >= expected, 30, "the events to be stored", [first])
    finally:
        first.kill()
    rows = inbox(db)
    assert len(rows) == expected and {r.status for r in rows} == {"working"}
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "claim")).one() == 0  # acknowledged, none processed


def finish(db: Database, tmp_path, env: dict, tasks: list[int]) -> None:
    second = App(db.url, tmp_path, "second", env)
    try:
        wait_for(lambda: all(r.status == "done" for r in inbox(db)), 45,
                 "the acknowledged events to be done", [second])
        time.sleep(1)
    finally:
        second.stop()
    rows = inbox(db)
    assert all(r.attempts == 2 and r.status == "done" for r in rows)  # taken over, once
    for task_id in tasks:
        assert claims(db, task_id) == 1, task_id
    with db.session() as s:
        lina = s.exec(select(User).where(User.name == "li.na")).one()
        assert {t.claimed_by for t in s.exec(select(Task).where(Task.id.in_(tasks)))} \
            == {lina.id}


def test_acknowledged_clicks_from_slack_dingtalk_and_console_survive_sigkill(url, tmp_path):
    db, tasks = prepare(url, 12, {"slack": "U0LINA", "dingtalk": "staff-lina"})
    slack_tasks, dingtalk_tasks, console_tasks = tasks[:6], tasks[6:9], tasks[9:]
    slack, dingtalk = FakeSlack().start(), FakeDingTalk().start()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "PROMOPILOT_SLACK_API_URL": slack.api_url,
           "DINGTALK_CLIENT_ID": dingtalk.client_id,
           "DINGTALK_CLIENT_SECRET": dingtalk.client_secret,
           "DINGTALK_CARD_TEMPLATE_ID": "promopilot-card.schema",
           "PROMOPILOT_DINGTALK_API_URL": dingtalk.url, "PROMOPILOT_DEMO": "true"}
    try:
        first = App(db.url, tmp_path, "first", {**env, **PAUSED}).ready()
        dingtalk.wait_connected()
        for n, task_id in enumerate(slack_tasks):
            payload = block_actions(user="U0LINA", channel="C0TMALL", message_ts="1.0",
                                    action_id="pp:claim", value=value(task_id),
                                    trigger_id=f"trig-crash-{n}")
            answer = post(f"{first.url}/slack/events", form(payload))
            assert answer.status_code == 200  # acknowledged
        for task_id in dingtalk_tasks:
            message_id = dingtalk.push_click(f"pp-none-{task_id}", "staff-lina", value(task_id))
            assert dingtalk.wait_ack(message_id)["code"] == 200
        answers: list[dict] = []

        def console_click(task_id: int) -> None:
            answers.append(httpx.post(f"{first.url}/console/api/click", timeout=10, json={
                "channel": "tmall-promo", "user": "li.na", "value": value(task_id),
                "event_id": f"console-{task_id}"}).json())

        threads = [threading.Thread(target=console_click, args=(t,)) for t in console_tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == len(console_tasks)
        assert all(a.get("pending") for a in answers), answers  # "working on it"
        kill_with_backlog(db, first, len(tasks))
        finish(db, tmp_path, env, tasks)
    finally:
        slack.stop()
        dingtalk.stop()
    db.dispose()


def test_acknowledged_feishu_clicks_survive_sigkill(url, tmp_path):
    db, tasks = prepare(url, 4, {"feishu": "ou_lina"})
    fake = FakeFeishu("cli_inboxcrash", "app-secret").start()
    env = {"FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": "app-secret",
           "FEISHU_VERIFICATION_TOKEN": "vtoken", "PROMOPILOT_FEISHU_DOMAIN": fake.url,
           "PROMOPILOT_FEISHU_MODE": "http"}
    try:
        first = App(db.url, tmp_path, "first", {**env, **PAUSED}).ready()

        answers: list[tuple[float, int, dict]] = []

        def click(task_id: int) -> None:
            event = card_action({"pp": value(task_id)}, open_id="ou_lina",
                                chat_id="oc_tmall_group", message_id=f"om_{task_id}",
                                token="vtoken", event_id=f"evt-crash-{task_id}")
            started = time.monotonic()
            answer = httpx.post(f"{first.url}/feishu/events", timeout=10,
                                content=json.dumps(event, ensure_ascii=False).encode(),
                                headers={"Content-Type": "application/json"})
            answers.append((time.monotonic() - started, answer.status_code, answer.json()))

        threads = [threading.Thread(target=click, args=(t,)) for t in tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == len(tasks)
        for took, status, body in answers:  # inside Feishu's 3 s: "working on it"
            assert took < 3.0 and status == 200, (took, status, body)
            assert body["toast"]["type"] == "info" and "正在处理" in body["toast"]["content"]
        kill_with_backlog(db, first, len(tasks))
        finish(db, tmp_path, env, tasks)
    finally:
        fake.stop()
    db.dispose()
