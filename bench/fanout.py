"""A reminder fan-out to many channels on Slack, Feishu and DingTalk, under their rate limits.

    .venv/bin/python bench/fanout.py [--channels 50] [--messages 20] [--only slack,feishu]

Each platform in turn: ``--messages`` reminders (cards and texts, alternating) are enqueued
to ``--channels`` channels through the real outbox (``bot.core.outbox.enqueue_*``, one
transaction per reminder, as a sweep does) and drained by ``Dispatcher.run_due`` through the
real adapters and SDKs (slack_sdk, lark-oapi, DingTalk's open API over httpx) against the
local fakes of ``tests/fakes/``, which enforce each platform's documented limits and answer
429 (or the platform's own code) past them. What it prints per platform: messages, 429s
received, 429s dropped (a message never delivered), duplicates, time to drain, and the most
requests one channel got in the limit's window (refused ones included) beside the limit.

``run(args)`` returns rows in bench/peak.py's shape (goal, floor, measured, target, verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func  # noqa: E402
from sqlmodel import select  # noqa: E402

import bot.wiring  # noqa: E402,F401  (registers the card builders)
from bot.core import outbox  # noqa: E402
from bot.core.dispatcher import Dispatcher  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import OutboxMessage, Task  # noqa: E402
from storage.types import utcnow  # noqa: E402
from tests.fakes.ratelimit import Limit  # noqa: E402

Row = tuple[str, str, str, str, str]  # goal, floor, measured, target, verdict


@dataclass
class Limits:
    """The limits the fakes enforce (and the adapters are set to keep), per platform."""

    slack_rate: float = 1.0  # chat.postMessage per channel a second …
    slack_burst: int = 4  # … with a short burst
    feishu_chat: int = 5  # messages to one chat …
    feishu_window: float = 1.0  # … in this many seconds (Feishu's is one)
    feishu_app: int = 50  # IM calls of the app a second
    dingtalk_group: int = 20  # messages to one group …
    dingtalk_window: float = 60.0  # … in this many seconds
    adapter_scale: float = 1.0  # > 1: the adapters believe in a looser limit (someone else
    # posts to the same channels, or the platform tightened it): the fakes refuse the excess

    def scaled(self, value: float) -> float:
        return value * self.adapter_scale

    def window(self, chat: str) -> float:
        """The window a platform's per-channel figure is shown over."""
        return {"slack": 10.0, "feishu": self.feishu_window,
                "dingtalk": self.dingtalk_window}[chat]


@dataclass
class Platform:
    """A fake, the adapter talking to it, and how to read what the fake saw."""

    chat: str
    adapter: Any
    channel_limit: Limit
    app_limit: Limit | None
    delivered: Callable[[], Counter]  # (channel, identity) → times shown
    stop: Callable[[], None]
    channels: list[str] = field(default_factory=list)


def slack(db: Database, limits: Limits, n: int) -> Platform:
    from adapters.chat.slack.client import SlackChatAdapter
    from adapters.chat.slack.settings import SlackSettings
    from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack

    fake = FakeSlack().start()
    fake.post_limit = Limit(rate=limits.slack_rate, burst=limits.slack_burst, what="channel")
    adapter = SlackChatAdapter(SlackSettings(
        bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=fake.api_url,
        posts_per_second=limits.scaled(limits.slack_rate),
        burst=round(limits.scaled(limits.slack_burst)), _env_file=None))
    channels = [f"C0FAN{i:04d}" for i in range(n)]

    def delivered() -> Counter:
        return Counter((c, ((m.get("metadata") or {}).get("event_payload") or {}).get("key"))
                       for c in channels for m in fake.messages(c))

    return Platform("slack", adapter, fake.post_limit, None, delivered, fake.stop, channels)


def feishu(db: Database, limits: Limits, n: int) -> Platform:
    from adapters.chat.feishu.adapter import ChatLimiter, FeishuAdapter
    from adapters.chat.feishu.settings import FeishuSettings
    from tests.fakes.feishu import FakeFeishu

    fake = FakeFeishu("cli_fanout", "app-secret").start()
    fake.chat_limit = Limit(burst=limits.feishu_chat, window=limits.feishu_window, what="chat")
    fake.app_limit = Limit(burst=limits.feishu_app, window=1.0, what="app")
    adapter = FeishuAdapter(FeishuSettings(app_id=fake.app_id, app_secret="app-secret",
                                           domain=fake.url, _env_file=None))
    # the adapter's own spacing, at the same margin under the limits as its defaults
    adapter.limiter = ChatLimiter(1.05 * limits.feishu_window / limits.scaled(limits.feishu_chat))
    adapter.app_limiter = ChatLimiter(1.1 / limits.scaled(limits.feishu_app))
    channels = [f"oc_fan{i:04d}" for i in range(n)]

    def delivered() -> Counter:
        with fake.lock:
            return Counter((s.receive_id, s.uuid) for s in fake.messages.values())

    return Platform("feishu", adapter, fake.chat_limit, fake.app_limit, delivered, fake.stop,
                    channels)


