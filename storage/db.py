"""Engine and sessions. SQLite gets WAL and a busy timeout so concurrent clicks queue
instead of failing; PostgreSQL gets a pool sized for the threads that use it (the app passes
its request threads plus inbox workers: a thread never waits for a connection)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Insert, Row, Table, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
READ_ONLY = "promopilot_read_only"


def make_engine(url: str, **kw: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:  # one in-memory database per connection: no pool to size
            kw.pop("pool_size", None)
            kw.pop("max_overflow", None)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kw
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy own transactions; BEGIN IMMEDIATE makes writers queue.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A reader (``Database.read``) does not queue behind the writers: WAL lets it
            # read the last commit while one writes.
            read = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    if "poolclass" not in kw:  # the app passes its size: request threads + inbox workers
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 8)
    engine = create_engine(url, **kw)
    _ping_when_idle(engine)
    return engine


PING_AFTER = 5.0  # seconds a pooled connection rested before it is pinged at checkout


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping`` for connections that rested: a database restart or an idle timeout
    shows up on the next checkout, without a round trip on every checkout of a busy pool
    (``pool_pre_ping=True`` pinged each one: two of a claim's sixteen round trips)."""

    @event.listens_for(engine, "checkin")
    def _rested(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            if engine.dialect.do_ping(dbapi_conn):
                return
        except Exception as exc:  # noqa: BLE001 - any failure means: take another one
            raise DisconnectionError(repr(exc)[:200]) from exc
        raise DisconnectionError("ping failed")


class Database:
    """Owns the engine; ``session()`` is one unit of work (commit on success)."""

    _shared: dict[str, Database] = {}
    _shared_lock = threading.Lock()
    _by_engine: weakref.WeakValueDictionary[int, Database] = weakref.WeakValueDictionary()

    def __init__(self, url: str, **kw: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kw)
        self._reader: Engine | None = None
        # SQLite has one writer at a time; threads of this process queue for it here and are
        # woken the moment it is free, instead of in SQLite's busy handler, which sleeps up
        # to 100 ms between tries (seconds of p99 under a burst of clicks). Other processes
        # still queue in the busy handler. Re-entrant: a thread's nested session behaves as
        # it did without the lock.
        self._writer = threading.RLock() if self.dialect == "sqlite" else None
        Database._by_engine[id(self.engine)] = self

    @classmethod
    def of(cls, engine: Any) -> Database | None:
        """The Database owning ``engine`` (a session's bind), so work that only has a session
        (a listener, a background thread) can still queue for SQLite's writer here."""
        found = cls._by_engine.get(id(engine))
        return found if found is not None and found.engine is engine else None

    @classmethod
    def shared(cls, url: str, **kw: Any) -> Database:
        """One engine (one connection pool) per URL per process, however many apps use it;
        ``kw`` (e.g. ``pool_size``) applies when this call creates it."""
        with cls._shared_lock:
            if url not in cls._shared:
                cls._shared[url] = cls(url, **kw)
            return cls._shared[url]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        if self._writer is not None:
            self._writer.acquire()
        try:
            with _unit_of_work(self.engine) as session:
                yield session
        finally:
            if self._writer is not None:
                self._writer.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads: on SQLite it does not take the write lock
        (``BEGIN`` instead of ``BEGIN IMMEDIATE``), so lookups never wait for writers; on
        PostgreSQL it runs in autocommit (no ``BEGIN``/``COMMIT`` round trips: each statement
        sees the latest commit, which is what a lookup wants)."""
        with _unit_of_work(self.reader) as session:
            yield session

    @contextmanager
    def scan(self) -> Iterator[Session]:
        """A long read that streams its rows (``yield_per``), e.g. an export: a transaction
        on PostgreSQL (its server-side cursors need one), and on SQLite ``read``'s plain
        ``BEGIN`` — never the write lock, which a slow download would hold for minutes."""
        engine = self.engine.execution_options(**{READ_ONLY: True}) \
            if self.dialect == "sqlite" else self.engine
        with _unit_of_work(engine) as session:
            yield session

    @property
    def reader(self) -> Engine:
        """The engine ``read`` and ``first`` use: no write lock, no transaction round trips."""
        if self._reader is None:
            self._reader = self.engine.execution_options(**{READ_ONLY: True}) \
                if self.dialect == "sqlite" else \
                self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._reader

    def first(self, statement: Executable, params: dict) -> Row | None:
        """The first row of one compiled Core read, on a pooled connection with no session
        (as ``read``): the person behind every request is found here, where a session's
        set-up and commit cost more than the query."""
        with self.reader.connect() as conn:
            return conn.execute(statement, params).first()

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _unit_of_work(bind: Engine) -> Iterator[Session]:
    """One session: committed when the block ends, rolled back when it raises."""
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def connection(session: Session) -> Connection:
    """The session's connection, for a compiled Core statement on a hot path: it skips the
    ORM's execute machinery (a third of a claim's CPU), after the autoflush
    ``session.execute`` would have done, so pending objects still reach the database first."""
    if session.autoflush:
        session.flush()
    return session.connection()


@contextmanager
def one_at_a_time(db: Database, key: int) -> Iterator[None]:
    """Replicas started together run this block one after the other (a PostgreSQL advisory
    lock on its own connection); the later ones then find the work done. SQLite's writers
    queue anyway."""
    if db.dialect != "postgresql":
        yield
        return
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@cache
def insert_if_new(table: Table, key: str, returning: str, dialect: str) -> Insert:
    """``INSERT … ON CONFLICT (key) DO NOTHING RETURNING returning`` for this dialect,
    built once per process (its rows go in as parameters, so it is compiled once too): a
    row already there comes back as no row, not as an exception, and on PostgreSQL a racing
    insert of the same key is waited for, then answered."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(
        table.c[returning])


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "-1") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
