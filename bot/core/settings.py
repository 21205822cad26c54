"""Configuration from the environment (``PROMOPILOT_*``) and an optional ``.env`` file.

Chat platforms keep their own settings classes beside their adapters so that one
platform's variables never leak into another's module.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PROMOPILOT_", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = f"sqlite:///{ROOT / 'var' / 'promopilot.db'}"
    demo: bool = Field(
        default=False,
        description="Local demo: console, API and sandbox open to anyone who reaches the port, "
                    "with the console's 'Acting as' picker (make run sets it)",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="The team's integration token (Authorization: Bearer) for /api, the console "
                    "API and the sandbox; may act as any named user",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs console login cookies; unset = generated once into var/session_secret "
                    "(set it when several replicas serve the console)",
    )
    public_url: str = Field(
        default="", description="Base URL people reach the console at (links on cards)"
    )
    timezone: str = "Asia/Shanghai"
    language: str = Field(default="zh-CN", description="Default language: zh-CN or en")
    default_team: str = "default"
    sandbox_enabled: bool | None = Field(
        default=None, description="Serve and watch the sandbox marketplace; unset = on in demo mode only"
    )
    sandbox_review_seconds: float = Field(
        default=3.0, description="How long the sandbox marketplace takes to review"
    )
    watch_interval_seconds: int = 60
    outbox_interval_seconds: float = 2.0
    review_poll_seconds: float = 5.0
    scheduler_enabled: bool = True
    request_threads: int = Field(
        default=16, ge=1, description="Requests worked on at once per process (each may hold "
        "a database connection); the PostgreSQL pool holds these plus the inbox workers")
    demo_on_empty: bool | None = Field(
        default=None, description="Seed demo data on first start; unset = in demo mode only")
    log_json: bool = False
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _sandbox_follows_demo(self) -> Settings:
        if self.sandbox_enabled is None:
            self.sandbox_enabled = self.demo
        if self.demo_on_empty is None:  # demo people have no passwords: seed them for the demo
            self.demo_on_empty = self.demo
        return self

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
