"""The platforms' documented rate limits, as the fakes enforce them, and what they saw.

A fake asks ``admit(key)`` for each request that a limit covers (a channel, a chat, the whole
app): ``None`` lets it through, a number is the wait the platform would name (Retry-After).
Every request is logged with its time and whether it was let through, so a bench or a test
can ask how fast one channel was really sent to (``max_in_window``), refused ones included —
the client's pacing, not the fake's enforcement.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque


class Limit:
    """At most ``burst`` requests at once, refilled at ``rate`` a second (a token bucket); with
    ``window`` set it is a sliding window instead: at most ``burst`` in any ``window`` seconds."""

    def __init__(self, rate: float = 1.0, burst: int = 1, window: float | None = None,
                 what: str = "") -> None:
        self.rate, self.burst, self.window = rate, max(burst, 1), window
        self.what = what
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, float]] = {}  # key → (tokens, updated)
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self.log: dict[str, list[tuple[float, bool]]] = defaultdict(list)  # key → (at, let in)

    def allowed_in(self, seconds: float) -> int:
        """The most requests this limit lets through in any ``seconds``."""
        if self.window is not None:
            return self.burst * math.ceil(seconds / self.window)
        return self.burst + math.floor(self.rate * seconds)

    def admit(self, key: str, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = self._window(key, now) if self.window is not None else self._bucket(key, now)
            self.log[key].append((now, wait is None))
            return wait

    def _bucket(self, key: str, now: float) -> float | None:
        tokens, updated = self._tokens.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        if tokens >= 1:
            self._tokens[key] = (tokens - 1, now)
            return None
        self._tokens[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _window(self, key: str, now: float) -> float | None:
        recent = self._recent[key]
        assert self.window is not None
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.burst:
            return recent[0] + self.window - now
        recent.append(now)
        return None

    # -- what was seen ---------------------------------------------------------------------

    def refused(self) -> int:
        with self._lock:
            return sum(1 for entries in self.log.values() for _, ok in entries if not ok)

    def max_in_window(self, seconds: float, admitted_only: bool = False) -> tuple[int, str]:
        """The most requests one key got in any ``seconds`` (and which key)."""
        best, which = 0, ""
        with self._lock:
            logs = {k: [at for at, ok in v if ok or not admitted_only]
                    for k, v in self.log.items()}
        for key, times in logs.items():
            times.sort()
            start = 0
            for end, at in enumerate(times):
                while times[start] <= at - seconds:
                    start += 1
                if end - start + 1 > best:
                    best, which = end - start + 1, key
        return best, which


def retry_after_header(wait: float) -> str:
    """Platforms name whole seconds, and never 0 for a refusal."""
    return str(max(1, math.ceil(wait)))
