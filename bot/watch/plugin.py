"""Plugs the watchers feature in: sources from ``sources.yaml``, the reminder sweep job,
the PostgreSQL leader lock, the cards and the ``set_deadline`` action.

``install(container, api)`` is called by ``bot.wiring.install_plugins``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from adapters.platforms import sources_config
from bot.core.scheduler import threaded
from bot.core.settings import ROOT
from bot.watch import cards as _cards  # noqa: F401  (registers the cards)
from bot.watch import deadlines  # noqa: F401  (registers the set_deadline action)
from bot.watch.leader import Leader
from bot.watch.reminders import sweep
from bot.watch.settings import get_watch_settings

log = logging.getLogger(__name__)
DEFAULT_SOURCES = ROOT / "config" / "sources.yaml"


def sources_path() -> Path | None:
    configured = get_watch_settings().sources_file.strip()
    if configured:
        return Path(configured)
    return DEFAULT_SOURCES if DEFAULT_SOURCES.exists() else None


def configure_sources(container: Any) -> int:
    """Add the configured sources (names already there are kept); returns how many."""
    settings = container.settings
    for source in container.sources:  # the foundation's sandbox feeds keep their pace
        if getattr(source, "kind", "") == "http_json" and source.name.startswith("sandbox-"):
            source.interval = float(settings.watch_interval_seconds)
            source.attempts = min(getattr(source, "attempts", 3), 3)
    path = sources_path()
    if path is None:
        return 0
    config = sources_config.load(path)  # a broken file stops start-up with a clear message
    names = {s.name for s in container.sources}
    added = 0
    for source in sources_config.build(config, timezone=settings.timezone,
                                       base_url=settings.base_url):
        if source.name in names:
            continue
        container.sources.append(source)
        added += 1
    log.info("notice sources configured", extra={"file": str(path), "added": added})
    return added


def install(container: Any, api: Any) -> None:
    watch_settings = get_watch_settings()
    configure_sources(container)
    watcher = container.extras.get("watcher")
    if watcher is not None:
        watcher.respect_schedule = True  # the server polls each source at its own interval
    leader = Leader(container.db, watch_settings.leader_lock_key)
    container.extras["leader"] = leader
    container.extras["is_leader"] = leader.is_leader

    def sweep_then_kick() -> None:
        report = sweep(container.db)
        if report.sent or report.nags or report.digests:
            kick = container.extras.get("kick")
            if kick is not None:
                kick()

    container.jobs.append(("reminders", threaded(sweep_then_kick),
                           watch_settings.sweep_interval_seconds))

    async def release() -> None:
        leader.release()

    container.extras.setdefault("on_stop", []).append(release)
