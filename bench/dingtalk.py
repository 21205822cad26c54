"""DingTalk card callbacks for `make bench` (bench/peak.py): the stream has no URL to aim wrk at.

A DingTalk click reaches PromoPilot as a CALLBACK frame on the websocket the app itself opens
to DingTalk's gateway (dingtalk-stream), and the app answers with an ACK frame. So the load
generator here is the fake gateway of tests/fakes/dingtalk.py (aiohttp, its own event loop
in the bench process): ``clients`` closed loops, each pushing the next click on a task of its
own to the connected stream clients in turn and waiting for its ACK (``FakeDingTalk.drive``).
The floor is the same gateway driving a bare dingtalk-stream client, in a process of its own,
whose handler acknowledges at once: its thousands of ACKs a second show that the generator
is not what limits PromoPilot's figures. DingTalk wants the ACK within 1.5 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, insert

LIMIT_S = 1.5
STAFF = [f"staff-bench{i}" for i in range(8)]  # the bench people's DingTalk ids
GROUPS = 50

BARE_CLIENT = """
import asyncio, logging, os, sys
os.environ["DINGTALK_OPENAPI_ENDPOINT"] = sys.argv[1]
import dingtalk_stream
from dingtalk_stream import AckMessage, CallbackHandler

class Ack(CallbackHandler):
    async def process(self, message):
        return AckMessage.STATUS_OK, {}

dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API = sys.argv[1] + "/v1.0/gateway/connections/open"
logging.getLogger("dingtalk_stream").setLevel(logging.WARNING)
client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(sys.argv[2], sys.argv[3]))
client.register_callback_handler(dingtalk_stream.Card_Callback_Router_Topic, Ack())
asyncio.run(client.start())
"""


def env(fake) -> dict[str, str]:
    """The app's DingTalk settings: its stream and open API pointed at the fake."""
    return {"DINGTALK_CLIENT_ID": fake.client_id, "DINGTALK_CLIENT_SECRET": fake.client_secret,
            "DINGTALK_CARD_TEMPLATE_ID": "promopilot-card.schema",
            "PROMOPILOT_DINGTALK_API_URL": fake.url}


def link_people(url: str) -> None:
    """The bench people on DingTalk too (``bench/peak_setup.prepare`` made them)."""
    from sqlmodel import select

    from bot.core.users import link
    from storage.db import Database
    from storage.models import User

    db = Database(url)
    with db.session() as session:
        for i, staff in enumerate(STAFF):
            link(session, session.exec(select(User).where(User.name == f"bench{i}")).one(),
                 "dingtalk", staff)
    db.dispose()


def show_cards(url: str, fake, task_ids: list[int]) -> list[dict]:
    """The tasks' cards shown in DingTalk groups (a chat message each, the card instance in
    the fake), and a claim click on each: the callbacks the run pushes."""
    from bench.peak_setup import CHANNELS
    from cards.callback import CallbackData
    from storage.models import ChatMessage
    from storage.types import utcnow
    from tests.fakes.dingtalk import click_data

    now, rows, clicks = utcnow(), [], []
    for n, task_id in enumerate(task_ids):
        group, track = f"cidBENCH{n % CHANNELS:02d}", f"pp-bench{task_id}"
        rows.append({"chat": "dingtalk", "channel_id": group, "card_key": f"task:{task_id}",
                     "message_ref": f"card:{track}", "task_id": task_id,
                     "created_at": now, "updated_at": now})
        fake.cards[track] = {"create": {"openSpaceId": f"dtv1.card//IM_GROUP.{group}"},
                             "params": {}, "updates": []}
        clicks.append(click_data(track, STAFF[n % len(STAFF)],
                                 CallbackData("claim", task_id, 1).pack(), space_id=group))
    engine = create_engine(url)
    with engine.begin() as conn:
        for start in range(0, len(rows), 10000):
            conn.execute(insert(ChatMessage), rows[start:start + 10000])
    engine.dispose()
    return clicks


def floor(fake, clients: int, seconds: float, tmp: Path) -> dict:
    """The bare SDK client acknowledging at once, driven like PromoPilot."""
    script = tmp / "bare_dingtalk.py"
    script.write_text(BARE_CLIENT)
    before = fake.connected
    bare = subprocess.Popen([sys.executable, str(script), fake.url, fake.client_id,
                             fake.client_secret], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "bare-dingtalk.log").open("ab"))
    try:
        fake.wait_until(lambda: fake.connected > before, 30, "the bare stream client")
        clicks = [{"outTrackId": f"bare-{i}", "content": "{}"} for i in range(400_000)]
        return stats(fake.drive(clicks, clients, seconds, newest_only=True))
    finally:
        bare.terminate()
        bare.wait(10)


def stats(out: dict) -> dict:
    lat = sorted(out["latencies"]) or [0.0]
    return {"rate": len(out["latencies"]) / max(out["seconds"], 1e-9),
            "p50_us": statistics.median(lat) * 1e6, "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
            "errors": out["refused"] + out["lost"], "requests": len(out["latencies"]),
            "wrapped": out["wrapped"]}


def wait_connected(fake, workers: int, timeout: float = 30) -> None:
    """Every PromoPilot worker process has opened its stream."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and fake.connected < workers:
        time.sleep(0.1)
