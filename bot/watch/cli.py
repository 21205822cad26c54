"""``promopilot sources`` (each notice source's health) and ``promopilot watch --once``
(one pass over every source, for cron users; ``--loop`` keeps polling due sources)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import typer

from bot.core import logs
from bot.core.settings import get_settings
from bot.core.timefmt import stated

# The CLI's composition root hands this in (``register``): features never import the wiring.
_build_container: Callable[[], Any] | None = None


def _container() -> Any:
    assert _build_container is not None, "register(app, build_container) first"
    return _build_container()


def sources(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Show every notice source and its health (from the database; any replica)."""
    from bot.watch.watcher import Watcher

    container = _container()
    health = Watcher(container.db, container.sources).health
    rows = [h.as_dict() for h in health.values()]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no notice sources configured (PROMOPILOT_SOURCES_FILE)")
        return
    for h in health.values():
        status = "OK  " if h.ok else "FAIL"
        typer.echo(f"{status} {h.name:<28} {h.kind or '-':<10} {h.platform or '-':<8} "
                   f"failures={h.consecutive_failures} rejected={len(h.rejections)} "
                   f"last_ok={stated(h.last_success)} next={stated(h.next_attempt_at)}"
                   + (f"\n     last error: {h.last_error}" if h.last_error else ""))
        shown = h.as_dict()["rejections"]  # the newest; each was logged and announced once
        for item in shown[:3]:
            typer.echo(f"     rejected {item['ref']}: {item['reason']}")
        if len(h.rejections) > 3:
            typer.echo(f"     … {len(h.rejections) - 3} more (--json lists the newest "
                       f"{len(shown)})")
    if any(not h.ok for h in health.values()):
        raise typer.Exit(code=1)


def watch(once: bool = typer.Option(True, "--once/--loop",
                                    help="one pass (for cron) or keep polling due sources"),
          every: float = typer.Option(30.0, help="--loop: seconds between checks")) -> None:
    """Poll the notice sources and ingest what is new or changed (chat posts go out through
    the server's outbox)."""
    from bot.watch.watcher import Watcher

    settings = get_settings()
    logs.setup(settings.log_level, settings.log_json)
    container = _container()
    watcher = Watcher(container.db, container.sources)
    while True:
        report = watcher.run_once() if once else watcher.run_due()
        typer.echo(json.dumps({"new": len(report.new), "updated": len(report.updated),
                               "unchanged": report.unchanged, "failed": report.failed,
                               "sources": [h.as_dict() for h in watcher.health.values()]},
                              ensure_ascii=False, default=str))
        if once:
            if any(not h.ok for h in watcher.health.values()):
                raise typer.Exit(code=1)
            return
        time.sleep(every)


def register(app: typer.Typer, build_container: Callable[[], Any]) -> None:
    global _build_container
    _build_container = build_container
    app.command("sources")(sources)
    # Replaces the foundation's ``watch``: the last registration of a name wins in click.
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "watch"
                                  and getattr(c.callback, "__name__", "") != "watch"]
    app.command("watch")(watch)
