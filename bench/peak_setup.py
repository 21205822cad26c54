"""Set-up for bench/peak.py: databases, demo data and tasks, bare floor apps, servers, wrk.

Every task a run clicks is its own (distinct tasks, like a peak of different campaigns);
each already shows its card in a Slack channel, a Feishu chat and the console, so a click
updates real messages through the outbox.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, text, update
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LUA = ROOT / "bench" / "wrk" / "replay.lua"
PG_ADMIN = os.environ.get("PROMOPILOT_BENCH_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CHANNELS = 50  # Slack channels / Feishu chats the tasks' cards are spread over
SLACK_USERS = [f"U0BENCH{i}" for i in range(8)]
FEISHU_USERS = [f"ou_bench{i}" for i in range(8)]
WEB_USERS = ["li.na", "wang.fang", "alex", "zhou.qiang"]
FEISHU_TOKEN, FEISHU_KEY = "bench-verification-token", "bench-encrypt-key"

# The request body both floor apps parse (PromoPilot's action body) and their health check.
ACTION_IN = """
class ActionIn(BaseModel):
    action: str
    actor: str
    comment: str | None = None
    event_id: str | None = None
    version: int | None = None
"""
HEALTHZ = """
@app.get("/healthz")
def healthz():
    return {"ok": True}
"""

BARE_APP = ("""
import os, re
from fastapi import FastAPI, Request
from pydantic import BaseModel
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.web.async_client import AsyncWebClient
import lark_oapi as lark
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse
from fastapi.responses import Response

app = FastAPI()

""" + ACTION_IN + """
@app.post("/api/tasks/{task_id}/actions")
def act(task_id: int, body: ActionIn) -> dict:  # a thread-pool endpoint, like PromoPilot's
    return {"task_id": task_id, "action": body.action, "before": "new", "state": "claimed",
            "version": 2, "duplicate": False}

bolt = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"],
                client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"],
                                      base_url=os.environ["PROMOPILOT_SLACK_API_URL"]))

@bolt.action(re.compile("^pp:"))
async def click(ack):
    await ack()

slack = AsyncSlackRequestHandler(bolt)

@app.post("/slack/events")
async def slack_events(request: Request):
    return await slack.handle(request)

feishu = lark.EventDispatcherHandler.builder(
    os.environ["FEISHU_ENCRYPT_KEY"], os.environ["FEISHU_VERIFICATION_TOKEN"]
).register_p2_card_action_trigger(
    lambda data: P2CardActionTriggerResponse({"toast": {"type": "info", "content": "ok"}})
).build()

@app.post("/feishu/events")
async def feishu_events(request: Request):
    raw = lark.RawRequest()
    raw.uri, raw.body = request.url.path, await request.body()
    raw.headers = {k.title(): v for k, v in request.headers.items()}  # lark: X-Lark-…
    answer = feishu.do(raw)
    return Response(answer.content, status_code=answer.status_code,
                    media_type="application/json")

""" + HEALTHZ)


WRITING_APP = ("""
import os
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import bindparam, insert, update
from storage.db import make_engine
from storage.models import AuditEvent, OutboxMessage, Task
from storage.types import utcnow

# 40 a process: two workers stay inside PostgreSQL's 100 connections
engine = make_engine(os.environ["PROMOPILOT_DATABASE_URL"], pool_size=40, max_overflow=0)
app = FastAPI()
TASKS = Task.__table__
# built once, bound per request (building a Core statement costs more than running it)
CLAIM = (update(TASKS).where(TASKS.c.id == bindparam("task_id"), TASKS.c.state == "new",
                             TASKS.c.version == bindparam("seen"))
         .values(state="claimed", version=TASKS.c.version + 1, updated_at=bindparam("now"))
         .returning(TASKS.c.state, TASKS.c.version))
AUDIT, OUTBOX = insert(AuditEvent.__table__), insert(OutboxMessage.__table__)

