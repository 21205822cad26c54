"""Shop credentials: encrypted at rest, rotated with MultiFernet (re-sealed on read), read
per call through a short cache (no restart), set from prompts by the CLI, never logged;
``promopilot platforms`` shows each connector's capabilities and health."""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select
from typer.testing import CliRunner

from adapters.platforms.connector.credentials import (
    CredentialStore,
    SealedWithUnknownKey,
    SecretBox,
)
from bot.core.logs import StructuredFormatter
from storage.models_connectors import ConnectorState, PlatformCredential
from storage.types import utcnow


def stored(db) -> str:
    with db.session() as s:
        return s.exec(select(PlatformCredential)).one().secret


def test_rotation_reseals_with_the_newest_key_on_read(db, monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", old)
    CredentialStore(db).set("pdd", "s1", {"client_secret": "cs-1", "access_token": "at-1"})
    sealed_old = stored(db)
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", f"{new},{old}")  # the new key first
    assert CredentialStore(db).get("pdd", "s1")["client_secret"] == "cs-1"
    assert stored(db) != sealed_old
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", new)  # the old key dropped: still readable
    assert CredentialStore(db).get("pdd", "s1")["access_token"] == "at-1"
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(SealedWithUnknownKey):
        CredentialStore(db).get("pdd", "s1")


def test_a_running_server_sees_new_credentials_after_the_short_cache(db, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    now = [0.0]
    server = CredentialStore(db, cache_seconds=30, clock=lambda: now[0])
    CredentialStore(db).set("pdd", "s1", {"access_token": "first"})
    assert server.get("pdd", "s1")["access_token"] == "first"
    CredentialStore(db).set("pdd", "s1", {"access_token": "second"})  # the CLI, elsewhere
    assert server.get("pdd", "s1")["access_token"] == "first"  # cached …
    now[0] = 31.0
    assert server.get("pdd", "s1")["access_token"] == "second"  # … for 30 s only


def test_no_key_is_a_clear_refusal(monkeypatch):
    monkeypatch.delenv("PROMOPILOT_SECRET_KEY", raising=False)
    with pytest.raises(Exception, match="PROMOPILOT_SECRET_KEY"):
        SecretBox()


def test_secrets_never_reach_the_logs():
    token = SecretBox(Fernet.generate_key().decode()).seal({"client_secret": "x"})
    record = logging.makeLogRecord({"msg": f"POST https://gw/api?access_token=at-123&x=1 {token}",
                                    "client_secret": "cs-9", "levelname": "INFO"})
    line = StructuredFormatter(as_json=True).format(record)
    assert "at-123" not in line and token not in line and "cs-9" not in line


@pytest.fixture
def cli_env(db, monkeypatch, tmp_path):
    from bot.core.settings import get_settings

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", key)
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    monkeypatch.setenv("PROMOPILOT_LANGUAGE", "zh-CN")
    config = tmp_path / "connectors.yaml"
    config.write_text("connectors:\n  - {name: pdd-main, kind: pdd, shop: main,"
                      " gateway: 'http://127.0.0.1:9/api/router'}\n", "utf-8")
    monkeypatch.setenv("PROMOPILOT_CONNECTORS_FILE", str(config))
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def test_cli_sets_credentials_from_prompts_and_lists_health(cli_env):
    from bot.cli.main import app

    runner = CliRunner()
    typed = "cid-1\ncsecret-1\nat-1\nrt-1\n"
    done = runner.invoke(app, ["platforms", "credentials", "set", "pdd", "main"], input=typed)
    assert done.exit_code == 0, done.output
    assert "csecret-1" not in done.output and "at-1" not in done.output  # hidden prompts
    assert "已加密保存 拼多多/main 的凭证" in done.output
    assert CredentialStore(cli_env).get("pdd", "main")["client_secret"] == "csecret-1"
    assert "csecret-1" not in stored(cli_env)
    listed = runner.invoke(app, ["platforms", "credentials", "list"])
    assert "client_secret" in listed.output and "csecret-1" not in listed.output

    with cli_env.session() as s:  # what the server recorded about its last calls
        s.add(ConnectorState(name="pdd-main", platform="pdd", shop="main", ok=False,
                             last_call="enrol", last_call_at=utcnow(), calls=3, failures=1,
                             last_error="…", last_error_key="conn.err.rate_limited",
                             last_error_params={"platform": "pdd", "code": "70031",
                                                "detail": "slow down"},
                             last_error_at=utcnow()))
    shown = runner.invoke(app, ["platforms", "--json"])
    row = json.loads(shown.stdout)[0]
    assert row["capability"] == "api_submit" and row["credentials"] is True
    assert set(row["operations"]) == {"list_campaigns", "eligible_products", "enrol",
                                      "enrolment_status", "cancel"}
    assert row["last_call"] == "enrol" and row["failures"] == 1
    assert row["last_error"].startswith("拼多多 限流")  # in the reader's language
    plain = runner.invoke(app, ["platforms"])
    assert plain.exit_code == 1 and "FAIL" in plain.output and "pdd-main" in plain.output


def test_cli_without_a_key_says_how_to_make_one(cli_env, monkeypatch):
    from bot.cli.main import app

    monkeypatch.delenv("PROMOPILOT_SECRET_KEY")
    done = CliRunner().invoke(app, ["platforms", "credentials", "set", "pdd", "main"])
    assert done.exit_code == 2
    assert "PROMOPILOT_SECRET_KEY" in done.output and "Fernet.generate_key" in done.output
