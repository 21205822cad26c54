"""The HTTP-JSON sources of the decisions feature (campaign results, competitors' prices) are
read through one function the adapters layer sets (``adapters/feeds.py``, imported by
``bot.wiring``): the feature never talks HTTP itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FeedError(Exception):
    """A source could not be read (after retries) or sent something that is not JSON."""


Fetch = Callable[[str, "str | None"], Any]
_fetch: Fetch | None = None


def set_fetch(fn: Fetch | None) -> None:
    global _fetch
    _fetch = fn


def fetch(url: str, token: str | None = None) -> Any:
    """The parsed JSON at ``url``; raises ``FeedError`` with the reason."""
    if _fetch is None:
        raise FeedError("no HTTP client is configured (adapters/feeds.py)")
    return _fetch(url, token)