def dingtalk(db: Database, limits: Limits, n: int) -> Platform:
    from adapters.chat.dingtalk import build_adapter
    from adapters.chat.dingtalk.openapi import GroupLimits
    from adapters.chat.dingtalk.settings import DingTalkSettings
    from tests.fakes.dingtalk import FakeDingTalk

    fake = FakeDingTalk().start()
    fake.group_limit = Limit(burst=limits.dingtalk_group, window=limits.dingtalk_window,
                             what="group")
    adapter = build_adapter(DingTalkSettings(
        client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
        card_template_id="tpl.fanout", stream_enabled=False, _env_file=None), db)
    assert adapter.api is not None
    adapter.api.groups = GroupLimits(round(limits.scaled(limits.dingtalk_group)),
                                     limits.dingtalk_window)
    channels = [f"cidFAN{i:04d}" for i in range(n)]

    def delivered() -> Counter:
        seen: Counter = Counter()
        for card in list(fake.cards.values()):
            seen[(card["create"]["openSpaceId"].partition("IM_GROUP.")[2],
                  card["create"]["outTrackId"])] += 1
        for message in list(fake.group_messages):
            seen[(message["openConversationId"], message["param"].get("content"))] += 1
        return seen

    return Platform("dingtalk", adapter, fake.group_limit, None, delivered, fake.stop,
                    channels)


PLATFORMS = {"slack": slack, "feishu": feishu, "dingtalk": dingtalk}


def enqueue(db: Database, chat: str, channels: list[str], messages: int, task_id: int) -> int:
    """The fan-out: reminder ``i`` to every channel in one transaction, cards and texts."""
    now = utcnow()
    for i in range(messages):
        with db.session() as session:
            for channel in channels:
                if i % 2 == 0:
                    card_key = f"reminder:{task_id}:fan{i}"
                    params = {"task_id": task_id, "tier": f"fan{i}", "kind": "tier",
                              "deadline": (now + timedelta(hours=24 - i)).isoformat(),
                              "due": now.isoformat(), "at": now.isoformat(), "late": False,
                              "mentions": []}
                    outbox.enqueue_card(session, chat, channel, card_key, "reminder", params,
                                        key=f"{card_key}:{chat}:{channel}", task_id=task_id)
                else:
                    outbox.enqueue_text(session, chat, channel,
                                        f"催办 #{task_id} 第 {i} 条 → {channel}",
                                        key=f"fan-text:{task_id}:{i}:{chat}:{channel}")
    return messages * len(channels)


def statuses(db: Database, chat: str) -> dict[str, int]:
    with db.session() as session:
        rows = session.exec(select(OutboxMessage.status, func.count()).where(
            OutboxMessage.chat == chat).group_by(OutboxMessage.status))
        return {status: int(count) for status, count in rows}


