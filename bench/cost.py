"""CPU per claim, in process: the request's transaction and the delivery of its cards.

The peak bench (``bench/peak.py``) measures the box: wrk, PostgreSQL, the fakes and the app
share two cores, and one run to the next moves by a third. This one measures PromoPilot's
own CPU (``time.process_time`` of this process; the fake Slack and Feishu run in a process
of their own), one claim after another, so a change to the hot path shows in the second
decimal. Beside each figure, a floor from the same run: one ``UPDATE … RETURNING`` and its
commit through the same engine (the least a transition can cost), and one bare
``chat.update`` through the same Slack SDK client to the same fake.

    .venv/bin/python bench/cost.py [--claims 1000] [--sqlite] [--statements] [--profile F]

``--statements`` also lists the statements that delivering 50 claims' cards ran.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import peak_setup as setup  # noqa: E402

FAKES = """
import json, sys, time
sys.path.insert(0, %r)
from tests.fakes.feishu import FakeFeishu, Sent
from tests.fakes.slack import FakeSlack

class Shown(dict):
    # every bench card already shows in Feishu (updated in place), however many there are
    def __missing__(self, key):
        if not key.startswith("om_bench"):
            raise KeyError(key)
        self[key] = Sent(key, "chat_id", "oc", "interactive", "{}")
        return self[key]
    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default
    def __contains__(self, key):
        return self.get(key) is not None

slack, feishu = FakeSlack().start(), FakeFeishu("cli_bench", "bench-secret").start()
feishu.messages = Shown()
print(json.dumps({"slack": slack.api_url, "feishu": feishu.url}), flush=True)
while True:
    time.sleep(3600)
"""


def start_fakes() -> tuple[subprocess.Popen, dict]:
    fakes = subprocess.Popen([sys.executable, "-c", FAKES % str(ROOT)],
                             stdout=subprocess.PIPE, text=True)
    return fakes, json.loads(fakes.stdout.readline())


def cpu_ms(fn, n: int) -> float:
    start = time.process_time()
    fn()
    return 1000 * (time.process_time() - start) / max(n, 1)


def profiled(fn, path: str | None, what: str):
    """``fn``, recorded by cProfile into ``path.what`` when a path is given (the figures
    then include the profiler's own overhead: compare shares, not milliseconds)."""
    if path is None:
        return fn

    def run() -> None:
        import cProfile

        profile = cProfile.Profile()
        profile.runcall(fn)
        profile.dump_stats(f"{path}.{what}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--statements", action="store_true")
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="write cProfile stats of the claims and their delivery to FILE"
                             ".claim and FILE.deliver (read with python -m pstats)")
    args = parser.parse_args()
    fakes, urls = start_fakes()
    if args.sqlite:
        path = Path(f"/tmp/pp-cost-{os.getpid()}.db")
        url, name = f"sqlite:///{path}", None
    else:
        url, name = setup.fresh_pg()
    try:
        measure(url, urls, args)
    finally:
        fakes.kill()
        if name:
            setup.drop_pg(name)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def measure(url: str, urls: dict, args: argparse.Namespace) -> None:
    ids = setup.prepare(url, args.claims + 100)
    env = setup.server_env(url, 1, urls)
    os.environ.update({k: v for k, v in env.items()
                       if k.startswith(("PROMOPILOT_", "SLACK_", "FEISHU_"))})
    from sqlalchemy import event, text

    from bot.core import actions
    from bot.core.actions import ActionRequest, perform
    from bot.core.settings import Settings
    from bot.core.users import acting_actor
    from bot.web.app import create_app

    container = create_app(Settings()).state.container
    actions.after_commit[:] = []  # delivered below, when asked, not after each claim
    db, dispatcher = container.db, container.dispatcher
    loop = asyncio.new_event_loop()
    people = setup.WEB_USERS

    def claim(batch: list[int]) -> None:
        for task_id in batch:
            perform(db, ActionRequest(task_id=task_id, action="claim", version=1,
                                      actor=acting_actor(db, people[task_id % len(people)])))

    def deliver() -> None:
        async def drain() -> None:
            while await dispatcher.run_due(200):
                pass
        loop.run_until_complete(drain())

    claim(ids[:50])  # warm: statements compiled, connections open, cards cached
    deliver()
    if args.statements:
        seen: collections.Counter = collections.Counter()

        def count(_conn, _cursor, statement, *_rest) -> None:
            seen[" ".join(statement.split())[:100]] += 1

        claim(ids[50:100])
        event.listen(db.engine, "before_cursor_execute", count)
        deliver()
        event.remove(db.engine, "before_cursor_execute", count)
        print("statements delivering 50 claims' cards:")
        for statement, n in seen.most_common():
            print(f"  {n:4} {statement}")
    todo = ids[100:100 + args.claims]

    def bare_transitions() -> None:
        for task_id in todo[:500]:
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE tasks SET version = version WHERE id = :id "
                                  "RETURNING id, state"), {"id": task_id}).first()

    floor = cpu_ms(bare_transitions, min(500, len(todo)))
    per_claim = cpu_ms(profiled(lambda: claim(todo), args.profile, "claim"), len(todo))
    delivered = cpu_ms(profiled(deliver, args.profile, "deliver"), len(todo))
    slack = container.adapters["slack"]

    def bare_updates() -> None:
        async def updates() -> None:
            for n in range(200):
                await slack.client.chat_update(channel="C0BENCH00", ts=f"1700000000.{n:06d}",
                                               text="x", blocks=[])
        loop.run_until_complete(updates())

    post_floor = cpu_ms(bare_updates, 200)
    print(f"{db.dialect}, {len(todo)} claims one after another, CPU of this process:")
    print(f"  the claim's transaction:  {per_claim:.2f} ms a claim "
          f"(floor: one UPDATE … RETURNING and its commit, {floor:.2f} ms)")
    print(f"  delivering its 3 cards:   {delivered:.2f} ms a claim "
          f"(floor: a bare chat.update through the SDK, {post_floor:.2f} ms a message)")


if __name__ == "__main__":
    main()
