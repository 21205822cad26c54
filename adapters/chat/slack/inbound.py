"""Slack → PromoPilot: the slack-bolt listeners.

Every listener acknowledges first (bolt answers Slack as soon as ``ack()`` runs, well inside
the 3-second budget) and then does the work: a durable claim on the delivery id so a retry or
a re-sent payload is ignored, the router in a worker thread (it is synchronous and talks to
the database), and the answer — a refused click becomes an ephemeral to the clicker only.
The card itself is refreshed through the outbox, which the action kicks after commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.core.actors import ROLES
from bot.core.i18n import looks_chinese, normalise, roles, t
from bot.core.idempotency import Duplicate, once
from bot.core.ports import ChatDeliveryError
from bot.core.settings import get_settings
from bot.core.users import by_chat
from commands.router import Inbound, Reply, router
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow

from .client import SlackChatAdapter
from .escape import fit
from .render import ACTION_PREFIX, LINK_ACTION, modal, parse_action_id, render
from .settings import SlackSettings

log = logging.getLogger(__name__)
CHAT = "slack"
_USER_REF = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>\s*")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def command_text(text: str, *, strip_mention: bool) -> str:
    """Slack's wire text as the words a person typed: the bot mention removed, other
    mentions as bare user ids (``user add bob ops <@U123>`` → ``U123``), entities undone."""
    value = text or ""
    if strip_mention:
        value = _LEADING_MENTION.sub("", value, count=1)
    value = _USER_REF.sub(lambda m: m.group(1), value)
    value = _LINK.sub(lambda m: m.group(2) or m.group(1), value)
    return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


class SlackInbound:
    """The work behind each listener, kept apart from bolt so it reads top to bottom."""

    def __init__(self, db: Database, adapter: SlackChatAdapter,
                 kick: Callable[[], None]) -> None:
        self.db = db
        self.adapter = adapter
        self.kick = kick

    # -- the synchronous part (worker thread) ------------------------------------------

    def _claim(self, delivery: str | None) -> bool:
        """True the first time this delivery is seen (kept for the idempotency window)."""
        if not delivery:
            return True
        try:
            once(self.db, f"slack:{delivery}", lambda _session: None)
        except Duplicate:
            log.info("duplicate slack delivery ignored", extra={"delivery": delivery})
            return False
        return True

    def _lang_hint(self, user_id: str) -> str | None:
        """People we don't know yet hear the team's default language."""
        with self.db.session() as session:
            known = by_chat(session, CHAT, user_id)
        return None if known else get_settings().language

    def click(self, inbound: Inbound, value: str, comment: str | None) -> Reply | None:
        if not self._claim(inbound.event_id):
            return None
        inbound.lang_hint = self._lang_hint(inbound.user_ref)
        reply = router.handle_click(self.db, inbound, value, comment)
        reply.extra["unknown_user"] = inbound.lang_hint is not None
        return reply

    def text(self, inbound: Inbound, text: str) -> Reply | None:
        if not self._claim(inbound.event_id):
            return None
        unknown = self._lang_hint(inbound.user_ref) is not None
        reply = router.handle_text(self.db, inbound, text)
        reply.extra["unknown_user"] = unknown
        return reply

    async def explain_unknown(self, reply: Reply, user: str, lang_hint: str | None) -> None:
        """A stranger hears exactly what an admin should type, with a name from users.info."""
        if reply.ok or not reply.extra.get("unknown_user"):
            return
        name = await self.adapter.user_name(user) or ""
        suggested = re.sub(r"[^\w.\-]", "", re.sub(r"\s+", ".", name.strip().lower()))
        lang = normalise(lang_hint or get_settings().language)
        reply.text = t("slack.unknown_user", lang, ref=user,
                       name=suggested or t("slack.name_placeholder", lang), roles=roles(ROLES))

    def user_lang(self, user_id: str) -> str:
        with self.db.session() as session:
            user = by_chat(session, CHAT, user_id)
        return normalise(user.lang if user else get_settings().language)

    # -- async entry points --------------------------------------------------------------

    async def on_click(self, body: dict, action: dict) -> None:
        user = (body.get("user") or {}).get("id", "")
        channel = ((body.get("channel") or {}).get("id")
                   or (body.get("container") or {}).get("channel_id") or "")
        message_ts = ((body.get("container") or {}).get("message_ts")
                      or (body.get("message") or {}).get("ts") or "")
        name, needs_input = parse_action_id(str(action.get("action_id", "")))
        value = str(action.get("value") or "")
        if needs_input:
            await self._ask_reason(body, user, channel, message_ts, name, value)
            return
        delivery = self._delivery_id(body, action)
        inbound = Inbound(CHAT, channel, user, event_id=delivery)
        reply = await asyncio.to_thread(self.click, inbound, value, None)
        await self._after_click(reply, user, channel, name)

    async def _ask_reason(self, body: dict, user: str, channel: str, message_ts: str,
                          name: str, value: str) -> None:
        """Reject/skip/request changes need words: open a modal (trigger_id lives 3 s)."""
        lang = await asyncio.to_thread(self.user_lang, user)
        task_id = _task_id(value)
        view = modal("", value, name, task_id, channel, message_ts, lang)
        try:
            await self.adapter.open_modal(str(body.get("trigger_id", "")), view)
        except ChatDeliveryError as exc:
            log.warning("views.open failed", extra={"user": user, "error": str(exc)})
            example = "/promo " + t(f"example.{name}", lang, task_id=task_id)
            await self._private(user, t("err.reason_required", lang, example=example), channel)

    async def on_view_submission(self, body: dict, view: dict) -> None:
        user = (body.get("user") or {}).get("id", "")
        meta = json.loads(view.get("private_metadata") or "{}")
        comment = _comment(view)
        channel = str(meta.get("c") or "")
        inbound = Inbound(CHAT, channel, user, event_id=f"view:{view.get('id', '')}")
        reply = await asyncio.to_thread(self.click, inbound, str(meta.get("v", "")), comment)
        name = str(meta.get("v", "")).split("|")[1] if "|" in str(meta.get("v", "")) else ""
        await self._after_click(reply, user, channel, name)

    async def _after_click(self, reply: Reply | None, user: str, channel: str,
                           action: str) -> None:
        if reply is None:  # a re-delivery: the first one answered already
            return
        self._kick_unless_done(reply)
        await self.explain_unknown(reply, user, None)
        if not reply.ok:
            log.info("slack click refused", extra={"user": user, "channel": channel,
                                                   "action": action})
            await self._private(user, reply.text, channel)

    async def on_text(self, *, user: str, channel: str, text: str, delivery: str | None,
                      thread_ts: str | None, direct: bool) -> None:
        """An @mention in a channel or a direct message to the app."""
        inbound = Inbound(CHAT, channel, user, event_id=delivery)
        reply = await asyncio.to_thread(self.text, inbound, text)
        if reply is None:
            return
        self._kick_unless_done(reply)
        await self.explain_unknown(reply, user, "zh-CN" if looks_chinese(text) else None)
        try:
            if reply.card is not None:
                await self._post_card_reply(reply, user, channel, thread_ts, direct)
            elif reply.private and not direct:
                await self.adapter.send_private(user, reply.text, channel)
            else:
                await self.adapter.post_text(channel, reply.text, thread_ts=thread_ts)
        except ChatDeliveryError as exc:
            log.warning("slack reply failed", extra={"user": user, "channel": channel,
                                                     "error": str(exc)})

    async def _post_card_reply(self, reply: Reply, user: str, channel: str,
                               thread_ts: str | None, direct: bool) -> None:
        message = render(reply.card, get_settings().language)  # type: ignore[arg-type]
        if reply.private and not direct:
            await self.adapter.call("chat_postEphemeral", None, channel=channel, user=user,
                                     **message)
        else:
            await self.adapter.call("chat_postMessage", channel, channel=channel,
                                     thread_ts=thread_ts, **message)

    async def on_command(self, command: dict, respond: Any) -> None:
        """``/promo list`` … answered through the command's response_url."""
        user = str(command.get("user_id", ""))
        channel = str(command.get("channel_id", ""))
        delivery = f"cmd:{command.get('trigger_id')}" if command.get("trigger_id") else None
        inbound = Inbound(CHAT, channel, user, event_id=delivery)
        text = command_text(str(command.get("text", "")), strip_mention=False)
        reply = await asyncio.to_thread(self.text, inbound, text or "help")
        if reply is None:
            return
        self._kick_unless_done(reply)
        await self.explain_unknown(reply, user, "zh-CN" if looks_chinese(text) else None)
        kind = "ephemeral" if reply.private else "in_channel"
        message = (render(reply.card, get_settings().language) if reply.card is not None
                   else {"text": fit(reply.text, 3000)})
        try:
            await respond(response_type=kind, **message)
        except Exception as exc:  # noqa: BLE001 - response_url expired or unreachable
            log.warning("slack respond failed; sending ephemeral",
                        extra={"user": user, "channel": channel, "error": repr(exc)[:200]})
            await self._private(user, reply.text, channel)

    def _kick_unless_done(self, reply: Reply) -> None:
        """Actions kick the outbox after commit themselves; other commands may enqueue too."""
        if reply.result is None:
            self.kick()

    async def _private(self, user: str, text: str, channel: str | None) -> None:
        """Say it now; if Slack is busy or down, hand it to the outbox to retry later."""
        try:
            await self.adapter.send_private(user, text, channel or None)
        except ChatDeliveryError as exc:
            log.warning("slack private message failed",
                        extra={"user": user, "channel": channel, "error": str(exc),
                               "queued": not exc.permanent})
            if not exc.permanent:
                await asyncio.to_thread(self._queue_private, user, text, channel,
                                        exc.retry_after or 2.0)

    def _queue_private(self, user: str, text: str, channel: str | None, delay: float) -> None:
        with self.db.session() as session:
            session.add(OutboxMessage(
                key=f"slack-private:{user}:{time.time_ns()}"[:256], chat=CHAT,
                channel_id=channel or "",
                kind="private", payload={"text": text, "user": user, "channel": channel or ""},
                next_attempt_at=utcnow() + timedelta(seconds=delay)))

    @staticmethod
    def _delivery_id(body: dict, action: dict) -> str | None:
        """Same payload → same id: trigger_id, else the action's own timestamp."""
        if body.get("trigger_id"):
            return f"act:{body['trigger_id']}"
        if action.get("action_ts"):
            user = (body.get("user") or {}).get("id", "")
            return f"act:{user}:{action['action_ts']}:{action.get('action_id', '')}"
        return None


