"""Settings of the data pool imports (``PROMOPILOT_*``), beside the feature that uses them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DataSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOPILOT_", env_file=".env", extra="ignore")

    headers_file: str = Field(
        default="", description="A team's own header names for imports (same shape as "
        "columns/headers.yaml): a path, or a file name in columns/; empty = none")


def get_data_settings() -> DataSettings:
    return DataSettings()  # read each time: a team edits its header file between imports
