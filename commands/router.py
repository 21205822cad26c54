"""One router for words and clicks, whatever chat they come from.

Handlers register by decorator (like slack-bolt listeners): ``@router.command("claim",
"认领")``. Each inbound message or click becomes an ``Inbound`` context; the router resolves
the person, runs the handler and returns a ``Reply``. Nothing is ever answered with silence:
an unknown command gets the help text, a refused action gets the reason.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.actions import ActionRequest, ActionResult, perform
from bot.core.actors import Actor
from bot.core.errors import DomainError
from bot.core.i18n import looks_chinese, normalise, t
from bot.core.settings import get_settings
from bot.core.users import by_chat
from cards.callback import BadCallback, CallbackData
from cards.model import Card
from storage.db import Database

log = logging.getLogger(__name__)
MENTION = re.compile(r"^\s*(?:<@[A-Z0-9]+>|@\S+|<at [^>]*>[^<]*</at>|/promo)\s*", re.I)


@dataclass
class Inbound:
    """Where a message or click came from and who sent it."""

    chat: str
    channel_id: str
    user_ref: str  # the chat's own user id (web: the user name)
    event_id: str | None = None
    lang_hint: str | None = None


@dataclass
class Reply:
    text: str = ""
    card: Card | None = None
    ok: bool = True
    private: bool = True  # only the sender sees it (ephemeral / DM / console private)
    result: ActionResult | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Context:
    db: Database
    inbound: Inbound
    actor: Actor
    lang: str
    alias: str = ""  # the word the person used

    def t(self, key: str, **params: object) -> str:
        return t(key, self.lang, **params)

    def act(self, task_id: int, action: str, *, comment: str | None = None,
            version: int | None = None, payload: dict | None = None) -> ActionResult:
        return perform(self.db, ActionRequest(
            task_id=task_id, action=action, actor=self.actor, comment=comment,
            event_id=self.inbound.event_id, version=version, payload=payload or {}))


CommandHandler = Callable[[Context, list[str]], Reply]


@dataclass
class CommandSpec:
    names: tuple[str, ...]
    handler: CommandHandler
    usage_key: str
    public: bool = False  # answer in the channel, not privately
    anonymous: bool = False  # may be used by people we don't know yet (help)


class Router:
    def __init__(self) -> None:
        self.commands: dict[str, CommandSpec] = {}
        self.specs: list[CommandSpec] = []
        # action → what a click on it answers instead of "state before → after" (an action
        # that changes no state: explain shows the breakdown, mute_alert confirms)
        self.click_replies: dict[str, Callable[[Context, ActionResult], Reply]] = {}

    def command(self, *names: str, usage: str, public: bool = False,
                anonymous: bool = False) -> Callable[[CommandHandler], CommandHandler]:
        def register(fn: CommandHandler) -> CommandHandler:
            spec = CommandSpec(names, fn, usage, public, anonymous)
            self.specs.append(spec)
            for name in names:
                self.commands[name.lower()] = spec
            return fn

        return register

    # -- entry points -----------------------------------------------------------------

    def handle_text(self, db: Database, inbound: Inbound, text: str) -> Reply:
        words = self._split(text)
        lang_hint = inbound.lang_hint or ("zh-CN" if looks_chinese(text) else None)
        spec = self.commands.get(words[0].lower()) if words else None
        ctx = self._context(db, inbound, lang_hint)
        if spec is None or (ctx is None and not spec.anonymous):
            if ctx is None:
                return self._unknown_user(inbound, lang_hint)
            return self.help(ctx, unknown=words[0] if words else "")
        stranger = ctx is None  # an anonymous command (help) still answers them
        if ctx is None:
            ctx = Context(db, inbound, Actor("?", "?"), normalise(lang_hint))
        ctx.alias = words[0]
        try:
            reply = spec.handler(ctx, words[1:])
        except DomainError as exc:
            reply = Reply(text=exc.message(ctx.lang), ok=False)
        except Exception:  # noqa: BLE001 - the person still gets an answer
            ref = secrets.token_hex(4)
            log.exception("command failed", extra={"ref": ref, "command": words[0]})
            reply = Reply(text=ctx.t("err.internal", ref=ref), ok=False)
        if spec.public and reply.ok:
            reply.private = False
        reply.extra["unknown_user"] = stranger
        return reply

    def handle_click(self, db: Database, inbound: Inbound, value: str,
                     comment: str | None = None) -> Reply:
        """A card button: ``value`` is the packed ``(action, task, version)``."""
        ctx = self._context(db, inbound, inbound.lang_hint)
        if ctx is None:
            return self._unknown_user(inbound, inbound.lang_hint)
        try:
            data = CallbackData.unpack(value)
        except BadCallback:
            log.warning("bad button value", extra={"chat": inbound.chat, "value": value[:80]})
            return Reply(text=ctx.t("err.stale_card", task_id="?"), ok=False)
        try:
            result = ctx.act(data.task_id, data.action, comment=comment, version=data.version)
        except DomainError as exc:
            return Reply(text=exc.message(ctx.lang), ok=False)
        except Exception:  # noqa: BLE001
            ref = secrets.token_hex(4)
            log.exception("click failed", extra={"ref": ref, "action": data.action})
            return Reply(text=ctx.t("err.internal", ref=ref), ok=False)
        return self._done(ctx, result)

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _split(text: str) -> list[str]:
        text = text or ""
        while True:
            stripped = MENTION.sub("", text, count=1)
            if stripped == text:
                break
            text = stripped
        words = text.split()
        if words:  # "认领12" → "认领", "12"
            glued = re.fullmatch(r"([^\d\s]+?)(\d+)", words[0])
            if glued and looks_chinese(glued.group(1)):
                words[:1] = [glued.group(1), glued.group(2)]
        return words

    @staticmethod
    def _context(db: Database, inbound: Inbound, lang_hint: str | None) -> Context | None:
        with db.read() as session:
            user = by_chat(session, inbound.chat, inbound.user_ref)
        if user is None or not user.active:
            return None
        actor = Actor.of(user)
        lang = normalise(lang_hint or user.lang)
        return Context(db, inbound, actor, lang)

    @staticmethod
    def _unknown_user(inbound: Inbound, lang_hint: str | None) -> Reply:
        """Someone without a PromoPilot user: the team's language unless the chat knows
        theirs; ``extra["unknown_user"]`` lets the adapter explain what an admin types."""
        lang = normalise(lang_hint or get_settings().language)
        return Reply(text=t("err.unknown_user", lang, ref=inbound.user_ref, chat=inbound.chat),
                     ok=False, extra={"unknown_user": True})

    def _done(self, ctx: Context, result: ActionResult) -> Reply:
        answer = self.click_replies.get(result.action)
        if answer is not None:
            return answer(ctx, result)
        if result.duplicate:
            return Reply(text=ctx.t("ok.duplicate", task_id=result.task_id,
                                    state=ctx.t(f"state.{result.state}")), result=result)
        if result.action == "claim":
            text = ctx.t("ok.claim", who=ctx.actor.display_name, task_id=result.task_id)
        else:
            text = ctx.t("ok.transition", task_id=result.task_id,
                         before=ctx.t(f"state.{result.before}"),
                         after=ctx.t(f"state.{result.state}"))
        return Reply(text=text, result=result)

    def help(self, ctx: Context, unknown: str = "") -> Reply:
        lines = []
        if unknown:
            lines.append(ctx.t("help.unknown", word=unknown))
        lines.append(ctx.t("help.title"))
        for spec in self.specs:
            lines.append(f"• {ctx.t(spec.usage_key)}")
        return Reply(text="\n".join(lines), ok=not unknown)


router = Router()
