"""The connectors plugin: each configured connector becomes a notice source (the watcher
posts its campaigns and invitations as cards), the platform's ``api`` submission channel and
the platform's eligibility checker for the pre-check; an ``assisted_submit`` connector is
the platform's ``assisted`` channel, and a platform's own checker step (JD) is shown on
the cards (``review_step``). Installed from ``bot.wiring.PLUGINS`` before the watchers
plugin."""

from __future__ import annotations

import logging
from typing import Any

from adapters.platforms.connector import config, review_step
from bot.core.platforms import PLATFORM_NAMES
from bot.declarations import platform_gate
from storage.models import Platform

log = logging.getLogger(__name__)


def install(container: Any, api: Any) -> None:
    connectors = config.build(container.db)  # a broken file stops start-up, clearly
    platform_gate.clear()  # this app's connectors only
    container.extras["connectors"] = connectors
    names = {s.name for s in container.sources}
    known(container.db, {c.platform: c.capability for c in connectors})
    assisted = container.extras.setdefault("assisted_submitters", {})
    assisted.clear()
    review_step.configure({c.platform: c.name for c in connectors
                           if getattr(c, "checker_step", False)})
    for c in connectors:
        if c.config.source and "list_campaigns" in c.operations and c.name not in names:
            container.sources.append(c)
        if c.config.submitter and c.capability == "api_submit" and "enrol" in c.operations:
            container.submitters[c.platform] = c
        if c.config.submitter and c.capability == "assisted_submit":
            assisted[c.platform] = c  # the platform's `assisted` channel (its hand-off)
        if "eligible_products" in c.operations:
            platform_gate.configure(c.platform, c.name, c.quick_check)
        log.info("connector configured", extra={
            "connector": c.name, "platform": c.platform, "shop": c.shop,
            "capability": c.capability, "operations": sorted(c.operations)})


def known(db: Any, platforms: dict[str, str]) -> None:
    """A connector's marketplace exists as a platform (campaigns refer to it)."""
    with db.session() as session:
        for code, capability in platforms.items():
            if session.get(Platform, code) is None:
                session.add(Platform(code=code, name=PLATFORM_NAMES.get(code, code.title()),
                                     submit_mode=capability))
