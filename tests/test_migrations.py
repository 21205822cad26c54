"""Migrations go up and down cleanly on SQLite and PostgreSQL (``promopilot db …``)."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import IN_CI, PG_ADMIN_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    name = f"pp_mig_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable: {exc!r}")
        pytest.skip("PostgreSQL unreachable")
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_cli_upgrade_downgrade_upgrade(empty_url, monkeypatch):
    from bot.cli.main import app
    from bot.core.settings import get_settings

    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", empty_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        up = runner.invoke(app, ["db", "upgrade"])
        assert up.exit_code == 0, up.output
        assert {"tasks", "campaigns", "outbox", "reminder_log"} <= tables(empty_url)
        down = runner.invoke(app, ["db", "downgrade", "base"])
        assert down.exit_code == 0, down.output
        assert tables(empty_url) <= {"alembic_version"}
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        assert "tasks" in tables(empty_url)
    finally:
        get_settings.cache_clear()
