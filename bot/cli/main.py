"""The ``promopilot`` command line."""

from __future__ import annotations

import asyncio
import importlib
import json

import typer

from bot.core import logs
from bot.core.settings import get_settings

app = typer.Typer(help="PromoPilot: promotion declarations run from group chats.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.")
app.add_typer(db_app, name="db")


def _database():
    from storage.db import Database

    return Database(get_settings().database_url)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("heads")) -> None:
    """Apply migrations (default: all)."""
    from storage.db import upgrade

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("-1")) -> None:
    """Revert migrations (default: one step; ``base`` for all)."""
    from storage.db import downgrade

    downgrade(get_settings().database_url, revision)
    typer.echo(f"database downgraded to {revision}")


@app.command()
def demo() -> None:
    """Seed demo people, products, documents, channels and sandbox notices."""
    from bot.demo import seed

    settings = get_settings()
    typer.echo(json.dumps(seed(_database(), settings), ensure_ascii=False))


MAX_WORKERS = 32


@app.command()
def run(migrate: bool = typer.Option(True, help="apply migrations first"),
        workers: int = typer.Option(
            1, "--workers", min=1, max=MAX_WORKERS, envvar="PROMOPILOT_WORKERS",
            help="server processes sharing the port (each builds its own container; the "
                 "PostgreSQL leader lock keeps periodic jobs to one). Above 1 needs "
                 "PostgreSQL: SQLite stays at one"),
        host: str | None = typer.Option(None, help="listen address (default: PROMOPILOT_HOST, "
                                                   "else 127.0.0.1)"),
        port: int | None = typer.Option(None, min=1, max=65535,
                                        help="port (default: PROMOPILOT_PORT, else 8000)")
        ) -> None:
    """Serve PromoPilot (console, API, sandbox, chat endpoints) and run the jobs."""
    import os

    import uvicorn
    from sqlalchemy.engine import make_url

    from bot.core.i18n import t
    from bot.demo import is_empty, seed
    from bot.web.app import create_app
    from storage.db import upgrade

    # Through the environment, so worker processes read the same settings.
    os.environ["PROMOPILOT_WORKERS"] = str(workers)  # each worker paces its share of limits
    for name, value in (("PROMOPILOT_HOST", host), ("PROMOPILOT_PORT", port)):
        if value is not None:
            os.environ[name] = str(value)
    get_settings.cache_clear()
    settings = get_settings()
    logs.setup(settings.log_level, settings.log_json)
    if workers > 1 and make_url(settings.database_url).get_backend_name() != "postgresql":
        typer.echo(t("cli.workers_need_postgres", settings.language, n=workers, db="SQLite",
                     pg="PostgreSQL", var="PROMOPILOT_DATABASE_URL"), err=True)
        raise typer.Exit(code=2)
    if migrate:
        upgrade(settings.database_url)
    db = _database()
    if settings.demo_on_empty and is_empty(db):
        typer.echo("empty database: seeding demo data")
        seed(db, settings)
    db.dispose()
    typer.echo(f"PromoPilot console: {settings.base_url}/console  API docs: "
               f"{settings.base_url}/docs")
    if settings.demo:
        typer.echo("demo mode (PROMOPILOT_DEMO=true): console, API and sandbox are open to "
                   "anyone who can reach this port")
    else:
        typer.echo("the console asks for a login: set a password with "
                   "`promopilot user passwd <name>`; the API takes PROMOPILOT_API_TOKEN")
    if workers > 1:  # uvicorn's workers need an import string; each builds its own app
        typer.echo(f"{workers} worker processes on {settings.host}:{settings.port}")
        uvicorn.run("bot.web.serve:app", factory=True, workers=workers, host=settings.host,
                    port=settings.port, log_config=None)
        return
    uvicorn.run(create_app(settings, server=True), host=settings.host, port=settings.port,
                log_config=None)


@app.command()
def watch(once: bool = typer.Option(True, "--once/--loop", help="one pass (for cron)")) -> None:
    """Poll every notice source once and ingest what is new or changed."""
    from bot import wiring
    from bot.watch.watcher import Watcher

    settings = get_settings()
    logs.setup(settings.log_level, settings.log_json)
    container = wiring.build(settings)
    watcher = Watcher(container.db, container.sources)
    report = watcher.run_once()
    typer.echo(json.dumps({"new": len(report.new), "updated": len(report.updated),
                           "unchanged": report.unchanged, "failed": report.failed,
                           "sources": [h.as_dict() for h in watcher.health.values()]},
                          ensure_ascii=False, default=str))
    if not once:
        typer.echo("use the server (promopilot run) for continuous watching")


@app.command("dispatch")
def dispatch() -> None:
    """Send due outbox messages once (normally the server does this)."""
    from bot.web.app import create_app

    settings = get_settings()
    logs.setup(settings.log_level, settings.log_json)
    container = create_app(settings).state.container  # with every plugin's builders
    typer.echo(f"sent {asyncio.run(container.dispatcher.run_due())}")


def _build_container():
    from bot import wiring  # late: commands that need no container start fast

    return wiring.build_with_sources(get_settings())


# Feature modules add their commands with ``register(app, build_container)``: the container
# comes from here, the composition root, so features never import the wiring.
CLI_MODULES = ["bot.watch.cli", "bot.cli.audit", "bot.declarations.cli", "bot.cli.users"]
CLI_MODULES += ["bot.insight.cli"]  # report metrics / review, export declarations
CLI_MODULES += ["bot.cli.platforms"]  # marketplace connectors and shop credentials
for _name in CLI_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app, _build_container)


if __name__ == "__main__":
    app()
