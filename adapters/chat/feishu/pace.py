"""When a Feishu click's answer may wait for its result, and by when it must leave.

Feishu shows the clicker an error when the answer takes more than 3 s. One rule for both
ways clicks arrive (the HTTP endpoint and the long connection): wait for the result up to
``ANSWER_WITHIN`` (the toast then shows it) only when it can come in that time — the events
queued ahead over the workers times the recent work per event, or what the last results
really took to come, if longer (thread hops and a busy process included; the queue's length
alone missed them at a peak). Behind a longer queue the answer is "working on it" at once
and the card update follows from the outbox. The card read for the answer must end by
``DEADLINE``, or the answer carries the toast alone. Both count from when Feishu sent the
click (``endpoint.sent_at``: its header's create_time), so time spent queued before our
endpoint ran at a peak counts too.
"""

from __future__ import annotations

ANSWER_WITHIN = 2.0  # seconds a click waits for its result
DEADLINE = 2.5  # seconds after arrival by which every click's answer leaves
WEIGHT = 0.2  # how much the newest measurement counts in a moving average
EASE = 0.9  # a skipped wait is not measured: the estimate eases off instead


class Average:
    """A moving average that follows the last few measurements (seconds)."""

    def __init__(self, start: float) -> None:
        self.value = start

    def add(self, seconds: float) -> None:
        self.value += WEIGHT * (seconds - self.value)


class Pace:
    """The recent timings of one app's Feishu events: an event's work on its inbox worker,
    a result's wait from its store, and the card read of an answer."""

    def __init__(self) -> None:
        self.work = Average(0.05)
        self.result = Average(0.0)
        self.reply = Average(0.05)

    def wait_for(self, queued: int, workers: int, elapsed: float) -> float | None:
        """Seconds to wait for the result, or None: say "working on it" now (the estimate
        eases off, so a later click waits again once the backlog has gone)."""
        left = max(0.2, ANSWER_WITHIN - elapsed)
        expected = max((queued / max(workers, 1) + 1) * self.work.value, self.result.value)
        if expected > left or expected + self.reply.value > DEADLINE - elapsed:
            self.result.value *= EASE
            return None
        return left

    @staticmethod
    def reply_within(elapsed: float) -> float:
        """Seconds left for reading the card of an answer."""
        return max(DEADLINE - elapsed, 0.05)
