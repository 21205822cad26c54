"""p50/p99 latency of card actions (claim clicks) against the running app, beside a bare
FastAPI endpoint measured in the same run (the floor).

    .venv/bin/python bench/card_actions.py [--actions 2000] [--clients 50] [--database URL]

Both servers run as uvicorn subprocesses on 127.0.0.1; the client is httpx (async).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
from fastapi import FastAPI
from pydantic import BaseModel
app = FastAPI()
class Click(BaseModel):
    channel: str
    user: str
    value: str
@app.post("/click")
def click(body: Click) -> dict:
    return {"ok": True, "text": body.value}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def prepare(database_url: str, tasks: int) -> None:
    sys.path.insert(0, str(ROOT))
    from bot.core.ports import Notice
    from bot.core.settings import Settings
    from bot.demo import seed
    from bot.watch.ingest import ingest
    from storage.db import Database, upgrade

    upgrade(database_url)
    settings = Settings(database_url=database_url, _env_file=None)
    db = Database(database_url)
    seed(db, settings, notices=False)
    ingest(db, [Notice(platform="tmall", external_id=f"BENCH-{i}", title=f"压测活动 {i}")
                for i in range(tasks)])
    db.dispose()


async def hammer(url: str, bodies: list[dict], clients: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            response = await client.post(url, json=body)
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200 or not response.json().get("ok"):
                raise RuntimeError(f"unexpected answer {response.status_code}: {response.text}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return latencies


def report(name: str, latencies: list[float], seconds: float) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:<28} n={len(latencies):>5}  p50={q[49]:7.1f} ms  p99={q[98]:7.1f} ms  "
          f"throughput={len(latencies) / seconds:7.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    database_url = args.database or f"sqlite:///{tmp / 'bench.db'}"
    prepare(database_url, args.actions)

    app_port, bare_port = free_port(), free_port()
    env = {**os.environ, "PROMOPILOT_DATABASE_URL": database_url,
           "PROMOPILOT_PORT": str(app_port), "PROMOPILOT_LOG_LEVEL": "WARNING",
           "PROMOPILOT_DEMO_ON_EMPTY": "false", "PROMOPILOT_SANDBOX_ENABLED": "false",
           "PROMOPILOT_DEMO": "true"}  # console clicks name the user, as in the demo
    (tmp / "bare.py").write_text(BARE_APP)
    servers = [
        subprocess.Popen([sys.executable, "-m", "bot.cli.main", "run"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "uvicorn", "bare:app", "--port",
                          str(bare_port), "--log-level", "warning"], cwd=tmp),
    ]
    try:
        wait_up(f"http://127.0.0.1:{app_port}/healthz")
        wait_up(f"http://127.0.0.1:{bare_port}/docs")
        from cards.callback import CallbackData

        users = ["li.na", "wang.fang", "alex", "zhou.qiang"]
        bodies = [{"channel": "tmall-promo", "user": users[i % len(users)],
                   "value": CallbackData("claim", i + 1, 1).pack()}
                  for i in range(args.actions)]
        print(f"{args.actions} claim clicks, {args.clients} concurrent clients, "
              f"database={database_url.split(':')[0]}")
        for name, url in [("bare FastAPI (floor)", f"http://127.0.0.1:{bare_port}/click"),
                          ("PromoPilot card action", f"http://127.0.0.1:{app_port}/console/api/click")]:
            start = time.perf_counter()
            latencies = asyncio.run(hammer(url, bodies, args.clients))
            report(name, latencies, time.perf_counter() - start)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
