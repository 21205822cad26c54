"""``sources.yaml``: which notice sources to watch, how often, and where their notices go.

Validated with pydantic so a typo is a clear error at start-up, not a silent gap in
coverage. ``${VAR}`` in a value is read from the environment (tokens stay out of the file).
See ``config/sources.example.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from adapters.common.yaml_config import duplicate_names, load_model
from adapters.platforms.file_drop import FileDropSource
from adapters.platforms.html_list import DEFAULT_SELECTORS, HtmlListSource
from adapters.platforms.http_json import SANDBOX_MAPPING, HttpJsonSource
from adapters.platforms.rss import RssSource
from bot.core.ports import NoticeSource

Kind = Literal["http_json", "rss", "html_list", "file_drop", "sandbox"]


class SourcesConfigError(ValueError):
    pass


class Defaults(BaseModel):
    interval: float = Field(300, ge=10)
    timeout: float = Field(10, gt=0, le=120)
    retries: int = Field(3, ge=1, le=10)
    alert_after: int = Field(3, ge=1)


class SourceSpec(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    platform: str = Field(min_length=1, max_length=32)
    kind: Kind
    url: str | None = None
    folder: str | None = None
    interval: float | None = Field(None, ge=10)
    timeout: float | None = Field(None, gt=0, le=120)
    retries: int | None = Field(None, ge=1, le=10)
    alert_after: int | None = Field(None, ge=1)
    mapping: dict[str, str] = Field(default_factory=dict)  # http_json: jmespath per field
    selectors: dict[str, str] = Field(default_factory=dict)  # html_list
    detail: dict[str, str] = Field(default_factory=dict)  # html_list: {"body": css}
    columns: dict[str, str] = Field(default_factory=dict)  # file_drop header overrides
    headers: dict[str, str] = Field(default_factory=dict)
    encoding: str | None = None
    channel: str | None = Field(None, pattern=r"^[a-z]+:.+$")  # "feishu:oc_123"
    enabled: bool = True

    @model_validator(mode="after")
    def _where(self) -> SourceSpec:
        if self.kind == "file_drop" and not self.folder:
            raise ValueError(f"{self.name}: file_drop needs folder")
        if self.kind in ("http_json", "rss", "html_list") and not self.url:
            raise ValueError(f"{self.name}: {self.kind} needs url")
        return self


class SourcesFile(BaseModel):
    defaults: Defaults = Field(default_factory=Defaults)
    sources: list[SourceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SourcesFile:
        names = [s.name for s in self.sources]
        dupes = duplicate_names(names)
        if dupes:
            raise ValueError(f"duplicate source names: {', '.join(dupes)}")
        return self


def load(path: str | Path) -> SourcesFile:
    return load_model(path, SourcesFile, SourcesConfigError)


def build(config: SourcesFile, *, timezone: str, base_url: str) -> list[NoticeSource]:
    """Source objects for every enabled entry (sandbox URLs point at this app)."""
    d = config.defaults
    built: list[NoticeSource] = []
    for s in config.sources:
        if not s.enabled:
            continue
        common: dict[str, Any] = {
            "name": s.name, "platform": s.platform, "timezone": timezone,
            "interval": s.interval or d.interval, "alert_after": s.alert_after or d.alert_after,
            "channel": s.channel,
        }
        http = {"timeout": s.timeout or d.timeout, "attempts": s.retries or d.retries,
                "headers": s.headers}
        if s.kind in ("http_json", "sandbox"):
            url = s.url or f"{base_url.rstrip('/')}/sandbox/{s.platform}/notices"
            built.append(HttpJsonSource(url=url, mapping={**SANDBOX_MAPPING, **s.mapping}
                                        if s.kind == "sandbox" else (s.mapping or
                                                                     dict(SANDBOX_MAPPING)),
                                        kind=s.kind, **common, **http))
        elif s.kind == "rss":
            built.append(RssSource(url=s.url or "", **common, **http))
        elif s.kind == "html_list":
            built.append(HtmlListSource(url=s.url or "", selectors={**DEFAULT_SELECTORS,
                                                                    **s.selectors},
                                        detail=s.detail, encoding=s.encoding, **common, **http))
        else:
            built.append(FileDropSource(folder=s.folder or "", columns=s.columns, **common))
    return built
