"""The composition root: builds every service once and hands them out.

Chat platforms and other features plug in through ``PLUGINS``: each names a module with
``install(container, api)`` that returns quietly when its platform is not configured.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters import feeds as _feeds  # noqa: F401  (HTTP-JSON for results, competitor prices)
from adapters.platforms.http_json import HttpJsonSource
from adapters.platforms.http_util import TIMEOUT
from adapters.platforms.sandbox.seed import PLATFORMS
from adapters.platforms.sandbox.submitter import SandboxSubmitter

# Features register their action handlers, card builders and lifecycle listeners on import.
from bot.approvals import card as _approval_card  # noqa: F401
from bot.approvals import handlers as _approval_handlers  # noqa: F401
from bot.core import actions, dispatcher, lifecycle, outbox
from bot.core.ports import ChatAdapter, CostSource, NoticeSource, Submitter
from bot.core.settings import Settings
from bot.declarations import autofill as _autofill  # noqa: F401
from bot.declarations import platform_gate as _platform_gate  # noqa: F401  (eligibility gate)
from bot.insight import acceptance as _insight_risks  # noqa: F401  (accept_risk, card risks)
from bot.insight import decide as _insight_decide  # noqa: F401  (recommendation, alerts)
from bot.insight import margin as _insight_margin  # noqa: F401  (margin on the approval card)
from bot.insight import review as _insight_review  # noqa: F401  (the review card)
from bot.insight import scenarios as _insight_scenarios  # noqa: F401  (scenarios on cards)
from bot.submissions import announce as _result_lines  # noqa: F401  (a line when a result is in)
from bot.submissions import channels
from bot.submissions import handlers as _submission_handlers  # noqa: F401
from bot.submissions.service import SubmissionService
from bot.watch import cards as _watch_cards  # noqa: F401
from storage.db import Database

log = logging.getLogger(__name__)

# Each module has ``install(container, api)``; later features append here.
PLUGINS: list[str] = ["adapters.chat.dingtalk", "adapters.chat.feishu", "adapters.chat.slack",
                      "adapters.platforms.submitters.plugin", "bot.approvals.plugin"]
PLUGINS += ["bot.declarations.plugin"]  # declarations: pre-check, learning, declaration card (#9)
PLUGINS += ["adapters.platforms.connector.plugin"]  # marketplace connectors (connectors.md)
PLUGINS += ["adapters.platforms.plugin", "bot.watch.plugin"]  # watchers, reminders, leader lock (#7)
PLUGINS += ["adapters.erp.plugin"]  # cost and stock sources (ERP/WMS), synced by bot.insight
PLUGINS += ["bot.insight.plugin"]  # decisions: metrics, review report, BI export


@dataclass
class Container:
    settings: Settings
    db: Database
    adapters: dict[str, ChatAdapter] = field(default_factory=dict)
    sources: list[NoticeSource] = field(default_factory=list)
    submitters: dict[str, Submitter] = field(default_factory=dict)
    cost_sources: list[CostSource] = field(default_factory=list)  # ERP/WMS (adapters/erp)
    jobs: list[tuple[str, Any, float]] = field(default_factory=list)  # (name, coro fn, secs)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dispatcher = dispatcher.Dispatcher(self.db, self.adapters)
        self.submissions = SubmissionService(self.db, channels.ApiOnly(self.submitters.get))

    @property
    def sandbox_url(self) -> str:
        return f"{self.settings.base_url}/sandbox"


def build(settings: Settings, db: Database | None = None) -> Container:
    from bot.core.leases import get_lease_settings

    # One connection for every thread that may hold one at once (request threads, inbox
    # workers) and a few for the jobs; the loop's executor (chat events stored before their
    # ack, the outbox) shares the overflow. At most 16 + 16 + 4 + 8 = 44 a process: two
    # workers stay under PostgreSQL's default max_connections of 100 (docs/deploy.md).
    pool = settings.request_threads + get_lease_settings().inbox_workers + 4
    container = Container(settings=settings, db=db or Database.shared(
        settings.database_url, pool_size=pool, max_overflow=8))
    lifecycle.on_transition(outbox.task_card_listener)
    if settings.sandbox_enabled:  # on in the demo (PROMOPILOT_DEMO), elsewhere when asked for
        for platform in PLATFORMS:
            container.sources.append(HttpJsonSource(
                name=f"sandbox-{platform}", platform=platform,
                url=f"{container.sandbox_url}/{platform}/notices", timezone=settings.timezone))
            container.submitters[platform] = SandboxSubmitter(
                container.sandbox_url, platform, client=_sandbox_client(settings))
    return container


def _sandbox_client(settings: Settings) -> httpx.Client:
    """Registering on the sandbox takes a credential outside the demo: the team token."""
    headers = ({"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
               if settings.api_token is not None else {})
    return httpx.Client(timeout=TIMEOUT, headers=headers)


def install_plugins(container: Container, api: Any) -> None:
    for name in PLUGINS:
        module = importlib.import_module(name)
        module.install(container, api)
        log.info("plugin installed", extra={"plugin": name})


def kick_outbox_after_actions(container: Container, kick: Any) -> None:
    actions.after_commit[:] = [lambda _result: kick()]  # one app per process


def build_with_sources(settings: Settings) -> Container:
    """A container with the configured notice and cost sources, for CLI commands (no web
    app)."""
    from adapters.erp.plugin import configure_cost_sources
    from adapters.platforms.plugin import configure_sources

    container = build(settings)
    configure_sources(container)
    configure_cost_sources(container)
    return container
