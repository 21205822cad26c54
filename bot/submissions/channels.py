"""The deployment's submission channels, set once at start by the submitters adapter.

Card actions (retry, take over) are plain functions, so they find the channels here rather
than on a service instance. Until configured, only the marketplace API channel exists.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.core.ports import SubmissionChannels, Submitter


class ApiOnly:
    """Only the marketplace's own API connector (the sandbox, or none)."""

    def __init__(self, api_for: Callable[[str], Submitter | None]) -> None:
        self.api_for = api_for

    def chain(self, platform: str) -> list[str]:
        return ["api"]

    def get(self, channel: str, platform: str) -> Submitter | None:
        return self.api_for(platform) if channel == "api" else None


_current: SubmissionChannels = ApiOnly(lambda _platform: None)


def configure(channels: SubmissionChannels) -> None:
    global _current
    _current = channels


def current() -> SubmissionChannels:
    return _current
