"""``promopilot run --workers N``: several server processes on one port.

On PostgreSQL: N worker processes answer on the one port, each built its own app, exactly
one holds the leader lock (so the periodic jobs run once), a worker killed outright is
replaced and the lock is held by one process again, and SIGTERM stops them all. On SQLite
more than one is refused before anything is touched, with the reason, in zh-CN and en.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.procs import App, empty_database, wait_for


@pytest.fixture
def pg(tmp_path: Path):
    yield from empty_database("postgresql", tmp_path)


@pytest.fixture(autouse=True)
def fresh_settings():
    """``run`` reads the settings anew; the next test must not see this one's."""
    from bot.core.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes: the parent's children started by multiprocessing.spawn."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def leader_locks(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            )).scalar())
    finally:
        engine.dispose()


def test_workers_share_the_port_and_one_holds_the_leader_lock(pg, tmp_path):
    app = App(pg, tmp_path, "workers", {"PROMOPILOT_WORKERS": "2"}, migrate=True)
    try:
        app.ready(timeout=120)
        wait_for(lambda: len(workers_of(app.proc.pid)) == 2, 60, "two workers", [app])
        wait_for(lambda: app.tail(100_000).count("PromoPilot started") == 2, 60,
                 "both workers to start", [app])
        wait_for(lambda: leader_locks(pg) == 1, 30, "a leader", [app])
        answers = [httpx.get(f"{app.url}/healthz", headers={"Connection": "close"},
                             timeout=5).json() for _ in range(10)]
        assert all(a["status"] == "ok" and a["database"] for a in answers)
        first = set(workers_of(app.proc.pid))
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)  # a worker dies outright: uvicorn starts another
        wait_for(lambda: len(workers_of(app.proc.pid)) == 2
                 and set(workers_of(app.proc.pid)) != first, 90, "a new worker", [app])
        wait_for(lambda: leader_locks(pg) == 1, 60, "one leader again", [app])
        assert httpx.get(f"{app.url}/healthz", timeout=5).status_code == 200
        assert app.tail(200_000).count("became leader") <= 2
        workers = workers_of(app.proc.pid)
    finally:
        code = app.stop(timeout=40)
    assert code == 0, app.tail()
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "a worker outlived stop"
    assert leader_locks(pg) == 0


@pytest.mark.parametrize("lang,words", [("en", "needs PostgreSQL"),
                                        ("zh-CN", "需要 PostgreSQL")])
def test_more_than_one_worker_on_sqlite_is_refused_before_anything_is_touched(
        tmp_path, lang, words):
    from bot.cli.main import app

    database = tmp_path / "promopilot.db"
    result = CliRunner().invoke(app, ["run", "--workers", "2"], env={
        "PROMOPILOT_DATABASE_URL": f"sqlite:///{database}", "PROMOPILOT_LANGUAGE": lang})
    assert result.exit_code == 2
    said = result.output + (getattr(result, "stderr", "") or "")
    assert words in said and "--workers 1" in said, said
    assert not database.exists(), "migrated although it refused"


def test_workers_are_checked_like_any_option(tmp_path):
    from bot.cli.main import app

    for wrong in ("0", "33", "many"):
        result = CliRunner().invoke(app, ["run", "--workers", wrong], env={
            "PROMOPILOT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
        assert result.exit_code == 2, (wrong, result.output)
    assert not (tmp_path / "x.db").exists()
