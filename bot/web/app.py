"""The PromoPilot web app: REST API, console, sandbox marketplace, chat endpoints, jobs."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import commands  # noqa: F401  (registers the commands)
from adapters.chat.web.adapter import WebChatAdapter
from adapters.chat.web.live import LiveHub
from adapters.platforms.sandbox.server import build_router as sandbox_router
from bot import wiring
from bot.core.inbox import inbox_of
from bot.core.leases import get_lease_settings
from bot.core.scheduler import build_scheduler, threaded
from bot.core.settings import Settings, get_settings
from bot.watch.watcher import Watcher
from bot.web import api, auth, console, dashboard, errors, login

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Once started: what start-up built (modules, SQLAlchemy's metadata, the chat SDKs'
    classes: 270,000 objects) lives as long as the process, so it leaves the garbage
    collector's generations (``gc.freeze``), and the youngest generation is collected every
    10,000 allocations instead of 700. A Feishu click spent 0.6 ms in collections walking
    that heap; now 0.07 ms (in process, docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def stop_watchers_on_exit_signal(watcher: Watcher) -> None:
    """uvicorn closes the listening socket before the lifespan's shutdown runs, so a watch
    pass still going would find this app's own sandbox refusing and count every source as
    failed. Stop the watchers the moment the exit signal arrives (main thread only: that is
    where uvicorn has its handlers, which still run after this one)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: object, previous=previous) -> None:  # noqa: ANN001
            watcher.stop()
            previous(signum, frame)

        signal.signal(sig, handler)


def create_app(settings: Settings | None = None,
               container: wiring.Container | None = None, *, server: bool = False) -> FastAPI:
    """``server``: this process only serves this app (``promopilot run``), so its heap is
    settled once started (tests build many apps in one process and leave theirs alone)."""
    settings = settings or get_settings()
    container = container or wiring.build(settings)
    hub = LiveHub()
    container.extras["hub"] = hub
    container.adapters["web"] = WebChatAdapter(container.db, hub)
    watcher = Watcher(container.db, container.sources)
    container.extras["watcher"] = watcher
    container.extras.setdefault("is_leader", lambda: True)
    state: dict = {}

    def kick() -> None:
        """Deliver what this replica just decided, now (rows are leased, so replicas never
        send the same row; the periodic pass runs on the leader only)."""
        loop = state.get("loop")
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(container.dispatcher.wake)

    container.extras["kick"] = kick
    wiring.kick_outbox_after_actions(container, kick)
    container.dispatcher.on_delivered.append(lambda chat, channel: hub.publish(channel))

    def submit_then_kick() -> None:
        if container.submissions.submit_pending() or container.submissions.poll_reviews():
            kick()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        state["loop"] = container.extras["loop"] = loop
        # Request threads = what the database pool was sized for (bot.wiring.build); the
        # loop's own executor (asyncio.to_thread: storing chat events before their ack, the
        # outbox's database work) gets as many, not asyncio's default of cores + 4 (6 here,
        # where a burst of clicks queued behind the outbox).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        loop.set_default_executor(ThreadPoolExecutor(max_workers=settings.request_threads,
                                                     thread_name_prefix="loop-io"))
        hub.bind(loop)
        inbox = inbox_of(container)
        stop_watchers_on_exit_signal(watcher)
        jobs = [
            ("watch", threaded(watcher.run_once), settings.watch_interval_seconds),
            ("outbox", container.dispatcher.run_due, settings.outbox_interval_seconds),
            ("inbox", threaded(inbox.run_due), get_lease_settings().inbox_poll_seconds),
            ("submissions", threaded(submit_then_kick), settings.review_poll_seconds),
            *container.jobs,
        ]
        scheduler = build_scheduler(jobs, container.extras["is_leader"])
        if settings.scheduler_enabled:
            scheduler.start()
        for hook in container.extras.get("on_start", []):
            await hook()
        if server:
            settle_heap()
        log.info("PromoPilot started", extra={"url": settings.base_url,
                                              "database": container.db.dialect})
        try:
            yield
        finally:
            watcher.stop()  # first: a pass still running must not count this shutdown
            if scheduler.running:
                scheduler.shutdown(wait=False)
            for hook in container.extras.get("on_stop", []):
                await hook()
            inbox.stop()  # events still queued go back to the table for the next process

    app = FastAPI(title="PromoPilot", version="0.1.0", lifespan=lifespan,
                  description="Promotion declarations (促销申报) run from group chats.")
    app.state.container = container
    auth.install(app, settings, container.db)  # a credential on every request that acts
    errors.install(app, settings, html=dashboard.html_errors(container))  # one error shape
    app.include_router(api.build_router(container))
    app.include_router(login.build_router(container, console.TEMPLATES))
    app.include_router(console.build_router(container))
    if settings.sandbox_enabled:  # on in the demo; elsewhere only when asked for
        app.include_router(sandbox_router(container.db, settings.sandbox_review_seconds,
                                          writer=auth.sandbox_writer(settings)))
        if not settings.demo and settings.api_token is None:
            log.warning("sandbox enabled outside demo mode without PROMOPILOT_API_TOKEN: "
                        "its submitter has no credential to register with")
    wiring.install_plugins(container, app)
    dashboard.install(app, container)  # the board at /, calendar, charts, settings; /static

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        try:
            container.db.ping()
            db_ok = True
        except Exception as exc:  # noqa: BLE001
            log.error("database unreachable", extra={"error": repr(exc)[:300]})
            db_ok = False
        sources = [h.as_dict() for h in watcher.health.values()]
        body = {"status": "ok" if db_ok else "error", "database": db_ok,
                "leader": bool(db_ok and container.extras["is_leader"]()),
                "sources": sources, "chats": sorted(container.adapters),
                # notices not stored (unreadable or refused), per source in ``sources``
                "notices_rejected": sum(s.get("rejected", 0) for s in sources)}
        return JSONResponse(body, status_code=200 if db_ok else 503)

    return app
