"""Two replicas on one PostgreSQL database and a third process (this test) hammering both with
signed Slack claim clicks: two people race for every task, and each click reaches both
replicas (Slack's retry after a timeout lands wherever the load balancer sends it). Every
click is processed once, every task has one winner, every card update lands once and every
loser hears why once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, text, update

from cards.callback import CallbackData
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, block_actions, form, sign
from tests.procs import App, empty_database, wait_for

TASKS = 60
CHANNELS = 20
PEOPLE = [f"U0HAMMER{i}" for i in range(6)]


@pytest.fixture
def pg(tmp_path: Path):
    yield from empty_database("postgresql", tmp_path)


def _prepare(url: str) -> list[int]:
    from sqlmodel import select

    from bot.core.ports import Notice
    from bot.core.settings import Settings
    from bot.core.users import add_user
    from bot.demo import seed
    from bot.watch.ingest import ingest
    from storage.db import Database, upgrade
    from storage.models import ChatMessage, OutboxMessage, Task
    from storage.types import utcnow

    upgrade(url)
    db = Database(url)
    seed(db, Settings(database_url=url, _env_file=None), notices=False)
    ingest(db, [Notice(platform="tmall", external_id=f"HAMMER-{i}", title=f"压测 {i}")
                for i in range(TASKS)])
    with db.session() as s:
        for n, uid in enumerate(PEOPLE):
            add_user(s, f"hammer{n}", ["ops"], chat="slack", external_id=uid, lang="en")
        ids = [int(i) for i in s.exec(select(Task.id).order_by(Task.id))]
        s.execute(update(OutboxMessage).values(status="sent"))  # the notice cards are out
    now = utcnow()
    with db.engine.begin() as conn:  # each task's card is showing in a Slack channel
        conn.execute(insert(ChatMessage), [
            {"chat": "slack", "channel_id": f"C0HAM{t % CHANNELS:02d}", "card_key": f"task:{t}",
             "message_ref": f"1700000000.{t:06d}", "task_id": t, "created_at": now,
             "updated_at": now} for t in ids])
    db.dispose()
    return ids


def _click(task_id: int, user: str, n: int) -> tuple[str, dict]:
    body = form(block_actions(
        user=user, channel=f"C0HAM{task_id % CHANNELS:02d}",
        message_ts=f"1700000000.{task_id:06d}", action_id="pp:claim",
        value=CallbackData("claim", task_id, 1).pack(), trigger_id=f"hammer-{task_id}-{n}"))
    return body, {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}


async def _hammer(urls: list[str], clicks: list[tuple[str, dict]]) -> Counter:
    """Every click to every replica at once (50 in flight); the answers' status codes."""
    statuses: Counter = Counter()
    gate = asyncio.Semaphore(50)
    async with httpx.AsyncClient(timeout=10) as client:
        async def send(url: str, body: str, headers: dict, retry: int) -> None:
            async with gate:
                extra = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"} \
                    if retry else {}
                response = await client.post(f"{url}/slack/events", content=body,
                                             headers={**headers, **extra})
                statuses[response.status_code] += 1

        await asyncio.gather(*(send(url, body, headers, i)
                               for body, headers in clicks for i, url in enumerate(urls)))
    return statuses


def _count(url: str, sql: str) -> list:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def test_two_replicas_hammered_process_each_click_once_and_update_each_card_once(pg, tmp_path):
    started = time.monotonic()
    ids = _prepare(pg)
    fake = FakeSlack().start()
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "PROMOPILOT_SLACK_API_URL": fake.api_url, "PROMOPILOT_LOG_LEVEL": "WARNING",
           "PROMOPILOT_SESSION_SECRET": "hammer-secret"}
    apps = [App(pg, tmp_path, f"replica{n}", env) for n in (1, 2)]
    try:
        for app in apps:
            app.ready()
        # two people race for each task; each click is delivered to both replicas
        clicks = [_click(t, PEOPLE[(t + k) % len(PEOPLE)], k) for t in ids for k in (0, 1)]
        statuses = asyncio.run(_hammer([app.url for app in apps], clicks))
        assert statuses == Counter({200: len(clicks) * 2}), statuses

        def settled() -> bool:
            inbox = _count(pg, "SELECT status, count(*) FROM inbox GROUP BY status")
            return dict(inbox) == {"done": len(clicks)} and \
                len(fake.calls("chat.update")) >= len(ids) and \
                len(fake.calls("chat.postEphemeral")) >= len(ids)

        wait_for(settled, 25, "every click processed and every card updated", apps)
        time.sleep(1.0)  # anything sent twice would arrive now
        claims = _count(pg, "SELECT task_id, count(*) FROM audit_events WHERE action = 'claim' "
                            "GROUP BY task_id")
        assert sorted(t for t, _ in claims) == ids and {n for _, n in claims} == {1}
        winners = dict(_count(pg, "SELECT id, claimed_by FROM tasks"))
        assert all(winners[t] for t in ids)
        done = _count(pg, "SELECT key, attempts FROM inbox")
        assert len(done) == len(clicks) and {n for _, n in done} == {1}  # each stored once,
        #                                      run once, by whichever replica stored it
        processed = _count(pg, "SELECT count(*) FROM processed_events")[0][0]
        assert processed == len(ids)  # the winners' claims; a refused one keeps no row
        updates = Counter(c.body["ts"] for c in fake.calls("chat.update"))
        assert set(updates) == {f"1700000000.{t:06d}" for t in ids}
        assert set(updates.values()) == {1}, [ts for ts, n in updates.items() if n > 1]
        assert fake.calls("chat.postMessage") == []  # updated in place, never posted again
        losers = Counter(c.body["user"] for c in fake.calls("chat.postEphemeral"))
        assert sum(losers.values()) == len(ids)  # one "already claimed by …" per lost race
        sent = _count(pg, "SELECT status, count(*) FROM outbox WHERE key LIKE 'task:%:v2:slack:%' "
                          "GROUP BY status")
        assert dict(sent) == {"sent": len(ids)}
    finally:
        for app in apps:
            app.stop()
        fake.stop()
    assert time.monotonic() - started < 45
