"""Settings of drafting and the declaration card (``PROMOPILOT_*``), beside the feature."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DraftSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOPILOT_", env_file=".env", extra="ignore")

    draft_max_lines: int = Field(
        default=50, ge=1, le=5000,
        description="Most SKUs one draft takes from the data pool (the best margins are kept; "
                    "the card says how many were left out and why)")
    card_lines: int = Field(
        default=10, ge=1, le=30,
        description="Declaration lines shown on a chat card; the rest are on the console page "
                    "and in the Excel file")


@lru_cache
def get_draft_settings() -> DraftSettings:
    return DraftSettings()
