"""A courtesy note ("working on it") at most once a minute per person.

At a peak every click waits behind the others, and telling each clicker cost the chat API
calls (and the rate limit) that the work itself needed: Slack spent 8 % of its time on
those notes while its queue grew. A person who heard it a moment ago knows the bot is busy.
"""

from __future__ import annotations

import threading
import time

EVERY = 60.0  # seconds between two notes to one person


class OncePerPerson:
    def __init__(self, seconds: float = EVERY) -> None:
        self.seconds = seconds
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def first(self, person: str) -> bool:
        """True when ``person`` may be told now (and is then not told again for a while)."""
        now = time.monotonic()
        with self._lock:
            if self._until.get(person, 0.0) > now:
                return False
            if len(self._until) > 10_000:
                self._until = {p: t for p, t in self._until.items() if t > now}
            self._until[person] = now + self.seconds
            return True
