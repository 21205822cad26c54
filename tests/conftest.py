"""Shared fixtures. Storage-touching tests run on SQLite and PostgreSQL (``db`` is
parametrised); each run makes its own PostgreSQL database and drops it afterwards. With
CI=true an unreachable PostgreSQL fails the run instead of skipping."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

import bot.wiring  # noqa: F401  (every feature registers its actions and cards)
import storage.all_models  # noqa: F401
from bot.core import timefmt
from bot.core.settings import Settings
from storage.db import Database, upgrade

PG_ADMIN_URL = os.environ.get("PROMOPILOT_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
timefmt.set_strict(True)  # a naive datetime reaching a message fails the test (prod: UTC + warning)


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"pp_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        _pg_unavailable(repr(exc)[:200])
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "promopilot.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


_engines: dict[str, Database] = {}  # the shared engines used by tests (disposed at the end)


def _clean(db: Database) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    if db.dialect == "postgresql":
        statement = text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                         + " RESTART IDENTITY CASCADE")
        for attempt in range(5):  # a previous test's background thread may still hold a lock
            try:
                with db.engine.begin() as conn:
                    conn.execute(statement)
                return
            except OperationalError as exc:
                if "deadlock" not in str(exc).lower() or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    with db.engine.begin() as conn:
        if db.dialect != "postgresql":
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            has_sequence = conn.execute(text(
                "SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
            if has_sequence:  # restart ids so every test sees task #1 first
                conn.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A clean, migrated database: once on SQLite, once on PostgreSQL."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    if url not in _engines:
        _engines[url] = Database.shared(url)
    database = _engines[url]
    _clean(database)
    yield database


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for database in _engines.values():
        database.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(db: Database) -> Settings:
    """The local demo (open console with its picker, sandbox on), as most tests drive it;
    tests/test_web_auth.py turns demo mode off to check the credentials."""
    return Settings(database_url=db.url, port=free_port(), scheduler_enabled=False,
                    sandbox_review_seconds=0, demo_on_empty=False, api_token=None,
                    demo=True, session_secret="test-session-secret", _env_file=None)


@pytest.fixture
def seeded(db: Database, settings: Settings) -> Database:
    """Demo people, products, channels and notices."""
    from bot.demo import seed

    seed(db, settings)
    return db


class LiveServer:
    """The real app under uvicorn on a free port, in a thread."""

    def __init__(self, app, settings: Settings) -> None:
        import uvicorn

        self.settings = settings
        self.app = app
        self.container = app.state.container
        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 15
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.container.db.dispose()  # give PostgreSQL its connections back

    def drain(self) -> None:
        """Deliver every pending outbox message now (deterministic, instead of waiting)."""
        import asyncio

        loop = self.container.extras["loop"]
        while asyncio.run_coroutine_threadsafe(
                self.container.dispatcher.run_due(), loop).result(timeout=30):
            pass



@pytest.fixture
def live(settings: Settings, seeded: Database) -> Iterator[LiveServer]:
    from bot.web.app import create_app

    app = create_app(settings)
    server = LiveServer(app, settings).start()
    yield server
    server.stop()
