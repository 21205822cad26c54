"""The app factory for ``promopilot run --workers N``.

uvicorn's worker processes each import an app from a string; ``promopilot run`` points them
at ``bot.web.serve:app`` (``factory=True``), so every worker builds its own container — its
own connection pool, inbox worker, outbox dispatcher and scheduler — from the same
environment the parent read. Migrations and demo seeding ran once in the parent before the
workers started. Periodic jobs run on whichever process holds the PostgreSQL leader lock
(``bot.watch.leader``); the others serve requests and deliver what their own requests
decided. SQLite stays at one process (``promopilot run`` refuses more; docs/deploy.md).
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

from bot.core import logs
from bot.core.settings import get_settings

log = logging.getLogger(__name__)


def app() -> FastAPI:
    from bot.web.app import create_app  # late: importing this module stays cheap

    settings = get_settings()
    logs.setup(settings.log_level, settings.log_json)  # a spawned worker starts bare
    built = create_app(settings, server=True)
    log.info("worker process ready", extra={"pid": os.getpid()})
    return built