async def drain(db: Database, dispatcher: Dispatcher, chat: str, *, poll: float,
                timeout: float) -> float:
    """Run the outbox until no row of ``chat`` is waiting; the seconds it took. Deferred rows
    (a limiter's later slot, a 429's Retry-After) are picked up ``poll`` seconds apart, as
    the outbox job does every ``PROMOPILOT_OUTBOX_INTERVAL_SECONDS``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        sent = await dispatcher.run_due()
        left = statuses(db, chat)
        if not left.get("pending") and not left.get("sending"):
            break
        if not sent:
            await asyncio.sleep(poll)
    return time.monotonic() - start


@dataclass
class Result:
    chat: str
    channels: int
    messages: int
    delivered: int  # distinct messages the fake shows
    duplicates: int
    refused: int  # 429s (or the platform's own code) the fake answered
    dropped: int  # messages never delivered
    dead: int  # outbox rows given up
    seconds: float
    window: float
    max_per_channel: int  # requests to one channel in any ``window``, refused ones included
    channel_allowed: int
    app_max: int = 0
    app_allowed: int = 0
    retries: int = 0  # outbox attempts beyond the first (deferred by a limiter or a 429)

    @property
    def ok(self) -> bool:
        return (self.dropped == 0 and self.duplicates == 0 and self.dead == 0
                and self.max_per_channel <= self.channel_allowed)


async def fan_out(db: Database, chat: str, channels: int, messages: int, limits: Limits,
                  task_id: int, *, poll: float = 0.25, timeout: float = 600.0) -> Result:
    """Enqueue the fan-out for one platform, drain it, and read what its fake saw."""
    platform = PLATFORMS[chat](db, limits, channels)
    try:
        expected = enqueue(db, chat, platform.channels, messages, task_id)
        dispatcher = Dispatcher(db, {chat: platform.adapter})
        seconds = await drain(db, dispatcher, chat, poll=poll, timeout=timeout)
        seen = platform.delivered()
        window = limits.window(chat)
        most, _ = platform.channel_limit.max_in_window(window)
        app_most = platform.app_limit.max_in_window(1.0)[0] if platform.app_limit else 0
        with db.session() as session:
            attempts = session.exec(select(func.sum(OutboxMessage.attempts)).where(
                OutboxMessage.chat == chat)).one() or 0
        refused = platform.channel_limit.refused() + (
            platform.app_limit.refused() if platform.app_limit else 0)
        left = statuses(db, chat)
        return Result(
            chat, channels, expected, len(seen), sum(seen.values()) - len(seen), refused,
            expected - len(seen), left.get("dead", 0), seconds, window, most,
            platform.channel_limit.allowed_in(window), app_most,
            platform.app_limit.allowed_in(1.0) if platform.app_limit else 0,
            int(attempts) - expected)
    finally:
        close = getattr(platform.adapter, "aclose", None)
        if close is not None:  # the kept HTTP session (Slack)
            await close()
        platform.stop()


def prepare(url: str | None) -> tuple[Database, int]:
    """A migrated database with the demo's people and one open task to remind about."""
    from bot.core.settings import Settings
    from bot.demo import seed
    from storage.db import upgrade

    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='fanout-')}/fanout.db"
    upgrade(url)
    db = Database.shared(url)
    seed(db, Settings(database_url=url, demo=True, _env_file=None))
    with db.session() as session:
        task_id = session.exec(select(Task.id).order_by(Task.id)).first()
    if task_id is None:
        raise SystemExit("the demo seed made no task to remind about")
    return db, int(task_id)


def describe(r: Result) -> str:
    app = f"; app {r.app_max} in 1 s (limit {r.app_allowed})" if r.app_allowed else ""
    return (f"{r.delivered:,} of {r.messages:,} delivered in {r.seconds:.1f} s, "
            f"429s {r.refused} received / {r.dropped} dropped, {r.duplicates} duplicates, "
            f"{r.retries} outbox retries; max {r.max_per_channel} to one channel in "
            f"{r.window:g} s (limit {r.channel_allowed}){app}")


def run(args: argparse.Namespace) -> list[Row]:
    """Every platform of ``args.only`` in turn; rows for bench/peak.py's table."""
    db, task_id = prepare(getattr(args, "database", None))
    limits = Limits()
    rows: list[Row] = []

    async def go() -> list[Result]:
        loop = asyncio.get_running_loop()  # as the app sizes it (bot/web/app.py)
        loop.set_default_executor(ThreadPoolExecutor(max_workers=16, thread_name_prefix="io"))
        return [await fan_out(db, chat, args.channels, args.messages, limits, task_id,
                              poll=args.poll, timeout=args.timeout)
                for chat in args.only.split(",") if chat]

    try:
        results = asyncio.run(go())
    finally:
        db.dispose()
    for r in results:
        rows.append((f"fan-out to {r.channels} {r.chat} channels × {args.messages} messages",
                     "—", describe(r), "0 dropped, 0 duplicates, ≤ limit per channel",
                     "ok" if r.ok else "MISSED"))
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, default=50)
    p.add_argument("--messages", type=int, default=20, help="reminders per channel")
    p.add_argument("--only", default="slack,feishu,dingtalk")
    p.add_argument("--poll", type=float, default=0.25,
                   help="seconds between outbox passes while rows wait for a later slot")
    p.add_argument("--timeout", type=float, default=900.0, help="per platform")
    p.add_argument("--database", default=None, help="SQLAlchemy URL (default: a new SQLite)")
    return p


def main() -> None:
    args = parser().parse_args()
    print(f"fan-out: {args.channels} channels × {args.messages} messages per platform",
          flush=True)
    for goal, _floor, measured, target, verdict in run(args):
        print(f"  {goal}: {measured} (target {target}) {verdict}", flush=True)


if __name__ == "__main__":
    main()
