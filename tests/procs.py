"""The real app as a process on 127.0.0.1, for fault tests: start it, wait for things, kill it.

Each test gets its own database (a SQLite file, or a fresh PostgreSQL database dropped
afterwards) so processes started and killed by the test share nothing with the suite.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, PG_ADMIN_URL, free_port

PROMOPILOT = str(Path(sys.executable).parent / "promopilot")
QUIET = {  # nothing the test does not ask for: no sandbox, no demo data, no digests
    "PROMOPILOT_SANDBOX_ENABLED": "false", "PROMOPILOT_DEMO_ON_EMPTY": "false",
    "PROMOPILOT_DIGEST_TIME": "", "PROMOPILOT_QUIET_HOURS": "",
    "PROMOPILOT_WATCH_INTERVAL_SECONDS": "3600", "PROMOPILOT_REVIEW_POLL_SECONDS": "3600",
    "PROMOPILOT_OUTBOX_INTERVAL_SECONDS": "0.5", "PROMOPILOT_LEASE_SECONDS": "2",
    "PROMOPILOT_INBOX_POLL_SECONDS": "0.5", "PROMOPILOT_LOG_LEVEL": "INFO",
    "PROMOPILOT_SWEEP_INTERVAL_SECONDS": "3600",
}


def empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A database URL nobody else uses: a SQLite file or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    name = f"pp_fault_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable: {exc!r}")
        pytest.skip(f"PostgreSQL unreachable: {exc!r}"[:200])
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class App:
    """One ``promopilot run`` process."""

    def __init__(self, url: str, tmp: Path, name: str, env: dict[str, str],
                 migrate: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("PROMOPILOT_", "SLACK_", "FEISHU_", "DINGTALK_"))}
        base.update({**QUIET, "PROMOPILOT_DATABASE_URL": url,
                     "PROMOPILOT_PORT": str(self.port), **env})
        self.log = tmp / f"{name}.log"
        args = [PROMOPILOT, "run"] + ([] if migrate else ["--no-migrate"])
        self.proc = subprocess.Popen(args, cwd=tmp, env=base,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def ready(self, timeout: float = 40) -> App:
        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout, "the app to start", [self])
        return self

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def wait_for(check: Callable[[], object], timeout: float, what: str,
             apps: list[App] = ()) -> None:  # type: ignore[assignment]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        for app in apps:
            if app.proc.poll() is not None:
                raise AssertionError(f"app exited while waiting for {what}:\n{app.tail()}")
        time.sleep(0.1)
    tails = "\n---\n".join(app.tail() for app in apps)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")
