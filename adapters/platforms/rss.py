"""RSS/Atom announcement feeds (feedparser). Dates are read from the entry text by the
ingest step (``bot.watch.extract_dates``); the entry's id (or link) is its stable external id."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from xml.sax import SAXException

import feedparser
import httpx
from bs4 import BeautifulSoup

from adapters.platforms.http_fetch import conditional_get, new_validators
from adapters.platforms.http_json import MalformedNotice, Rejection, clean_text, item_ref
from bot.core.ports import MAX_TITLE, Notice

log = logging.getLogger(__name__)


class MalformedFeed(ValueError):
    pass


def html_to_text(html: str) -> str:
    if "<" not in (html or ""):
        return html or ""
    return BeautifulSoup(html, "html.parser").get_text("\n", strip=True)


def stable_id(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:24]


@dataclass
class RssSource:
    name: str
    platform: str
    url: str
    timezone: str = "Asia/Shanghai"
    client: httpx.Client | None = None
    headers: dict[str, str] = field(default_factory=dict)
    interval: float = 300.0
    timeout: float = 10.0
    attempts: int = 3
    alert_after: int = 3
    channel: str | None = None
    validators: dict = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    kind: str = "rss"

    def fetch(self) -> list[Notice]:
        fetched = conditional_get(self.url, self.validators, client=self.client,
                                  headers={"Accept": "application/rss+xml, application/atom+xml, "
                                                     "application/xml;q=0.9, */*;q=0.5",
                                           **self.headers},
                                  timeout=self.timeout, attempts=self.attempts)
        self.validators = new_validators(fetched, self.validators)
        self.rejected = []
        if fetched.not_modified:
            return []
        headers = {"content-type": fetched.headers.get("content-type", "application/xml")}
        parsed = feedparser.parse(fetched.content, response_headers=headers)
        error = parsed.get("bozo_exception")
        if parsed.bozo and (not parsed.entries or isinstance(error, SAXException)):
            # Not well-formed XML: what a lenient parse salvages may be half an entry; report
            # the feed as failing rather than post a truncated notice.
            raise MalformedFeed(f"{self.name}: unreadable feed: {error!r}"[:300])
        if parsed.bozo:
            log.warning("feed partly malformed", extra={"source": self.name,
                                                        "error": repr(parsed.get("bozo_exception"))[:200]})
        notices = []
        for entry in parsed.entries:
            try:
                notices.append(self._notice(entry))
            except Exception as exc:  # noqa: BLE001 - one unreadable entry never stops the feed
                reason = str(exc) if isinstance(exc, MalformedNotice) else \
                    f"unreadable entry ({type(exc).__name__}: {exc})"
                ref = item_ref(dict(entry), entry.get("id") or entry.get("link"))
                self.rejected.append(Rejection(f"{self.name}: skipped entry: {reason}", ref,
                                               reason))
        return notices

    def _notice(self, entry: feedparser.FeedParserDict) -> Notice:
        title = clean_text(html_to_text(entry.get("title", "")), MAX_TITLE)
        if not title:
            raise MalformedNotice("entry without title")
        body = ""
        if entry.get("content"):
            body = entry["content"][0].get("value", "")
        body = body or entry.get("summary", "") or entry.get("description", "")
        link = clean_text(entry.get("link", ""), 2000)
        external = clean_text(entry.get("id") or link, 128) or stable_id(self.name, title)
        if len(external) >= 128:
            external = stable_id(external)
        return Notice(platform=self.platform, external_id=external, title=title,
                      source_url=link, text=clean_text(html_to_text(body), 20_000))
