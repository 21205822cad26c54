"""Tells open consoles that a channel changed, so they refresh without reloading.

In-process fan-out for one app instance; the console also re-polls every few seconds, so a
change made by another replica shows up shortly after too.
"""

from __future__ import annotations

import asyncio
import itertools


class LiveHub:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counter = itertools.count(1)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    def _publish(self, channel: str) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                continue  # a slow client will re-poll anyway
            queue.put_nowait(channel)

    def publish(self, channel: str) -> None:
        """Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._publish(channel)
        else:
            loop.call_soon_threadsafe(self._publish, channel)
