"""The deployment files (Dockerfile, docker-compose.yml, deploy/) name things that exist.

There is no Docker engine where these tests run, so the image is never built here; what can
be checked is checked: every ``promopilot`` command line in them parses with the real CLI,
every path the Dockerfile copies exists and every directory the app reads at run time is
copied, the compose file has two app replicas behind the proxy on PostgreSQL with the shared
secrets required, the Caddyfile proxies to that service and port (and ``caddy adapt``
accepts it when Caddy is installed), the systemd unit verifies with ``systemd-analyze``
when that is installed, and the example environment names only real settings.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.exceptions import TyperException

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text()
UNIT = (ROOT / "deploy" / "promopilot.service").read_text()
ENV_EXAMPLE = (ROOT / "deploy" / "env.example").read_text()
DEV_ONLY = {"tests", "bench", "docs", "deploy", "var"}  # not needed in the image


def run_command():
    from typer.main import get_command

    from bot.cli.main import app

    return get_command(app).commands["run"]  # type: ignore[attr-defined]


def check_cli(argv: list[str]) -> None:
    """``argv`` is ``promopilot run …`` with options the real command accepts."""
    assert Path(argv[0]).name == "promopilot" and argv[1] == "run", argv
    run_command().make_context("run", list(argv[2:]))  # raises on an unknown/invalid option


def dockerfile_instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines()
            if line.split(None, 1)[:1] == [name]]


def test_run_help_lists_the_flags_the_deploy_files_use():
    from typer.testing import CliRunner

    from bot.cli.main import app

    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for flag in ("--workers", "--migrate", "--no-migrate", "--host", "--port"):
        assert flag in result.output, flag


def test_every_promopilot_command_line_in_the_deploy_files_parses():
    cmd = json.loads(dockerfile_instructions("CMD")[-1])
    check_cli(cmd)
    check_cli(COMPOSE["services"]["app"]["command"])
    exec_start = next(line.split("=", 1)[1] for line in UNIT.splitlines()
                      if line.startswith("ExecStart="))
    check_cli(shlex.split(exec_start))
    for wrong in (["--workres", "2"], ["--workers", "0"], ["--workers", "many"]):
        with pytest.raises(TyperException):  # the check refuses what the CLI refuses
            check_cli(["promopilot", "run", *wrong])


def test_dockerfile_builds_a_slim_locked_non_root_image_of_what_exists():
    bases = dockerfile_instructions("FROM")
    assert re.match(r"python:\$\{PYTHON_VERSION\}-slim", bases[-1]) and "ARG PYTHON_VERSION=3.1" \
        in DOCKERFILE
    syncs = [r for r in dockerfile_instructions("RUN") if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)
    copied = set()
    for args in dockerfile_instructions("COPY"):
        if args.startswith("--from="):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            copied.add(source.split("/")[0])
    needed = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
              and p.name not in DEV_ONLY}
    assert needed <= copied, f"read at run time but not in the image: {needed - copied}"
    user = dockerfile_instructions("USER")[-1].strip()
    assert user not in ("root", "0") and re.search(rf"useradd .*\b{user}\b", DOCKERFILE)
    assert "/healthz" in dockerfile_instructions("HEALTHCHECK")[-1]
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", "var", ".env", ".git"} <= ignored
    assert not ignored & copied, "the Dockerfile copies what .dockerignore leaves out"
    lock = (ROOT / "uv.lock").read_text()
    assert lock.startswith("version = 1"), "uv.lock format changed: check UV_VERSION"


def test_compose_runs_two_replicas_on_postgres_behind_the_proxy_with_shared_secrets():
    services = COMPOSE["services"]
    app, proxy, db = services["app"], services["proxy"], services["postgres"]
    assert app["deploy"]["replicas"] >= 2
    assert (ROOT / app["build"] / "Dockerfile").is_file()
    env = app["environment"]
    url = env["PROMOPILOT_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert db["image"].startswith("postgres:")
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    for shared in ("PROMOPILOT_SESSION_SECRET", "PROMOPILOT_API_TOKEN"):  # never per container
        assert re.fullmatch(rf"\$\{{{shared}:\?[^}}]+\}}", env[shared]), shared
    assert "ports" not in app, "the replicas are reached through the proxy only"
    assert any("/healthz" in part for part in app["healthcheck"]["test"])
    assert f":{env['PROMOPILOT_PORT']}/healthz" in " ".join(app["healthcheck"]["test"])
    assert any(v.endswith(":/app/var") for v in app["volumes"]), "hand-offs shared by replicas"
    mounted = [v.split(":")[0] for v in proxy["volumes"] if v.startswith("./")]
    assert mounted and all((ROOT / m).is_file() for m in mounted)
    assert proxy["image"].startswith("caddy:") and "./deploy/Caddyfile" in mounted
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
             if not v.startswith(".")}
    assert named <= set(COMPOSE["volumes"])


def test_caddyfile_proxies_to_every_app_replica():
    app_port = COMPOSE["services"]["app"]["environment"]["PROMOPILOT_PORT"]
    dynamic = re.search(r"dynamic a \{([^}]*)\}", CADDYFILE)
    assert dynamic, "upstreams found by DNS, so --scale needs no edit"
    assert re.search(r"\bname app\b", dynamic.group(1))
    assert re.search(rf"\bport {app_port}\b", dynamic.group(1))
    assert "flush_interval -1" in CADDYFILE  # server-sent events pass at once
    if shutil.which("caddy") is None:
        pytest.skip("caddy not installed: the Caddyfile's syntax was not checked")
    adapted = subprocess.run(["caddy", "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"),
                              "--adapter", "caddyfile"], capture_output=True, text=True,
                             env={"PROMOPILOT_SITE": ":80", "PATH": "/usr/bin:/bin"},
                             timeout=60)
    assert adapted.returncode == 0, adapted.stderr
    upstreams = json.loads(adapted.stdout)["apps"]["http"]["servers"]["srv0"]["routes"][0][
        "handle"][-1]["dynamic_upstreams"]
    assert upstreams == {"source": "a", "name": "app", "port": app_port,
                         "refresh": 5_000_000_000}


def test_systemd_unit_verifies(tmp_path):
    assert re.search(r"^User=(?!root)\w+", UNIT, re.M)
    assert "EnvironmentFile=" in UNIT and "KillMode=mixed" in UNIT
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    here = Path(sys.executable).parent / "promopilot"
    unit = UNIT.replace("/opt/promopilot/.venv/bin/promopilot", str(here))
    path = tmp_path / "promopilot.service"
    path.write_text(unit)
    checked = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_example_environment_names_real_settings_and_every_required_secret():
    from bot.core.settings import Settings

    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required <= names, f"required by compose, missing from env.example: {required - names}"
    settings = {f"PROMOPILOT_{f.upper()}" for f in Settings.model_fields}
    from adapters.chat.dingtalk.settings import DingTalkSettings
    from adapters.chat.feishu.settings import FeishuSettings
    from adapters.chat.slack.settings import SlackSettings

    for chat in (SlackSettings, FeishuSettings, DingTalkSettings):  # their own PROMOPILOT_*
        for field in chat.model_fields.values():
            alias = field.validation_alias
            settings |= {c for c in getattr(alias, "choices", []) if isinstance(c, str)}
    known = settings | {"PROMOPILOT_SECRET_KEY", "PROMOPILOT_WORKERS", "PROMOPILOT_SITE"}
    ours = {n for n in names if n.startswith("PROMOPILOT_")}
    assert ours <= known, f"not a PromoPilot setting: {ours - known}"
