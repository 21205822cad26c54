"""``promopilot platforms`` lists the JD, Taobao/Tmall (item activities and assisted big-sale
venues) and 抖店 connectors with what each can do; ``credentials set tmall`` asks for TOP's
fields, not the assisted connector's (it needs none); a misspelt sign method stops start-up."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from adapters.platforms.connector import config as connectors_config
from adapters.platforms.connector.credentials import CredentialStore

CONFIG = """connectors:
  - {name: jd-flagship, kind: jd, shop: flagship}
  - {name: tmall-flagship, kind: taobao, shop: flagship, options: {sign_method: hmac}}
  - {name: tmall-bigsale, kind: tmall_bigsale, shop: flagship}
  - {name: douyin-flagship, kind: douyin, shop: flagship}
"""


@pytest.fixture
def cli_env(db, monkeypatch, tmp_path):
    from bot.core.settings import get_settings

    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    monkeypatch.setenv("PROMOPILOT_LANGUAGE", "zh-CN")
    file = tmp_path / "connectors.yaml"
    file.write_text(CONFIG, "utf-8")
    monkeypatch.setenv("PROMOPILOT_CONNECTORS_FILE", str(file))
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def test_platforms_lists_the_new_connectors(cli_env):
    from bot.cli.main import app

    runner = CliRunner()
    shown = runner.invoke(app, ["platforms", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {r["name"]: r for r in json.loads(shown.stdout)}
    assert {n: (r["platform"], r["capability"]) for n, r in rows.items()} == {
        "jd-flagship": ("jd", "api_submit"), "tmall-flagship": ("tmall", "api_submit"),
        "tmall-bigsale": ("tmall", "assisted_submit"), "douyin-flagship": ("douyin", "api_submit")}
    assert rows["jd-flagship"]["operations"] == ["cancel", "enrol", "enrolment_status"]
    assert rows["jd-flagship"]["gateway"] == "https://api.jd.com/routerjson"
    assert rows["tmall-flagship"]["gateway"] == "https://eco.taobao.com/router/rest"
    assert rows["douyin-flagship"]["gateway"] == "https://openapi-fxg.jinritemai.com"
    assert "list_campaigns" in rows["douyin-flagship"]["operations"]
    assert rows["tmall-bigsale"]["operations"] == []
    plain = runner.invoke(app, ["platforms"])
    assert "tmall-bigsale" in plain.output and "assisted_submit" in plain.output

    typed = "12345678\ntop-secret\nat-1\nrt-1\n"
    done = runner.invoke(app, ["platforms", "credentials", "set", "tmall", "flagship"],
                         input=typed)
    assert done.exit_code == 0, done.output
    assert CredentialStore(cli_env).get("tmall", "flagship")["app_secret"] == "top-secret"


def test_a_misspelt_sign_method_stops_start_up(db, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    file = tmp_path / "connectors.yaml"
    file.write_text("connectors:\n  - {name: t, kind: taobao, shop: s,"
                    " options: {sign_method: sha1}}\n", "utf-8")
    with pytest.raises(ValueError, match="sign_method"):
        connectors_config.build(db, file)


def test_the_commented_examples_in_the_shipped_configuration_load(db, tmp_path, monkeypatch):
    """Every example in config/connectors.example.yaml, uncommented, is a valid connector."""
    monkeypatch.setenv("PROMOPILOT_SECRET_KEY", Fernet.generate_key().decode())
    shipped = (connectors_config.ROOT / "config" / "connectors.example.yaml").read_text("utf-8")
    lines = [line.replace("  # - ", "  - ", 1).replace("  #   ", "    ", 1)
             if line.startswith(("  # - ", "  #   ")) and not line.startswith("  #   # ")
             else line for line in shipped.splitlines()]
    file = tmp_path / "all.yaml"
    file.write_text("\n".join(lines) + "\n", "utf-8")
    built = connectors_config.build(db, file)
    assert [c.kind for c in built] == ["pdd", "temu", "jd", "taobao", "tmall_bigsale", "douyin"]
    bigsale = next(c for c in built if c.kind == "tmall_bigsale")
    assert bigsale.limit_per_buyer == 2 and "{campaign}" in bigsale.deep_link