def _task_id(value: str) -> int:
    parts = value.split("|")
    try:
        return int(parts[2])
    except (IndexError, ValueError):
        return 0


def _comment(view: dict) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get("comment") or {}
    return str((values.get("text") or {}).get("value") or "").strip()


def build_bolt(settings: SlackSettings, work: SlackInbound) -> AsyncApp:
    """The slack-bolt app: signature check (5-minute window) and retries come from bolt."""
    app = AsyncApp(client=work.adapter.client,
                   signing_secret=settings.signing_secret.get_secret_value(),
                   process_before_response=False)

    @app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))
    async def click(ack, body, action) -> None:  # noqa: ANN001 - bolt injects by name
        await ack()
        await work.on_click(body, action)

    @app.action(re.compile(f"^{re.escape(LINK_ACTION)}"))
    async def link_button(ack) -> None:  # noqa: ANN001 - Slack opens the URL itself
        await ack()

    @app.view("pp_comment")
    async def comment(ack, body, view) -> None:  # noqa: ANN001
        lang = await asyncio.to_thread(work.user_lang, (body.get("user") or {}).get("id", ""))
        if not _comment(view):
            await ack(response_action="errors", errors={"comment": t("slack.reason_empty",
                                                                     lang)})
            return
        await ack()
        await work.on_view_submission(body, view)

    @app.command("/promo")
    async def promo(ack, command, respond) -> None:  # noqa: ANN001
        await ack()
        await work.on_command(command, respond)

    @app.event("app_mention")
    async def mention(body, event) -> None:  # noqa: ANN001 - events are acked by bolt first
        await work.on_text(user=str(event.get("user", "")), channel=str(event.get("channel", "")),
                           text=command_text(str(event.get("text", "")), strip_mention=True),
                           delivery=f"evt:{body.get('event_id')}" if body.get("event_id") else None,
                           thread_ts=event.get("thread_ts") or event.get("ts"), direct=False)

    @app.event("message")
    async def direct_message(body, event) -> None:  # noqa: ANN001
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return  # channel chatter is not for us; mentions arrive as app_mention
        await work.on_text(user=str(event.get("user", "")), channel=str(event.get("channel", "")),
                           text=command_text(str(event.get("text", "")), strip_mention=True),
                           delivery=f"evt:{body.get('event_id')}" if body.get("event_id") else None,
                           thread_ts=None, direct=True)

    return app
