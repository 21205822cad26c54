"""Slack → PromoPilot: the slack-bolt listeners.

Every delivery is stored in the inbox first (``bot.core.inbox``, keyed ``slack:<delivery
id>``: a retry or a re-sent payload finds its row and changes nothing), then acknowledged
(bolt answers Slack as soon as ``ack()`` runs, well inside the 3-second budget; events are
stored by a listener middleware, before bolt's own ack), then processed from that row on the
inbox's worker threads: the router (synchronous, it talks to the database) and the answer — a
refused click becomes an ephemeral to the clicker only. If the work takes longer than a
moment the person hears "working on it"; if the process dies first, the restarted process or
another replica finishes the row. The card itself is refreshed through the outbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.core.actors import ROLES
from bot.core.courtesy import OncePerPerson
from bot.core.i18n import looks_chinese, normalise, roles, t
from bot.core.inbox import InboxWorker
from bot.core.ports import ChatDeliveryError
from bot.core.settings import get_settings
from bot.core.users import by_chat
from commands.router import Inbound, Reply, router
from storage.db import Database
from storage.models import InboxEvent, OutboxMessage
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
SLOW = 2.0  # seconds: work still running after this → "working on it" to the person


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
                 kick: Callable[[], None], inbox: InboxWorker | None = None,
                 loop: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None) -> None:
        self.db = db
        self.adapter = adapter
        self.kick = kick
        self.inbox = inbox or InboxWorker(db)
        self.inbox.register(CHAT, self.process)
        self.loop = loop  # the app's loop: Slack calls run there (the limiter lives there)
        self._worked: dict[int, Future] = {}  # set when the work is done, before the answer
        self.working_told = OncePerPerson()  # "working on it": once a minute per person

    # -- the synchronous part (inbox worker thread) --------------------------------------

    def process(self, event: InboxEvent, inline: Callable[[], bool]) -> dict:
        """Do the work of one stored delivery and answer the person (on the app's loop)."""
        p = event.payload
        user, channel = str(p.get("user", "")), str(p.get("channel", ""))
        inbound = Inbound(CHAT, channel, user, event_id=event.key)
        if event.kind == "click":
            reply = self.click(inbound, str(p.get("value", "")), p.get("comment"))
            answer = self._after_click(reply, user, channel, str(p.get("action", "")))
        elif event.kind == "command":
            reply = self.text(inbound, str(p.get("text") or "help"))
            answer = self._answer_command(reply, user, channel, str(p.get("text", "")),
                                          str(p.get("response_url", "")))
        else:
            reply = self.text(inbound, str(p.get("text", "")))
            answer = self._answer_text(reply, user, channel, str(p.get("text", "")),
                                       p.get("thread_ts"), bool(p.get("direct")))
        worked = self._worked.get(event.id or 0)
        if worked is not None and not worked.done():
            worked.set_result(True)
        self._on_loop(answer)
        return {"ok": reply.ok}

    def _on_loop(self, answer: Any) -> None:
        loop = self.loop()
        if loop is None or loop.is_closed():
            answer.close()
            log.warning("slack answer dropped: the app is not running")
            return
        future = asyncio.run_coroutine_threadsafe(answer, loop)
        for _ in range(60):  # a minute at most, and not past the loop's end (shutdown)
            try:
                future.result(1)
                return
            except TimeoutError:
                if loop.is_closed() or not loop.is_running():
                    log.warning("slack answer not sent: the app stopped meanwhile")
                    return
        future.cancel()

    async def _accept(self, kind: str, delivery: str | None, payload: dict) -> int | None:
        """Store the delivery before it is acknowledged; None for a redelivery."""
        key = f"slack:{delivery or 'anon:' + secrets.token_hex(8)}"
        return await asyncio.to_thread(self.inbox.accept, key, CHAT, kind, payload)

    async def run(self, event_id: int | None, user: str, channel: str | None) -> None:
        """Process a stored delivery now; a slow one gets "working on it" first."""
        if event_id is None:
            return
        worked = self._worked[event_id] = Future()
        self.inbox.submit(event_id)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(worked)), SLOW)
        except TimeoutError:
            if not self.working_told.first(user):
                return  # told a moment ago: the bot is busy, they know
            lang = await asyncio.to_thread(self.user_lang, user)
            try:
                await self.adapter.send_private(user, t("inbox.working", lang), channel)
            except ChatDeliveryError as exc:
                log.info("slack 'working on it' not sent", extra={"error": str(exc)[:200]})
        finally:
            self._worked.pop(event_id, None)

    def click(self, inbound: Inbound, value: str, comment: str | None) -> Reply:
        # the router finds the person once and marks a stranger (extra["unknown_user"])
        reply = router.handle_click(self.db, inbound, value, comment)
        reply.extra.setdefault("unknown_user", False)
        return reply

    def text(self, inbound: Inbound, text: str) -> Reply:
        # the router finds the person once and marks a stranger, as for a click
        reply = router.handle_text(self.db, inbound, text)
        reply.extra.setdefault("unknown_user", False)
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
        with self.db.read() as session:
            user = by_chat(session, CHAT, user_id)
        return normalise(user.lang if user else get_settings().language)

    # -- async entry points --------------------------------------------------------------

    async def on_click(self, body: dict, action: dict, ack: Any) -> None:
        user = (body.get("user") or {}).get("id", "")
        channel = ((body.get("channel") or {}).get("id")
                   or (body.get("container") or {}).get("channel_id") or "")
        message_ts = ((body.get("container") or {}).get("message_ts")
                      or (body.get("message") or {}).get("ts") or "")
        name, needs_input = parse_action_id(str(action.get("action_id", "")))
        value = str(action.get("value") or "")
        if needs_input:
            await ack()
            await self._ask_reason(body, user, channel, message_ts, name, value)
            return
        event_id = await self._accept("click", self._delivery_id(body, action), {
            "user": user, "channel": channel, "value": value, "action": name})
        await ack()
        await self.run(event_id, user, channel)

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

    async def on_view_submission(self, body: dict, view: dict, ack: Any) -> None:
        user = (body.get("user") or {}).get("id", "")
        meta = json.loads(view.get("private_metadata") or "{}")
        channel = str(meta.get("c") or "")
        value = str(meta.get("v", ""))
        event_id = await self._accept("click", f"view:{view.get('id', '')}", {
            "user": user, "channel": channel, "value": value, "comment": _comment(view),
            "action": value.split("|")[1] if "|" in value else ""})
        await ack()
        await self.run(event_id, user, channel)

    async def _after_click(self, reply: Reply, user: str, channel: str, action: str) -> None:
        self._kick_unless_done(reply)
        await self.explain_unknown(reply, user, None)
        if not reply.ok:
            log.info("slack click refused", extra={"user": user, "channel": channel,
                                                   "action": action})
            await self._private(user, reply.text, channel)

    async def accept_event(self, body: dict, event: dict, direct: bool) -> int | None:
        """An @mention in a channel or a direct message to the app, stored before the ack."""
        delivery = f"evt:{body.get('event_id')}" if body.get("event_id") else None
        return await self._accept("text", delivery, {
            "user": str(event.get("user", "")), "channel": str(event.get("channel", "")),
            "text": command_text(str(event.get("text", "")), strip_mention=True),
            "thread_ts": None if direct else (event.get("thread_ts") or event.get("ts")),
            "direct": direct})

    async def _answer_text(self, reply: Reply, user: str, channel: str, text: str,
                           thread_ts: str | None, direct: bool) -> None:
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

    async def on_command(self, command: dict, ack: Any) -> None:
        """``/promo list`` … answered through the command's response_url."""
        user = str(command.get("user_id", ""))
        channel = str(command.get("channel_id", ""))
        delivery = f"cmd:{command.get('trigger_id')}" if command.get("trigger_id") else None
        event_id = await self._accept("command", delivery, {
            "user": user, "channel": channel, "response_url": command.get("response_url"),
            "text": command_text(str(command.get("text", "")), strip_mention=False)})
        await ack()
        await self.run(event_id, user, channel)

    async def _answer_command(self, reply: Reply, user: str, channel: str, text: str,
                              response_url: str) -> None:
        respond = AsyncRespond(response_url=response_url)
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
        await work.on_click(body, action, ack)  # stored, then acknowledged, then done

    @app.action(re.compile(f"^{re.escape(LINK_ACTION)}"))
    async def link_button(ack) -> None:  # noqa: ANN001 - Slack opens the URL itself
        await ack()

    @app.view("pp_comment")
    async def comment(ack, body, view) -> None:  # noqa: ANN001
        if not _comment(view):
            lang = await asyncio.to_thread(work.user_lang,
                                           (body.get("user") or {}).get("id", ""))
            await ack(response_action="errors", errors={"comment": t("slack.reason_empty",
                                                                     lang)})
            return
        await work.on_view_submission(body, view, ack)

    @app.command("/promo")
    async def promo(ack, command) -> None:  # noqa: ANN001
        await work.on_command(command, ack)

    def stored(direct: bool) -> Callable:
        """Listener middleware: events are acknowledged by bolt before the listener runs,
        so they are stored here, before that ack (a failure → 500 → Slack retries)."""
        async def store(body, event, context, next) -> None:  # noqa: ANN001, A002
            ours = not direct or (event.get("channel_type") == "im" and not event.get(
                "subtype") and not event.get("bot_id"))  # channel chatter is not for us
            context["inbox_event"] = await work.accept_event(body, event, direct) \
                if ours else None
            await next()
        return store

    @app.event("app_mention", middleware=[stored(False)])
    async def mention(event, context) -> None:  # noqa: ANN001
        await work.run(context.get("inbox_event"), str(event.get("user", "")),
                       str(event.get("channel", "")))

    @app.event("message", middleware=[stored(True)])
    async def direct_message(event, context) -> None:  # noqa: ANN001
        await work.run(context.get("inbox_event"), str(event.get("user", "")), None)

    return app
