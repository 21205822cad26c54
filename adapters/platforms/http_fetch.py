"""Polite polling: conditional GET (ETag / If-Modified-Since), timeouts, retries with
exponential backoff and jitter (tenacity, via ``http_util``), 429 Retry-After honoured.

A source keeps the validators of its last good answer in ``validators``; the watcher stores
them in the database so a restart (or ``promopilot watch --once`` from cron) still asks
"anything new since?" instead of downloading the whole feed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from adapters.platforms.http_util import check, with_retries

log = logging.getLogger(__name__)
USER_AGENT = "PromoPilot/0.1 (+notice watcher)"


@dataclass
class Fetched:
    status: int
    content: bytes
    charset: str | None
    headers: httpx.Headers
    url: str

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def conditional_get(url: str, validators: dict, *, client: httpx.Client | None = None,
                    headers: dict | None = None, timeout: float = 10.0,
                    attempts: int = 3) -> Fetched:
    """GET ``url``; 304 when nothing changed since ``validators``; raises after retries."""
    send = dict(headers or {})
    send.setdefault("User-Agent", USER_AGENT)
    if validators.get("etag"):
        send["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        send["If-Modified-Since"] = validators["last_modified"]

    @with_retries(attempts)
    def once() -> Fetched:
        own = client is None
        http = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
                                      follow_redirects=True)
        try:
            response = http.get(url, headers=send)
            if response.status_code == 304:
                return Fetched(304, b"", None, response.headers, str(response.url))
            check(response)
            return Fetched(response.status_code, response.content, response.charset_encoding,
                           response.headers, str(response.url))
        finally:
            if own:
                http.close()

    return once()


def new_validators(fetched: Fetched, old: dict) -> dict:
    if fetched.not_modified:
        return dict(old)
    found = {}
    if fetched.headers.get("ETag"):
        found["etag"] = fetched.headers["ETag"]
    if fetched.headers.get("Last-Modified"):
        found["last_modified"] = fetched.headers["Last-Modified"]
    return found
