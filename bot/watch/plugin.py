"""Plugs the watchers feature in: the reminder sweep job,
the PostgreSQL leader lock, the cards and the ``set_deadline`` action. The notice sources
themselves come from ``adapters/platforms/plugin.py`` (``config/sources.yaml``).

``install(container, api)`` is called by ``bot.wiring.install_plugins``.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.core.scheduler import threaded
from bot.watch import cards as _cards  # noqa: F401  (registers the cards)
from bot.watch import deadlines  # noqa: F401  (registers the set_deadline action)
from bot.watch.leader import Leader
from bot.watch.reminders import sweep
from bot.watch.settings import get_watch_settings

log = logging.getLogger(__name__)


def install(container: Any, api: Any) -> None:
    watch_settings = get_watch_settings()
    watcher = container.extras.get("watcher")
    if watcher is not None:
        watcher.respect_schedule = True  # the server polls each source at its own interval
    leader = Leader(container.db, watch_settings.leader_lock_key)
    container.extras["leader"] = leader
    container.extras["is_leader"] = leader.is_leader

    def sweep_then_kick() -> None:
        report = sweep(container.db)
        if report.sent or report.nags or report.digests or report.periodic:
            kick = container.extras.get("kick")
            if kick is not None:
                kick()

    container.jobs.append(("reminders", threaded(sweep_then_kick),
                           watch_settings.sweep_interval_seconds))

    async def release() -> None:
        leader.release()

    container.extras.setdefault("on_stop", []).append(release)
