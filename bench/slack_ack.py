"""Slack click-to-ack latency: p50/p99 of 200 concurrent signed ``block_actions`` clicks
against PromoPilot's ``/slack/events``, beside a bare slack-bolt app that only acks the same
payload, in the same run. Slack gives an app 3 s; the ack must not wait for the work.

    .venv/bin/python bench/slack_ack.py [--clicks 200] [--rounds 3] [--database URL]

Both apps run as uvicorn subprocesses on 127.0.0.1 (client: aiohttp) and talk to a local fake Slack Web API
(tests/fakes/slack.py); every click is signed with the signing secret like Slack's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.card_actions import free_port, wait_up  # noqa: E402
from tests.fakes.slack import (  # noqa: E402
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    block_actions,
    form,
    sign,
)

BARE_APP = """
import os, re
from fastapi import FastAPI, Request
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.web.async_client import AsyncWebClient

bolt = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"],
                client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"],
                                      base_url=os.environ["PROMOPILOT_SLACK_API_URL"]))

@bolt.action(re.compile("^pp:"))
async def click(ack):
    await ack()

handler = AsyncSlackRequestHandler(bolt)
app = FastAPI()

@app.post("/slack/events")
async def events(request: Request):
    return await handler.handle(request)

@app.get("/healthz")
def healthz():
    return {"ok": True}
"""


def prepare(database_url: str, clicks: int) -> list[tuple[str, int, int]]:
    """Demo data plus one new task and one Slack user per click: (user, task, version)."""
    from bot.core.ports import Notice
    from bot.core.settings import Settings
    from bot.core.users import add_user
    from bot.demo import seed
    from bot.watch.ingest import ingest
    from storage.db import Database, upgrade
    from storage.models import Campaign, Task

    upgrade(database_url)
    settings = Settings(database_url=database_url, _env_file=None)
    db = Database(database_url)
    seed(db, settings, notices=False)
    ingest(db, [Notice(platform="tmall", external_id=f"SLACK-BENCH-{i}", title=f"压测 {i}")
                for i in range(clicks + 1)])
    out = []
    with db.session() as s:
        from sqlmodel import select

        rows = s.exec(select(Task.id, Task.version).join(Campaign)
                      .where(Campaign.external_id.like("SLACK-BENCH-%"))
                      .order_by(Task.id)).all()
        for i, (task_id, version) in enumerate(rows):
            uid = f"U0BENCH{i:04d}"
            add_user(s, f"bench{i}", ["ops"], chat="slack", external_id=uid, lang="en")
            out.append((uid, task_id, version))
    db.dispose()
    return out


def payload(user: str, task_id: int, version: int, n: int) -> str:
    from cards.callback import CallbackData

    return form(block_actions(user=user, channel="C0BENCH", message_ts="1700000000.000100",
                              action_id="pp:claim", value=CallbackData("claim", task_id,
                                                                       version).pack(),
                              trigger_id=f"bench-{n}-{task_id}-{time.time_ns()}"))


async def burst(url: str, bodies: list[str]) -> list[float]:
    """All clicks at once; each latency is request sent → Slack would have its 200."""
    connector = aiohttp.TCPConnector(limit=len(bodies))
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        async def one(body: str) -> float:
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
            start = time.perf_counter()
            async with client.post(url, data=body.encode(), headers=headers) as response:
                await response.read()
                elapsed = (time.perf_counter() - start) * 1000
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status}")
            return elapsed

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def report(name: str, latencies: list[float]) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:<34} n={len(latencies):>4}  p50={q[49]:7.1f} ms  p99={q[98]:7.1f} ms  "
          f"max={max(latencies):7.1f} ms")


def claimed(database_url: str) -> int:
    from sqlalchemy import text

    from storage.db import Database

    db = Database(database_url)
    with db.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM tasks WHERE state = 'claimed'")).scalar()
    db.dispose()
    return int(n or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    database_url = args.database or f"sqlite:///{tmp / 'bench.db'}"
    fake = FakeSlack().start()
    people = prepare(database_url, args.clicks * args.rounds)

    app_port, bare_port = free_port(), free_port()
    env = {**os.environ, "PROMOPILOT_DATABASE_URL": database_url,
           "PROMOPILOT_PORT": str(app_port), "PROMOPILOT_LOG_LEVEL": "WARNING",
           "PROMOPILOT_DEMO_ON_EMPTY": "false", "PROMOPILOT_SANDBOX_ENABLED": "false",
           "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "PROMOPILOT_SLACK_API_URL": fake.api_url, "PYTHONPATH": str(ROOT)}
    env.pop("SLACK_APP_TOKEN", None)
    (tmp / "bare_bolt.py").write_text(BARE_APP)
    servers = [
        subprocess.Popen([sys.executable, "-m", "bot.cli.main", "run"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_bolt:app", "--port",
                          str(bare_port), "--log-level", "warning"], cwd=tmp, env=env),
    ]
    try:
        wait_up(f"http://127.0.0.1:{app_port}/healthz")
        wait_up(f"http://127.0.0.1:{bare_port}/healthz")
        app_url = f"http://127.0.0.1:{app_port}/slack/events"
        bare_url = f"http://127.0.0.1:{bare_port}/slack/events"
        spare_user, spare_task, spare_version = people.pop()
        for url in (app_url, bare_url):  # first request: bolt's auth.test, connections
            asyncio.run(burst(url, [payload(spare_user, spare_task, spare_version, 0)]))
        time.sleep(1)
        before = claimed(database_url)
        print(f"{args.clicks} concurrent signed claim clicks x {args.rounds} rounds, "
              f"database={database_url.split(':')[0]}")
        totals: dict[str, list[float]] = {"bare slack-bolt (ack only)": [],
                                          "PromoPilot /slack/events": []}
        for n in range(args.rounds):
            batch = people[n * args.clicks:(n + 1) * args.clicks]
            bodies = [payload(u, t, v, n + 1) for u, t, v in batch]
            totals["bare slack-bolt (ack only)"] += asyncio.run(burst(bare_url, bodies))
            start = time.perf_counter()
            totals["PromoPilot /slack/events"] += asyncio.run(burst(app_url, bodies))
            deadline = time.time() + 120
            while claimed(database_url) < before + (n + 1) * args.clicks and \
                    time.time() < deadline:
                time.sleep(0.05)
            done = time.perf_counter() - start
            print(f"  round {n + 1}: {args.clicks} claims committed {done:5.2f} s after the "
                  f"burst started")
        for name, latencies in totals.items():
            report(name, latencies)
        refused = len(fake.calls("chat.postEphemeral"))
        print(f"ephemeral refusals sent: {refused} (expected 0: every click claims its own task)")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        fake.stop()


if __name__ == "__main__":
    main()
