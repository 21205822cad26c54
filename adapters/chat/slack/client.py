"""The Slack ``ChatAdapter``: posts and updates cards through slack_sdk's AsyncWebClient.

Every post waits its turn on a per-channel limiter. A 429 pauses that channel for Slack's
Retry-After; a short wait is then retried here, in its turn on the limiter (the SDK's own
429 retry would resend past the limiter, and the channel's next posts would burst into the
next 429), a longer one goes back to the outbox as ``ChatDeliveryError(retry_after=…)``.
If Slack refuses the blocks themselves, the card is posted as its plain fallback text with
the console link, so a card is never lost.

Slack has no idempotent post, so every ``chat.postMessage`` carries the outbox key as
message metadata; a retry whose earlier attempt's outcome is unknown first looks for that
key in ``conversations.history`` around the attempt and takes the message it finds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.ports import ChatDeliveryError
from bot.core.settings import get_settings
from cards.model import Card

from .escape import link
from .limiter import ChannelLimiter
from .render import render, text_message
from .settings import SlackSettings

log = logging.getLogger(__name__)
# Errors a retry cannot fix: the outbox marks the row dead instead of trying ten times.
PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth",
             "account_inactive", "token_revoked", "not_authed", "missing_scope",
             "message_not_found", "cant_update_message", "user_not_found",
             "user_not_in_channel", "restricted_action"}
MESSAGE_GONE = {"message_not_found"}  # deleted by someone: the outbox posts the card afresh
BLOCKS_REFUSED = {"invalid_blocks", "invalid_blocks_format", "msg_too_long",
                  "too_many_blocks", "invalid_arguments"}
EVENT_TYPE = "promopilot_outbox"  # message metadata: {"key": <outbox idempotency key>}
HISTORY_MARGIN = 60.0  # seconds before the first attempt a reconcile looks back (clock skew)
HISTORY_PAGES = 5


def metadata(key: str) -> dict:
    return {"metadata": {"event_type": EVENT_TYPE, "event_payload": {"key": key}}} if key \
        else {}


def retry_after(headers: Any) -> float | None:
    for key in (headers or {}):
        if key.lower() == "retry-after":
            value = headers[key]
            value = value[0] if isinstance(value, list) else value
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


INLINE_429_RETRIES = 3  # short Retry-After waits retried here before the outbox takes over


def build_client(settings: SlackSettings) -> AsyncWebClient:
    """No 429 handler in the SDK: ``SlackChatAdapter.call`` retries through the limiter."""
    handlers: list[AsyncRetryHandler] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
    return AsyncWebClient(token=settings.bot_token.get_secret_value(),
                          base_url=settings.base_url, timeout=settings.timeout_seconds,
                          retry_handlers=handlers)


class SlackChatAdapter:
    chat = "slack"

    def __init__(self, settings: SlackSettings, client: AsyncWebClient | None = None) -> None:
        self.settings = settings
        self.client = client or build_client(settings)
        self.limiter = ChannelLimiter(settings.posts_per_second, settings.burst)
        self._names: dict[str, str] = {}
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _keep_alive(self) -> None:
        """One aiohttp session per event loop, its connections kept: without one the SDK
        opens (and closes) a session and a TCP connection for every call — a third of a
        click's CPU under load (py-spy). Per loop, as a session belongs to the loop that
        made it (the CLI and tests run their own loops)."""
        loop = asyncio.get_running_loop()
        if self._session_loop is not loop:
            self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds))
            self._session_loop = loop

    async def aclose(self) -> None:
        """Close the kept connections (the app's shutdown)."""
        session, self.client.session = self.client.session, None
        if session is not None and self._session_loop is asyncio.get_running_loop():
            await session.close()
        self._session_loop = None

    # -- ChatAdapter -------------------------------------------------------------------

    async def post_card(self, channel_id: str, card: Card, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        if key and unsure_since is not None:
            found = await self.find_posted(channel_id, key, unsure_since)
            if found:
                return found
        message = render(card, get_settings().language)
        try:
            response = await self.call("chat_postMessage", channel_id, channel=channel_id,
                                        unfurl_links=False, unfurl_media=False, **message,
                                        **metadata(key))
        except _BlocksRefused:
            response = await self.call("chat_postMessage", channel_id, channel=channel_id,
                                        **self._fallback(card, message), **metadata(key))
        return str(response["ts"])

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        message = render(card, get_settings().language)
        try:
            await self.call("chat_update", channel_id, channel=channel_id, ts=message_ref,
                             **message)
        except _BlocksRefused:
            await self.call("chat_update", channel_id, channel=channel_id, ts=message_ref,
                             blocks=[], **self._fallback(card, message))

    async def post_text(self, channel_id: str, text: str, thread_ts: str | None = None, *,
                        key: str = "", unsure_since: datetime | None = None) -> str:
        if key and unsure_since is not None:
            found = await self.find_posted(channel_id, key, unsure_since)
            if found:
                return found
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        response = await self.call("chat_postMessage", channel_id, channel=channel_id,
                                    unfurl_links=False, **text_message(text), **extra,
                                    **metadata(key))
        return str(response["ts"])

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None, *, key: str = "",
                           unsure_since: datetime | None = None) -> None:
        """An ephemeral in the channel when we know it; otherwise the app's DM.
        Ephemerals cannot be read back: a retry after a lost answer may repeat one."""
        if channel_id:
            try:
                await self.call("chat_postEphemeral", None, channel=channel_id,
                                 user=external_user_id, **text_message(text))
                return
            except ChatDeliveryError as exc:
                if not exc.permanent:
                    raise
                log.info("ephemeral refused, sending a DM instead",
                         extra={"channel": channel_id, "user": external_user_id})
        if key and unsure_since is not None and \
                await self.find_posted(external_user_id, key, unsure_since):
            return
        await self.call("chat_postMessage", external_user_id, channel=external_user_id,
                         **text_message(text), **metadata(key))

    # -- reconcile ---------------------------------------------------------------------

    async def find_posted(self, channel_id: str, key: str, since: datetime) -> str | None:
        """The ``ts`` of our earlier post with this key, if Slack has it; None if not.

        Reads ``conversations.history`` (``channels:history``, ``groups:history``,
        ``im:history``) from a minute before the first attempt. When Slack will not let us
        look (missing scope, not in the channel), the post goes ahead: it may then show
        twice, which is logged. A rate limit or outage is raised: the outbox retries later.
        """
        try:
            channel = channel_id
            if channel_id[:1] in ("U", "W"):  # a DM by user id: its conversation id
                opened = await self.call("conversations_open", None, users=channel_id)
                channel = str((opened.get("channel") or {}).get("id") or channel_id)
            cursor = None
            for _ in range(HISTORY_PAGES):
                page = await self.call("conversations_history", None, channel=channel,
                                       oldest=f"{since.timestamp() - HISTORY_MARGIN:.6f}",
                                       include_all_metadata=True, limit=200, cursor=cursor)
                for message in page.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == EVENT_TYPE and \
                            (meta.get("event_payload") or {}).get("key") == key:
                        log.info("earlier post found; not posting again",
                                 extra={"channel": channel_id, "ts": message.get("ts")})
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except ChatDeliveryError as exc:
            if not exc.permanent:
                raise
            log.warning("cannot check whether an earlier post arrived; posting again (it may "
                        "show twice)", extra={"channel": channel_id, "error": str(exc)[:200]})
        return None

    # -- Slack-only helpers ------------------------------------------------------------

    async def open_modal(self, trigger_id: str, view: dict) -> None:
        await self.call("views_open", None, trigger_id=trigger_id, view=view)

    async def user_name(self, user_id: str) -> str | None:
        """The person's Slack display name (users.info), cached; None if Slack won't say."""
        if user_id in self._names:
            return self._names[user_id]
        try:
            response = await self.client.users_info(user=user_id)
        except (TimeoutError, SlackApiError, aiohttp.ClientError) as exc:
            log.info("users.info failed", extra={"user": user_id, "error": repr(exc)[:200]})
            return None
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name")
        if name:
            self._names[user_id] = str(name)
        return name

    # -- plumbing ----------------------------------------------------------------------

    async def call(self, method: str, limit_key: str | None, **kwargs: Any) -> Any:
        """Call a Web API method; posts to a channel (``limit_key``) wait for its turn, and a
        429 with a short Retry-After is waited out (the channel paused) and tried again."""
        for attempt in range(INLINE_429_RETRIES + 1):
            try:
                return await self._call_once(method, limit_key, **kwargs)
            except _RateLimited as limited:
                if limited.wait > self.settings.max_inline_wait_seconds or \
                        attempt == INLINE_429_RETRIES:
                    raise ChatDeliveryError(f"slack {method}: ratelimited",
                                            retry_after=limited.wait) from limited
                if not limit_key:  # nothing paces it: the wait is slept here
                    await asyncio.sleep(limited.wait)
        raise AssertionError("unreachable")

    async def _call_once(self, method: str, limit_key: str | None, **kwargs: Any) -> Any:
        channel = limit_key
        if channel:
            await self.limiter.acquire(channel)
        self._keep_alive()
        try:
            return await getattr(self.client, method)(**kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            status = exc.response.status_code if exc.response is not None else 0
            wait = retry_after(exc.response.headers) if exc.response is not None else None
            context = {"method": method, "channel": channel, "status": status, "error": error}
            if status == 429:
                wait = wait if wait is not None else 1.0
                if channel:
                    self.limiter.pause(channel, wait)
                log.warning("slack rate limited", extra={**context, "retry_after": wait})
                raise _RateLimited(wait) from exc
            if error in BLOCKS_REFUSED and "blocks" in kwargs:
                log.warning("slack refused the blocks; sending plain text", extra=context)
                raise _BlocksRefused(error) from exc
            log.warning("slack call failed", extra=context)
            raise ChatDeliveryError(f"slack {method}: {error or status}",
                                    permanent=error in PERMANENT,
                                    message_gone=error in MESSAGE_GONE) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("slack unreachable", extra={"method": method, "channel": channel,
                                                    "error": repr(exc)[:200]})
            raise ChatDeliveryError(f"slack {method}: {exc!r}"[:300]) from exc

    @staticmethod
    def _fallback(card: Card, message: dict) -> dict:
        more = link(card.link, "PromoPilot") if card.link else ""
        return {"text": (message["text"][:3500] + (" " + more if more else ""))}


class _BlocksRefused(Exception):
    pass


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait}s")
        self.wait = wait
