"""Outbound Feishu: post and patch cards, say things, look people up — via lark-oapi.

lark-oapi's client is synchronous (``requests``; even its async methods fetch the tenant
token synchronously), so every call runs in a worker thread. Each chat has its own limiter
(Feishu allows a bot about 5 messages per second per chat), and the app one for all its IM
calls (Feishu allows an app 50 a second: 50 chats at 5 each would be five times that). A
rate-limit answer is waited out here when short (that chat held for Feishu's reset), else
handed to the outbox as ``ChatDeliveryError(retry_after=…)``;
5xx and network errors are retried; an expired tenant token is dropped and fetched again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from lark_oapi.api.contact.v3.model.get_user_request import GetUserRequest
from lark_oapi.api.contact.v3.resource.user import User as UserResource
from lark_oapi.api.im.v1.model.create_message_request import CreateMessageRequest
from lark_oapi.api.im.v1.model.create_message_request_body import CreateMessageRequestBody
from lark_oapi.api.im.v1.model.patch_message_request import PatchMessageRequest
from lark_oapi.api.im.v1.model.patch_message_request_body import PatchMessageRequestBody
from lark_oapi.api.im.v1.resource.message import Message as MessageResource
from lark_oapi.core.enum import LogLevel
from lark_oapi.core.log import logger as lark_logger
from lark_oapi.core.model import Config
from lark_oapi.core.token import TokenManager

from adapters.chat.feishu import keepalive
from adapters.chat.feishu.render import post_content, render
from adapters.chat.feishu.settings import FeishuSettings
from adapters.chat.pacing import worker_processes
from bot.core.ports import ChatDeliveryError
from cards.model import Card

log = logging.getLogger(__name__)
RATE_LIMIT_CODES = {99991400, 230020, 11232, 11233}  # frequency limit (app / per chat)
TOKEN_CODES = {99991661, 99991663, 99991664, 99991665, 99991668}  # missing/invalid token
PER_CHAT_INTERVAL = 0.21  # seconds between two messages to one chat (≈5 per second)
APP = "app"  # the app limiter's one key
WAIT_INLINE = 10.0  # rate-limit waits up to this long happen here, longer ones in the outbox
ATTEMPTS = 4
UUID_WINDOW = timedelta(hours=1)  # Feishu: one uuid, at most one message within an hour


def message_uuid(key: str) -> str:
    """The create request's ``uuid`` (≤ 50 characters) for an outbox key."""
    return hashlib.sha256(f"promopilot|{key}".encode()).hexdigest()[:40]


def _check_window(key: str, unsure_since: datetime | None) -> None:
    if unsure_since is not None and datetime.now(unsure_since.tzinfo) - unsure_since > \
            UUID_WINDOW:
        log.warning("retrying a message first tried over an hour ago: Feishu no longer "
                    "de-duplicates it, so it may show twice", extra={"key": key[:40]})


