"""``costs.yaml``: which ERP/WMS sources give cost and stock, and how often.

Validated with pydantic so a typo is a clear error at start-up. ``${VAR}`` in a value is read
from the environment (tokens stay out of the file). See ``config/costs.example.yaml`` and
docs/insight.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from adapters.common.yaml_config import duplicate_names, load_model
from adapters.erp.file_drop import ALIASES, FileCostSource
from adapters.erp.http_json import CostMapping, HttpJsonCostSource
from bot.core.ports import CostSource


class CostsConfigError(ValueError):
    pass


class CostSourceSpec(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Literal["http_json", "file_drop"]
    url: str | None = None
    method: Literal["GET", "POST"] = "GET"
    body: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = Field(None, pattern=r"^[A-Z0-9_]+$")
    signing: Literal["none", "jushuitan"] = "none"  # jushuitan: 聚水潭's signed form
    app_key_env: str | None = Field(None, pattern=r"^[A-Z0-9_]+$")
    app_secret_env: str | None = Field(None, pattern=r"^[A-Z0-9_]+$")
    mapping: dict[str, Any] = Field(default_factory=dict)
    folder: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    interval: float = Field(900, ge=10)
    timeout: float = Field(10, gt=0, le=120)
    retries: int = Field(4, ge=1, le=10)
    alert_after: int = Field(1, ge=1)
    enabled: bool = True

    @model_validator(mode="after")
    def _where(self) -> CostSourceSpec:
        if self.kind == "http_json" and not self.url:
            raise ValueError(f"{self.name}: http_json needs url")
        if self.kind == "file_drop" and not self.folder:
            raise ValueError(f"{self.name}: file_drop needs folder")
        if self.signing == "jushuitan":
            missing = [k for k in ("app_key_env", "app_secret_env", "token_env")
                       if not getattr(self, k)]
            if missing or self.method != "POST":
                raise ValueError(f"{self.name}: 聚水潭 signing needs method POST and "
                                 "app_key_env, app_secret_env and token_env (the access "
                                 "token), the names of environment variables")
        unknown = set(self.mapping) - set(CostMapping.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{self.name}: unknown mapping keys {', '.join(sorted(unknown))}")
        bad = set(self.columns) - set(ALIASES)
        if bad:
            raise ValueError(f"{self.name}: columns names unknown fields {', '.join(sorted(bad))}"
                             f" (known: {', '.join(ALIASES)})")
        return self


class CostsFile(BaseModel):
    sources: list[CostSourceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> CostsFile:
        names = [s.name for s in self.sources]
        dupes = duplicate_names(names)
        if dupes:
            raise ValueError(f"duplicate cost source names: {', '.join(dupes)}")
        return self


def load(path: str | Path) -> CostsFile:
    return load_model(path, CostsFile, CostsConfigError)


def build(config: CostsFile) -> list[CostSource]:
    built: list[CostSource] = []
    for s in config.sources:
        if not s.enabled:
            continue
        if s.kind == "http_json":
            built.append(HttpJsonCostSource(
                name=s.name, url=s.url or "", mapping=CostMapping(**s.mapping), method=s.method,
                body=s.body, params=s.params, headers=s.headers, token_env=s.token_env,
                timeout=s.timeout, attempts=s.retries, interval=s.interval,
                alert_after=s.alert_after, signing=s.signing, app_key_env=s.app_key_env,
                app_secret_env=s.app_secret_env))
        else:
            built.append(FileCostSource(name=s.name, folder=s.folder or "", columns=s.columns,
                                        interval=s.interval, alert_after=s.alert_after))
    return built
