"""A per-channel token bucket for posts, which a 429 can pause.

Slack allows roughly one message per second per channel with short bursts; going faster
earns 429s for everyone. Waiting here is cheap (asyncio), and a ``Retry-After`` from Slack
pauses that channel for every caller, not just the one that was refused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float
    paused_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


MARGIN = 0.05  # seconds added to each refill: a post that leaves on the second can arrive
# a little early after a slow one (the answers' times vary), and Slack counts arrivals


class ChannelLimiter:
    def __init__(self, rate: float = 1.0, burst: int = 4, margin: float = MARGIN) -> None:
        self.rate = 1 / (1 / max(rate, 0.01) + max(margin, 0.0))  # a little under the limit
        self.burst = max(burst, 1)
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, channel: str) -> _Bucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(float(self.burst), time.monotonic())
        return bucket

    async def acquire(self, channel: str) -> float:
        """Wait for this channel's turn; returns the seconds waited."""
        bucket = self._bucket(channel)
        waited = 0.0
        async with bucket.lock:
            while True:
                now = time.monotonic()
                if now < bucket.paused_until:
                    delay = bucket.paused_until - now
                else:
                    # refilled from the end of a pause at the latest: one post, then the rate
                    since = max(bucket.updated, bucket.paused_until - 1 / self.rate)
                    bucket.tokens = min(self.burst, bucket.tokens + max(now - since, 0.0)
                                        * self.rate)
                    bucket.updated = now
                    if bucket.tokens >= 1:
                        bucket.tokens -= 1
                        return waited
                    delay = (1 - bucket.tokens) / self.rate
                await asyncio.sleep(delay)
                waited += delay

    def pause(self, channel: str, seconds: float) -> None:
        """Slack said "retry after": hold every post to this channel until then, and start
        again at the steady rate — Slack's own bucket is empty, so a fresh burst would only
        earn the next 429."""
        bucket = self._bucket(channel)
        bucket.paused_until = max(bucket.paused_until, time.monotonic() + max(seconds, 0))
        bucket.tokens, bucket.updated = 0.0, time.monotonic()