class FeishuClient:
    """The two lark-oapi resources we call, on one SDK ``Config``. ``lark_oapi.Client``
    would build every Feishu API (``sdk.py``: +140 MB) for these two."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.message = MessageResource(config)  # im.v1: create, patch
        self.user = UserResource(config)  # contact.v3: get


def build_client(settings: FeishuSettings) -> FeishuClient:
    domain = settings.base_url
    parts = urlsplit(domain)  # what lark's builder checks: https (http on loopback only)
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in (
            "127.0.0.1", "localhost", "::1"))) or not parts.netloc or "@" in parts.netloc \
            or parts.path or parts.query or parts.fragment:
        raise ValueError(f"feishu domain must be an https origin (got {domain!r})")
    keepalive.install()  # one connection per worker thread, not one per call
    config = Config()
    config.app_id, config.app_secret = settings.app_id, settings.app_secret.get_secret_value()
    config.domain, config.timeout = domain, settings.timeout_seconds
    config.log_level = LogLevel.WARNING
    lark_logger.setLevel(int(LogLevel.WARNING.value))
    return FeishuClient(config)


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatLimiter:
    """Spaces messages to the same chat; different chats do not wait for each other."""

    def __init__(self, interval: float = PER_CHAT_INTERVAL) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, chat_id: str) -> None:
        """Wait for this chat's turn; a long hold is not slept here but handed to the outbox,
        so one throttled chat never stalls delivery to the others."""
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            delay = self._next.get(chat_id, 0.0) - now
            if delay > WAIT_INLINE:
                raise ChatDeliveryError(f"chat {chat_id} is rate limited for {delay:.0f}s",
                                        retry_after=delay)
            if delay > 0:
                await asyncio.sleep(delay)
            self._next[chat_id] = max(now, self._next.get(chat_id, 0.0)) + self.interval

    def hold(self, chat_id: str, seconds: float) -> None:
        """The platform said "slow down" for this chat: nobody sends there for a while."""
        self._next[chat_id] = max(self._next.get(chat_id, 0.0), time.monotonic() + seconds)

    def release(self, chat_id: str) -> None:
        """Forget a hold (ops, tests): the next send goes straight out."""
        self._next.pop(chat_id, None)


@dataclass
class FeishuUser:
    open_id: str
    user_id: str = ""
    union_id: str = ""
    name: str = ""
    email: str = ""
    enterprise_email: str = ""


def _header(resp: Any, name: str) -> str | None:
    headers = getattr(getattr(resp, "raw", None), "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def receive_id_type(external_id: str) -> str:
    if external_id.startswith("ou_"):
        return "open_id"
    if external_id.startswith("on_"):
        return "union_id"
    if external_id.startswith("oc_"):
        return "chat_id"
    return "email" if "@" in external_id else "user_id"


class FeishuAdapter:
    chat = "feishu"

    def __init__(self, settings: FeishuSettings, lang: str = "zh-CN",
                 client: FeishuClient | None = None) -> None:
        self.settings = settings
        self.lang = lang
        self.client = client or build_client(settings)
        self.limiter = ChatLimiter()
        # one key: every IM call of the app; Feishu counts the app's calls from every
        # process, so each worker of ``promopilot run --workers N`` takes its 1/N
        self.app_limiter = ChatLimiter(settings.app_interval(worker_processes()))
        # PromoPilot user names → Feishu open_ids (set by ``install``; needs the database)
        self.mention_ids: Callable[[list[str]], list[str]] | None = None

    # -- ChatAdapter -------------------------------------------------------------------

    async def _content(self, card: Card) -> str:
        ids: list[str] = []
        if card.mentions and self.mention_ids is not None and not card.locked:
            ids = await asyncio.to_thread(self.mention_ids, card.mentions)
        return json.dumps(render(card, self.lang, ids), ensure_ascii=False)

    async def post_card(self, channel_id: str, card: Card, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        content = await self._content(card)
        # A retry after a lost answer must not post twice: Feishu de-duplicates by uuid for
        # an hour. The outbox's key names this one post (recorded before it was made); a
        # caller without one gets chat + content, so the same card twice is one post.
        _check_window(key, unsure_since)
        uuid = message_uuid(key) if key else hashlib.sha256(
            f"{channel_id}|{content}".encode()).hexdigest()[:40]
        return await self._create("chat_id", channel_id, "interactive", content, uuid)

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        content = await self._content(card)
        request = (PatchMessageRequest.builder().message_id(message_ref)
                   .request_body(PatchMessageRequestBody.builder().content(content).build())
                   .build())
        await self._call(channel_id, "patch", lambda: self.client.message.patch(request))

    async def post_text(self, channel_id: str, text: str, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        _check_window(key, unsure_since)
        return await self._create("chat_id", channel_id, "post", post_content(text),
                                  message_uuid(key) if key else None)

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None, *, key: str = "",
                           unsure_since: datetime | None = None) -> None:
        _check_window(key, unsure_since)
        try:
            await self._create(receive_id_type(external_user_id), external_user_id, "post",
                               post_content(text), message_uuid(key) if key else None)
        except ChatDeliveryError as exc:
            if not (exc.permanent and channel_id):
                raise
            # e.g. the person is outside the app's availability: say it where they asked
            log.warning("feishu direct message refused; answering in the chat",
                        extra={"chat": channel_id, "error": str(exc)[:200]})
            await self.post_text(channel_id, text, key=f"{key}:chat" if key else "")

    # -- people ------------------------------------------------------------------------

    def lookup_user(self, open_id: str) -> FeishuUser | None:
        """Contact API (sync): who is this open_id? ``None`` when it cannot be told."""
        request = GetUserRequest.builder().user_id(open_id).user_id_type("open_id").build()
        try:
            resp = self.client.user.get(request)
        except Exception as exc:  # noqa: BLE001 - degrade: the person is treated as unknown
            log.warning("feishu user lookup failed", extra={"error": repr(exc)[:300]})
            return None
        if not resp.success() or resp.data is None or resp.data.user is None:
            log.warning("feishu user lookup refused",
                        extra={"code": resp.code, "reason": (resp.msg or "")[:200],
                               "log_id": resp.get_log_id()})
            return None
        user = resp.data.user
        return FeishuUser(open_id=user.open_id or open_id, user_id=user.user_id or "",
                          union_id=user.union_id or "", name=user.name or "",
                          email=user.email or "", enterprise_email=user.enterprise_email or "")

    # -- plumbing ----------------------------------------------------------------------

    async def _create(self, id_type: str, receive_id: str, msg_type: str, content: str,
                      uuid: str | None = None) -> str:
        body = (CreateMessageRequestBody.builder().receive_id(receive_id).msg_type(msg_type)
                .content(content))
        if uuid:
            body = body.uuid(uuid)
        request = (CreateMessageRequest.builder().receive_id_type(id_type)
                   .request_body(body.build()).build())
        resp = await self._call(receive_id, "create",
                                lambda: self.client.message.create(request))
        return resp.data.message_id

    async def _call(self, chat_id: str, what: str, send: Callable[[], Any]) -> Any:
        last: _Retry | None = None
        for attempt in range(1, ATTEMPTS + 1):
            await self.limiter.wait(chat_id)
            await self.app_limiter.wait(APP)
            try:
                resp = await asyncio.to_thread(send)
            except Exception as exc:  # noqa: BLE001 - network, timeout, token fetch
                last = _Retry(f"feishu {what} failed: {type(exc).__name__}: {exc}"[:300])
            else:
                try:
                    return self._check(resp, chat_id, what)
                except _Retry as exc:
                    last = exc
            delay = last.retry_after if last.retry_after is not None else min(0.5 * 2 ** attempt,
                                                                              5.0)
            log.warning("feishu call retry", extra={"what": what, "chat": chat_id,
                                                    "attempt": attempt, "error": str(last),
                                                    "retry_after": delay})
            if last.retry_after is not None:
                self.limiter.hold(chat_id, delay)
            if delay > WAIT_INLINE or attempt == ATTEMPTS:
                break
            await asyncio.sleep(delay if last.retry_after is None else 0)
        assert last is not None
        raise ChatDeliveryError(str(last), retry_after=last.retry_after)

    def _check(self, resp: Any, chat_id: str, what: str) -> Any:
        if resp.success():
            return resp
        status = getattr(getattr(resp, "raw", None), "status_code", None)
        code, msg = resp.code, (resp.msg or "")[:200]
        context = {"what": what, "chat": chat_id, "status": status, "code": code, "reason": msg,
                   "log_id": resp.get_log_id()}
        if status == 429 or code in RATE_LIMIT_CODES:
            retry_after = _seconds(_header(resp, "x-ogw-ratelimit-reset")) or _seconds(
                _header(resp, "retry-after")) or 1.0
            raise _Retry(f"feishu rate limit on {what} (code {code})", retry_after=retry_after)
        if code in TOKEN_CODES:
            TokenManager.cache.set(f"self_tenant_token:{self.settings.app_id}", "", 0)
            raise _Retry(f"feishu token rejected on {what} (code {code}); fetching a new one",
                         retry_after=0.0)
        if status is None or status >= 500 or code is None:
            raise _Retry(f"feishu {what}: HTTP {status}, code {code}")
        log.error("feishu call refused", extra=context)
        raise ChatDeliveryError(f"feishu {what} refused: code {code} {msg}", permanent=True)
