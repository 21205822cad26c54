"""HTTP-JSON for the decisions feature's sources (campaign results, competitors' prices):
timeouts, retries with backoff on 429/5xx and connection errors (``http_util``), a clear
``FeedError`` for anything else — a 4xx, a body that is not JSON. The token is sent as a
Bearer header and never logged."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from adapters.platforms.http_util import TIMEOUT, RetryableHTTPError, check, with_retries
from bot.insight import feeds

log = logging.getLogger(__name__)


@with_retries(attempts=4)
def _get(url: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as client:
        return check(client.get(url, headers=headers))


def fetch_json(url: str, token: str | None = None) -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = _get(url, headers)
    except (RetryableHTTPError, httpx.HTTPError) as exc:
        log.warning("feed unreadable", extra={"url": url.split("?")[0][:200], "error": repr(exc)[:300]})
        raise feeds.FeedError(str(exc)[:300] or type(exc).__name__) from exc
    try:
        return response.json()
    except ValueError as exc:
        log.warning("feed sent no JSON", extra={"url": url.split("?")[0][:200],
                                                "body": response.text[:120]})
        raise feeds.FeedError(f"not JSON: {response.text[:80]!r}") from exc


feeds.set_fetch(fetch_json)
