"""HTML announcement list pages (BeautifulSoup + CSS selectors).

``selectors`` name the list item and, inside it, the title, link and id; ``attr@`` reads an
attribute (``a@href``). With ``detail`` set, each new item's own page is fetched for the
rule text (capped per poll), since list pages rarely carry the deadline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
from bs4 import BeautifulSoup, Tag

from adapters.platforms.http_fetch import conditional_get, new_validators
from adapters.platforms.http_json import MalformedNotice, Rejection, clean_text, item_ref
from adapters.platforms.rss import stable_id
from adapters.platforms.textenc import decode
from bot.core.ports import MAX_TITLE, Notice

log = logging.getLogger(__name__)
DEFAULT_SELECTORS = {"item": "li", "title": "a", "link": "a@href", "text": ""}


class MalformedPage(ValueError):
    pass


def select_value(node: Tag, spec: str) -> str:
    """``css`` → text of the first match; ``css@attr`` → that attribute; ``@attr`` on node."""
    if not spec:
        return ""
    css, _, attr = spec.partition("@")
    found = node.select_one(css) if css else node
    if found is None:
        return ""
    if attr:
        value = found.get(attr)
        return " ".join(value) if isinstance(value, list) else str(value or "")
    return found.get_text(" ", strip=True)


@dataclass
class HtmlListSource:
    name: str
    platform: str
    url: str
    selectors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SELECTORS))
    detail: dict[str, str] = field(default_factory=dict)  # {"body": "div.article"}
    encoding: str | None = None
    timezone: str = "Asia/Shanghai"
    client: httpx.Client | None = None
    headers: dict[str, str] = field(default_factory=dict)
    interval: float = 600.0
    timeout: float = 10.0
    attempts: int = 3
    alert_after: int = 3
    max_details: int = 20
    channel: str | None = None
    validators: dict = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    kind: str = "html_list"
    _details: dict[str, str] = field(default_factory=dict, repr=False)  # url → text cache

    def _page(self, url: str, validators: dict) -> tuple[str | None, dict]:
        fetched = conditional_get(url, validators, client=self.client, headers=self.headers,
                                  timeout=self.timeout, attempts=self.attempts)
        if fetched.not_modified:
            return None, new_validators(fetched, validators)
        return decode(fetched.content, self.encoding or fetched.charset or _meta_charset(
            fetched.content)), new_validators(fetched, validators)

    def fetch(self) -> list[Notice]:
        html, self.validators = self._page(self.url, self.validators)
        self.rejected = []
        if html is None:
            return []
        soup = BeautifulSoup(html, "html.parser")
        items = soup.select(self.selectors.get("item", "li"))
        if not items:
            raise MalformedPage(f"{self.name}: no items match {self.selectors.get('item')!r}")
        notices, details = [], 0
        for item in items:
            try:
                notice = self._notice(item)
            except Exception as exc:  # noqa: BLE001 - one unreadable item never stops the page
                reason = str(exc) if isinstance(exc, MalformedNotice) else \
                    f"unreadable item ({type(exc).__name__}: {exc})"
                self.rejected.append(Rejection(f"{self.name}: skipped item: {reason}",
                                               item_ref(str(item)[:2000]), reason))
                continue
            if self.detail.get("body") and notice.source_url:
                if notice.source_url not in self._details and details < self.max_details:
                    details += 1
                    self._details[notice.source_url] = self._detail_text(notice.source_url)
                notice.text = clean_text(
                    "\n".join(filter(None, [notice.text, self._details.get(notice.source_url)])),
                    20_000)
            notices.append(notice)
        return notices

    def _notice(self, item: Tag) -> Notice:
        title = clean_text(select_value(item, self.selectors.get("title", "a")), MAX_TITLE)
        if not title:
            raise MalformedNotice("item without title")
        link = select_value(item, self.selectors.get("link", "a@href"))
        link = urljoin(self.url, link) if link else ""
        external = clean_text(select_value(item, self.selectors.get("id", "")), 128) or link
        external = external if external and len(external) < 128 else stable_id(
            self.name, external or title)
        text = select_value(item, self.selectors.get("text", ""))
        date = select_value(item, self.selectors.get("date", ""))
        return Notice(platform=self.platform, external_id=external, title=title,
                      source_url=clean_text(link, 2000),
                      text=clean_text("\n".join(filter(None, [text, date and f"发布:{date}"])),
                                      20_000))

    def _detail_text(self, url: str) -> str:
        """The article body; a failing detail page degrades to the list text, logged."""
        try:
            html, _ = self._page(url, {})
        except Exception as exc:  # noqa: BLE001 - the list item is still worth posting
            log.warning("detail page failed", extra={"source": self.name, "url": url[:200],
                                                     "error": repr(exc)[:200]})
            return ""
        body = BeautifulSoup(html or "", "html.parser").select_one(self.detail["body"])
        return body.get_text("\n", strip=True) if body else ""


def _meta_charset(content: bytes) -> str | None:
    head = content[:2048].decode("ascii", errors="ignore").lower()
    marker = head.find("charset=")
    if marker < 0:
        return None
    value = head[marker + 8:marker + 30].strip("\"' ")
    return "".join(ch for ch in value if ch.isalnum() or ch in "-_") or None
