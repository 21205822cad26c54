"""Slack settings under Slack's own variable names, kept beside the adapter so no other
module sees the bot token or signing secret."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    bot_token: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("SLACK_BOT_TOKEN", "bot_token"))
    signing_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "signing_secret"))
    app_token: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("SLACK_APP_TOKEN", "app_token"),
        description="xapp-… token: Socket Mode (no public URL needed)")
    api_url: str = Field(
        default=SLACK_API, validation_alias=AliasChoices("PROMOPILOT_SLACK_API_URL", "api_url"),
        description="Base URL of the Web API (proxies, tests)")
    posts_per_second: float = Field(
        default=1.0, validation_alias=AliasChoices("PROMOPILOT_SLACK_POSTS_PER_SECOND",
                                                   "posts_per_second"),
        description="Per-channel posting rate (Slack allows about one message a second)")
    burst: int = 4
    max_inline_wait_seconds: float = Field(
        default=10.0, description="A 429 asking to wait longer goes back to the outbox")
    timeout_seconds: int = 10

    @property
    def configured(self) -> bool:
        return bool(self.bot_token.get_secret_value() and self.signing_secret.get_secret_value())

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token.get_secret_value())

    @property
    def base_url(self) -> str:
        url = self.api_url.strip() or SLACK_API
        return url if url.endswith("/") else url + "/"
