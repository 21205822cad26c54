"""The notice sources plugin: adds the sources of ``config/sources.yaml`` (or
``PROMOPILOT_SOURCES_FILE``) to the container. Installed from ``bot.wiring.PLUGINS``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from adapters.platforms import sources_config
from bot.core.settings import ROOT
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
            # a little under the pass interval: due at every pass even when this pass reaches
            # it a moment earlier than the last one did (a new notice shows within a minute)
            source.interval = float(settings.watch_interval_seconds) * 0.9
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
    configure_sources(container)