""" + ACTION_IN + """
@app.post("/api/tasks/{task_id}/actions")
def act(task_id: int, body: ActionIn) -> dict:  # a thread-pool endpoint, like PromoPilot's
    now = utcnow()
    with engine.begin() as conn:  # the least a claim writes: the task, its audit, its card
        row = conn.execute(CLAIM, {"task_id": task_id, "seen": body.version, "now": now}).first()
        conn.execute(AUDIT, {"task_id": task_id, "actor": body.actor, "action": body.action,
                             "from_state": "new", "to_state": "claimed", "detail": {},
                             "created_at": now})
        conn.execute(OUTBOX, {"key": f"floor:{task_id}", "chat": "web", "channel_id": "floor",
                              "kind": "card", "status": "sent", "card_key": f"task:{task_id}",
                              "task_id": task_id, "payload": {}, "attempts": 0,
                              "lease_owner": "", "next_attempt_at": now, "created_at": now})
    return {"task_id": task_id, "action": body.action, "before": "new",
            "state": row.state if row else "taken", "version": row.version if row else 0,
            "duplicate": False}

""" + HEALTHZ)


FLOOR_APPS = {"bare_app": BARE_APP, "writing_app": WRITING_APP}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def fresh_pg() -> tuple[str, str]:
    name = f"pp_bench_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), name


def drop_pg(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def prepare(url: str, tasks: int) -> list[int]:
    """Demo people and channels, ``tasks`` new tasks (ids returned), each with its card shown
    in the console, a Slack channel and a Feishu chat; bench people on Slack and Feishu."""
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
    for start in range(0, tasks, 5000):
        ingest(db, [Notice(platform="tmall", external_id=f"PEAK-{i}", title=f"双11 压测活动 {i}")
                    for i in range(start, min(tasks, start + 5000))])
    with db.session() as s:
        for i, (uid, oid) in enumerate(zip(SLACK_USERS, FEISHU_USERS, strict=True)):
            user = add_user(s, f"bench{i}", ["ops"], chat="slack", external_id=uid, lang="en")
            from bot.core.users import link

            link(s, user, "feishu", oid)
        ids = list(s.exec(select(Task.id).order_by(Task.id)))
        # the ingest cards count as posted (a run starts with an empty outbox), and as shown
        # where they went: a click updates the console's card, as in use, not posts it anew
        shown = s.exec(select(OutboxMessage.chat, OutboxMessage.channel_id,
                              OutboxMessage.card_key, OutboxMessage.task_id)
                       .where(OutboxMessage.kind == "card", OutboxMessage.chat == "web",
                              OutboxMessage.status == "pending")).all()
        s.execute(update(OutboxMessage).values(status="sent"))
    rows, now = [], utcnow()
    rows += [{"chat": chat, "channel_id": channel, "card_key": key, "task_id": task_id,
              "message_ref": f"web-bench{n}", "created_at": now, "updated_at": now}
             for n, (chat, channel, key, task_id) in enumerate(shown)]
    for n, task_id in enumerate(ids):
        c = n % CHANNELS
        rows.append({"chat": "slack", "channel_id": f"C0BENCH{c:02d}", "card_key": f"task:{task_id}",
                     "message_ref": f"1700000000.{task_id:06d}", "task_id": task_id,
                     "created_at": now, "updated_at": now})
        rows.append({"chat": "feishu", "channel_id": f"oc_bench{c:02d}",
                     "card_key": f"task:{task_id}", "message_ref": f"om_bench{task_id}",
                     "task_id": task_id, "created_at": now, "updated_at": now})
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 10000):
            conn.execute(insert(ChatMessage), rows[start:start + 10000])
    db.dispose()
    return [int(i) for i in ids]


def server_env(url: str, port: int, fakes: dict[str, str], extra: dict | None = None) -> dict:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PROMOPILOT_", "SLACK_", "FEISHU_", "DINGTALK_"))}
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET

    return {**base, "PROMOPILOT_DATABASE_URL": url, "PROMOPILOT_PORT": str(port),
            "PROMOPILOT_LOG_LEVEL": "WARNING", "PROMOPILOT_DEMO_ON_EMPTY": "false",
            "PROMOPILOT_SANDBOX_ENABLED": "false", "PROMOPILOT_DEMO": "true",
            "PROMOPILOT_DIGEST_TIME": "", "PROMOPILOT_WATCH_INTERVAL_SECONDS": "3600",
            "PROMOPILOT_SWEEP_INTERVAL_SECONDS": "3600", "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "PROMOPILOT_SLACK_API_URL": fakes["slack"],
            "FEISHU_APP_ID": "cli_bench", "FEISHU_APP_SECRET": "bench-secret",
            "FEISHU_VERIFICATION_TOKEN": FEISHU_TOKEN, "FEISHU_ENCRYPT_KEY": FEISHU_KEY,
            "PROMOPILOT_FEISHU_DOMAIN": fakes["feishu"], "PROMOPILOT_FEISHU_MODE": "http",
            **(extra or {})}


def start_app(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot.cli.main", "run", "--no-migrate"],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def start_bare(tmp: Path, env: dict, port: int, log: Path, workers: int = 1,
               app: str = "bare_app") -> subprocess.Popen:
    """A floor app: ``bare_app`` (answers without doing anything) or ``writing_app`` (a claim's
    three writes in one transaction, on the database ``env`` names)."""
    (tmp / f"{app}.py").write_text(FLOOR_APPS[app])
    return subprocess.Popen([sys.executable, "-m", "uvicorn", f"{app}:app", "--port",
                             str(port), "--log-level", "warning", "--no-access-log",
                             "--workers", str(workers)],
                            cwd=tmp, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


# -- requests -----------------------------------------------------------------------------

def _line(path: str, headers: dict[str, str], body: str) -> str:
    assert "\t" not in body and "\n" not in body
    return "POST\t" + path + "\t" + "\x1f".join(f"{k}: {v}" for k, v in headers.items()) \
        + "\t" + body


def rest_lines(task_ids: list[int]) -> list[str]:
    return [_line(f"/api/tasks/{t}/actions", {"Content-Type": "application/json"},
                  json.dumps({"action": "claim", "actor": WEB_USERS[t % len(WEB_USERS)],
                              "version": 1}))
            for t in task_ids]


def slack_lines(task_ids: list[int]) -> list[str]:
    from cards.callback import CallbackData
    from tests.fakes.slack import block_actions, form, sign

    out = []
    for n, t in enumerate(task_ids):
        body = form(block_actions(
            user=SLACK_USERS[n % len(SLACK_USERS)], channel=f"C0BENCH{n % CHANNELS:02d}",
            message_ts=f"1700000000.{t:06d}", action_id="pp:claim",
            value=CallbackData("claim", t, 1).pack(), trigger_id=f"peak-{t}-{secrets.token_hex(4)}"))
        out.append(_line("/slack/events", {"Content-Type": "application/x-www-form-urlencoded",
                                           **sign(body)}, body))
    return out


def feishu_lines(task_ids: list[int]) -> list[str]:
    from adapters.chat.feishu.render import VALUE_KEY
    from cards.callback import CallbackData
    from tests.fakes.feishu import card_action, encrypt, signed

    out = []
    for n, t in enumerate(task_ids):
        event = card_action({VALUE_KEY: CallbackData("claim", t, 1).pack()},
                            open_id=FEISHU_USERS[n % len(FEISHU_USERS)],
                            chat_id=f"oc_bench{n % CHANNELS:02d}", message_id=f"om_bench{t}",
                            token=FEISHU_TOKEN)
        # wrk replays lines made before the run: their send time would be stale (and make
        # the app answer "working on it" at once), so like an old-style event they have none
        event["header"]["create_time"] = ""
        body = json.dumps({"encrypt": encrypt(FEISHU_KEY, json.dumps(event))})
        out.append(_line("/feishu/events", signed(body.encode(), FEISHU_KEY), body))
    return out


PROFILE: dict = {}  # {"dir": Path, "pid": int} → py-spy records the server during the run


def wrk(url: str, lines: list[str], clients: int, seconds: float, tmp: Path,
        name: str = "", mark: str = "") -> dict:
    """One wrk run replaying ``lines``; its done() figures plus requests/s."""
    threads = 2
    path = tmp / f"requests-{secrets.token_hex(3)}.txt"
    path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "WRK_REQUESTS": str(path), "WRK_THREADS": str(threads),
           "WRK_MARK": mark}
    spy = None
    if PROFILE.get("pid") and name:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                                str(PROFILE["pid"]), "-d", str(int(seconds)), "-r", "50",
                                *PROFILE.get("flags", []), "-f", "raw", "-o",
                                str(PROFILE["dir"] / f"{name}.txt")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{int(seconds)}s",
                           "--timeout", "10s", "-s", str(LUA), url], env=env,
                          capture_output=True, text=True, check=True)
    path.unlink()
    if spy is not None:
        spy.wait(30)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    stats["rate"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["errors"] = sum(stats[k] for k in ("connect", "read", "write", "status", "timeout"))
    stats["wrapped"] = stats["requests"] > len(lines)
    return stats
