"""Submission channels per platform (``policies/submission.yaml``) and their factory.

Channels: ``api`` (the platform's connector, e.g. the sandbox), ``http_json`` (generic
enrolment API), ``rpa`` (signed webhook to a robot), ``excel`` (bulk file hand-off),
``assisted`` (deep link + checklist). The order is the fallback chain.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from adapters.platforms.submitters.assisted import AssistedConfig, AssistedSubmitter
from adapters.platforms.submitters.base import NotConfigured
from adapters.platforms.submitters.excel import ExcelConfig, ExcelHandoff
from adapters.platforms.submitters.http_json import HttpJsonConfig, HttpJsonSubmitter
from adapters.platforms.submitters.rpa import RpaConfig, RpaWebhookSubmitter
from bot.core.ports import HUMAN_CHANNELS, Submitter
from storage.db import Database

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PATH = ROOT / "policies" / "submission.yaml"
CHANNELS = ("api", "http_json", "rpa", "excel", "assisted")
HUMAN = HUMAN_CHANNELS


class PlatformChannels(BaseModel):
    channels: list[str] = Field(default_factory=lambda: ["api", "excel"])
    http_json: HttpJsonConfig | None = None
    assisted: AssistedConfig = Field(default_factory=AssistedConfig)
    excel: ExcelConfig = Field(default_factory=ExcelConfig)


class SubmissionConfig(BaseModel):
    platforms: dict[str, PlatformChannels] = Field(default_factory=dict)
    rpa: RpaConfig = Field(default_factory=RpaConfig)

    def for_platform(self, platform: str) -> PlatformChannels:
        return self.platforms.get(platform) or self.platforms.get("*") or PlatformChannels()


def load(path: Path | str | None = None) -> SubmissionConfig:
    path = Path(path or os.environ.get("PROMOPILOT_SUBMISSION_CONFIG") or DEFAULT_PATH)
    if not path.exists():
        return SubmissionConfig()
    try:
        config = SubmissionConfig.model_validate(yaml.safe_load(path.read_text("utf-8")) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"submission config {path}: {exc}") from exc
    for code, entry in config.platforms.items():
        unknown = set(entry.channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"submission config {path}: {code} has unknown channels "
                             f"{sorted(unknown)}; use {', '.join(CHANNELS)}")
    return config


def factory(config: SubmissionConfig, api_for: Callable[[str], Submitter | None],
            callback_url: str, db: Database | None = None,
            assisted_for: Callable[[str], Submitter | None] | None = None
            ) -> Callable[[str, str], Submitter | None]:
    """``(channel, platform) → Submitter``, or None when the channel isn't set up there (the
    Excel hand-off needs ``db``: it writes the export's file for the declaration). A
    platform's assisted connector (``assisted_for``, e.g. Tmall's big-sale venues) is its
    ``assisted`` channel; else the configured deep link and checklist."""
    cache: dict[tuple[str, str], Submitter | None] = {}

    def make(channel: str, platform: str) -> Submitter | None:
        entry = config.for_platform(platform)
        if channel == "api":
            return api_for(platform)
        if channel == "http_json":
            if entry.http_json is None:
                return None
            token = os.environ.get(entry.http_json.token_env) if entry.http_json.token_env \
                else None
            return HttpJsonSubmitter(entry.http_json, token)
        if channel == "rpa":
            try:
                return RpaWebhookSubmitter(config.rpa, platform,
                                           os.environ.get(config.rpa.secret_env), callback_url)
            except NotConfigured:
                return None
        if channel == "excel":
            return ExcelHandoff(entry.excel, platform, db) if db is not None else None
        if channel == "assisted":
            found = assisted_for(platform) if assisted_for is not None else None
            return found or AssistedSubmitter(entry.assisted, platform)
        return None

    def get(channel: str, platform: str) -> Submitter | None:
        if (channel, platform) not in cache:
            cache[(channel, platform)] = make(channel, platform)
        return cache[(channel, platform)]

    return get


class ConfiguredChannels:
    """``SubmissionChannels`` from the submission config: the chain per platform and the
    submitter of each channel (built once per channel and platform)."""

    def __init__(self, config: SubmissionConfig, api_for: Callable[[str], Submitter | None],
                 callback_url: str = "", db: Database | None = None,
                 assisted_for: Callable[[str], Submitter | None] | None = None) -> None:
        self.config = config
        self.get = factory(config, api_for, callback_url, db, assisted_for)

    def chain(self, platform: str) -> list[str]:
        return list(self.config.for_platform(platform).channels)
