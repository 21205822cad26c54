"""Feishu/Lark settings: the open platform's own variable names, plus our domain switch.

Kept beside the adapter so no other module sees Feishu secrets. ``domain`` picks Feishu
(China), Lark (international) or a local fake open API for tests.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

FEISHU = "https://open.feishu.cn"
LARK = "https://open.larksuite.com"
_SHORT = {"feishu": FEISHU, "lark": LARK}


class FeishuSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    app_id: str = Field(default="", validation_alias=AliasChoices("FEISHU_APP_ID", "app_id"))
    app_secret: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("FEISHU_APP_SECRET", "app_secret"))
    verification_token: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("FEISHU_VERIFICATION_TOKEN", "verification_token"))
    encrypt_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("FEISHU_ENCRYPT_KEY", "encrypt_key"))
    domain: str = Field(
        default=FEISHU,
        validation_alias=AliasChoices("PROMOPILOT_FEISHU_DOMAIN", "domain"),
        description="feishu, lark, or an open-platform base URL (https; http only on loopback)")
    mode: str = Field(
        default="auto", validation_alias=AliasChoices("PROMOPILOT_FEISHU_MODE", "mode"),
        description="auto (websocket unless PROMOPILOT_PUBLIC_URL is set), http, websocket")
    signature_window_seconds: int = Field(
        default=300, validation_alias=AliasChoices("PROMOPILOT_FEISHU_SIGNATURE_WINDOW",
                                                   "signature_window_seconds"))
    app_calls_per_second: float = Field(
        default=45.0, gt=0, validation_alias=AliasChoices(
            "PROMOPILOT_FEISHU_APP_CALLS_PER_SECOND", "app_calls_per_second"),
        description="IM calls a second for the whole app (Feishu allows 50), shared by this "
                    "host's worker processes; with several replicas give each its share")
    timeout_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.app_id and self.app_secret.get_secret_value())

    def app_interval(self, processes: int) -> float:
        """Seconds between two IM calls of one process, when ``processes`` share the app."""
        return max(processes, 1) / self.app_calls_per_second

    @property
    def base_url(self) -> str:
        return _SHORT.get(self.domain.strip().lower(), self.domain.strip().rstrip("/"))

    def receive_mode(self, public_url: str) -> str:
        """``http`` when Feishu can reach us (a public URL), else the long connection."""
        if self.mode in ("http", "websocket"):
            return self.mode
        return "http" if public_url else "websocket"
