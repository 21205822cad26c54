"""The cost sources plugin: adds the ERP/WMS sources of ``config/costs.yaml`` (or
``PROMOPILOT_COSTS_FILE``) to the container. Installed from ``bot.wiring.PLUGINS`` before
``bot.insight.plugin``, which syncs them on a schedule (leader only)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from adapters.erp import config
from bot.core.settings import ROOT

log = logging.getLogger(__name__)
DEFAULT_FILE = ROOT / "config" / "costs.yaml"


def costs_path() -> Path | None:
    configured = os.environ.get("PROMOPILOT_COSTS_FILE", "").strip()
    if configured:
        return Path(configured)
    return DEFAULT_FILE if DEFAULT_FILE.exists() else None


def configure_cost_sources(container: Any) -> int:
    """Add the configured cost sources (names already there are kept); returns how many.
    A broken file stops start-up with a clear message."""
    path = costs_path()
    if path is None:
        return 0
    names = {s.name for s in container.cost_sources}
    added = 0
    for source in config.build(config.load(path)):
        if source.name not in names:
            container.cost_sources.append(source)
            added += 1
    log.info("cost sources configured", extra={"file": str(path), "added": added})
    return added


def install(container: Any, api: Any) -> None:
    configure_cost_sources(container)
