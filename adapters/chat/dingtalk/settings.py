"""DingTalk's own settings, read from the variables DingTalk's docs and SDK already use.

``DINGTALK_*`` names match the developer console; ``PROMOPILOT_DINGTALK_*`` are ours (the
open-API base URL exists so tests and private deployments can point elsewhere).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

WEBHOOK_CHANNEL = "webhook"  # the channel id that means "the custom robot's group"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class DingTalkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    client_id: str = Field(default="", validation_alias=_env("DINGTALK_CLIENT_ID"))
    client_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("DINGTALK_CLIENT_SECRET"))
    robot_code: str = Field(default="", validation_alias=_env("DINGTALK_ROBOT_CODE"),
                            description="Defaults to the client id (internal apps)")
    card_template_id: str = Field(
        default="", validation_alias=_env("DINGTALK_CARD_TEMPLATE_ID"),
        description="Interactive card template; unset = ActionCard fallback with links")
    webhook_url: SecretStr | None = Field(default=None,
                                          validation_alias=_env("DINGTALK_WEBHOOK_URL"))
    webhook_secret: SecretStr | None = Field(default=None,
                                             validation_alias=_env("DINGTALK_WEBHOOK_SECRET"))
    webhook_platforms: str = Field(
        default="*", validation_alias=_env("PROMOPILOT_DINGTALK_WEBHOOK_PLATFORMS"),
        description="Marketplaces whose notices go to the webhook group (comma list or *)")
    webhook_per_window: int = Field(
        default=20, validation_alias=_env("PROMOPILOT_DINGTALK_WEBHOOK_PER_WINDOW"))
    webhook_window_seconds: float = Field(
        default=60.0, validation_alias=_env("PROMOPILOT_DINGTALK_WEBHOOK_WINDOW_SECONDS"))
    api_url: str = Field(default="https://api.dingtalk.com",
                         validation_alias=_env("PROMOPILOT_DINGTALK_API_URL"))
    stream_enabled: bool = Field(default=True,
                                 validation_alias=_env("PROMOPILOT_DINGTALK_STREAM"))

    @property
    def has_app(self) -> bool:
        return bool(self.client_id and self.client_secret
                    and self.client_secret.get_secret_value())

    @property
    def has_webhook(self) -> bool:
        return bool(self.webhook_url and self.webhook_url.get_secret_value())

    @property
    def robot(self) -> str:
        return self.robot_code or self.client_id

    @property
    def base(self) -> str:
        return self.api_url.rstrip("/")
